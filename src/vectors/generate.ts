/**
 * `node dist/src/vectors/generate.js [--check] [--only FILE]... DIR`: writes every suite's vector file into
 * DIR as `JSON.stringify(doc, null, 2) + "\n"` (spec/VECTORS.md). With `--check` it writes nothing and
 * exits 1, naming each file whose content differs from what it would write (CI's drift check). `--only`
 * restricts the run to the named files (for example `--only codec.json`).
 */
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SUITES } from './registry.js';
import type { VectorSuite } from './types.js';

/** The exact text a suite's file must hold. */
export async function renderSuite(suite: VectorSuite): Promise<string> {
  return JSON.stringify(await suite.generate(), null, 2) + '\n';
}

/** Writes (or with check, compares) every suite's file in `dir`; returns the file names that differ. */
export async function generateAll(dir: string, check: boolean, suites: readonly VectorSuite[] = SUITES): Promise<string[]> {
  const differing: string[] = [];
  if (!check) await mkdir(dir, { recursive: true });
  for (const suite of suites) {
    const text = await renderSuite(suite);
    const path = join(dir, suite.file);
    if (check) {
      let current: string | undefined;
      try {
        current = await readFile(path, 'utf8');
      } catch {
        current = undefined;
      }
      if (current !== text) differing.push(suite.file);
    } else {
      await writeFile(path, text);
    }
  }
  return differing;
}

const USAGE = 'usage: generate.js [--check] [--only FILE]... DIR\n';

async function main(argv: string[]): Promise<number> {
  let check = false;
  const only: string[] = [];
  const dirs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--check') check = true;
    else if (a === '--only' && i + 1 < argv.length) only.push(argv[++i]!);
    else if (a.startsWith('-')) {
      process.stderr.write(USAGE);
      return 2;
    } else dirs.push(a);
  }
  const unknown = only.filter((f) => !SUITES.some((s) => s.file === f));
  if (dirs.length !== 1 || unknown.length > 0) {
    process.stderr.write(unknown.length > 0 ? `no suite writes ${unknown.join(', ')}\n${USAGE}` : USAGE);
    return 2;
  }
  const dir = dirs[0]!;
  const suites = only.length === 0 ? SUITES : SUITES.filter((s) => only.includes(s.file));
  const differing = await generateAll(dir, check, suites);
  if (check) {
    for (const f of differing) process.stdout.write(`differs: ${join(dir, f)}\n`);
    if (differing.length > 0) {
      process.stdout.write(`${differing.length} vector file(s) differ from the generator; run npm run vectors\n`);
      return 1;
    }
    process.stdout.write(`${suites.length} vector file(s) up to date\n`);
    return 0;
  }
  process.stdout.write(`wrote ${suites.map((s) => join(dir, s.file)).join(', ')}\n`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`generate: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 70;
    },
  );
}
