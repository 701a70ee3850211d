/**
 * `e2ee-chat vectors verify [DIR]` (spec/VECTORS.md "Running the vectors"): loads each registered suite's
 * file from DIR (default: the package's vectors/ folder), verifies every case with the runtime code,
 * prints one line per failing case id and a summary, and exits 1 on any failure, including a missing
 * file or a file that is not valid JSON.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CryptoBackend } from '../crypto/backend.js';
import { nodeBackend } from '../crypto/node.js';
import { webCryptoBackend } from '../crypto/webcrypto.js';
import { SUITES } from '../vectors/registry.js';
import type { VectorFailure, VectorSuite } from '../vectors/types.js';

/** The cryptography a run can use: `--crypto node` (the default) or `--crypto webcrypto`. */
const BACKENDS: Record<string, () => CryptoBackend> = {
  node: () => nodeBackend,
  webcrypto: () => webCryptoBackend(),
};

const USAGE = `usage: e2ee-chat vectors verify [--crypto node|webcrypto] [--only FILE]... [DIR]

Verifies every vector file (${SUITES.map((s) => s.file).join(', ')}) in DIR
(default: the vectors/ folder of this package), or only the files named with --only.
--crypto chooses the cryptography the runtime code uses: node (node:crypto, the default)
or webcrypto (globalThis.crypto.subtle, as in a browser). Prints one line per failing
case id, then a summary; exits 1 when any case fails or a file is missing or not valid JSON.`;

/** The package's own vectors/ folder (this file is dist/src/cli/vectors.js). */
function defaultDir(): string {
  return fileURLToPath(new URL('../../../vectors/', import.meta.url));
}

function countCases(doc: unknown): number {
  const cases = (doc as { cases?: unknown } | null)?.cases;
  return Array.isArray(cases) ? cases.length : 0;
}

/** Loads and verifies one suite's file; a missing or unparsable file is one failure named after the file. */
export async function verifySuite(suite: VectorSuite, dir: string, crypto: CryptoBackend = nodeBackend): Promise<{ cases: number; failures: VectorFailure[] }> {
  let text: string;
  try {
    text = await readFile(join(dir, suite.file), 'utf8');
  } catch (e) {
    return { cases: 0, failures: [{ id: suite.file, reason: `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}` }] };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return { cases: 0, failures: [{ id: suite.file, reason: `not valid JSON: ${(e as Error).message}` }] };
  }
  try {
    return { cases: countCases(doc), failures: await suite.verify(doc, crypto) };
  } catch (e) {
    return { cases: countCases(doc), failures: [{ id: suite.file, reason: `verifier threw: ${e instanceof Error ? e.message : String(e)}` }] };
  }
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h') {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const only: string[] = [];
  const dirs: string[] = [];
  let crypto = 'node';
  let usageError = sub !== 'verify';
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === '--only' && i + 1 < rest.length) only.push(rest[++i]!);
    else if (a === '--crypto' && i + 1 < rest.length) crypto = rest[++i]!;
    else if (a.startsWith('-')) usageError = true;
    else dirs.push(a);
  }
  const unknown = only.filter((f) => !SUITES.some((s) => s.file === f));
  const backend = BACKENDS[crypto];
  if (usageError || dirs.length > 1 || unknown.length > 0 || backend === undefined) {
    if (unknown.length > 0) process.stderr.write(`no vector file named ${unknown.join(', ')}\n`);
    if (backend === undefined) process.stderr.write(`no cryptography named ${crypto} (node, webcrypto)\n`);
    process.stderr.write(USAGE + '\n');
    return 2;
  }
  const dir = dirs[0] ?? defaultDir();
  const suites = only.length === 0 ? SUITES : SUITES.filter((s) => only.includes(s.file));
  let cases = 0;
  let failures = 0;
  let badFiles = 0;
  for (const suite of suites) {
    const r = await verifySuite(suite, dir, backend());
    cases += r.cases;
    failures += r.failures.length;
    if (r.failures.length > 0) badFiles++;
    for (const f of r.failures) process.stdout.write(`FAIL ${suite.file} ${f.id}: ${f.reason}\n`);
  }
  process.stdout.write(
    `${suites.length} files, ${cases} cases: ${failures === 0 ? 'all passed' : `${failures} failure(s) in ${badFiles} file(s)`}\n`,
  );
  return failures > 0 ? 1 : 0;
}
