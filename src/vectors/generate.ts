/**
 * `node dist/src/vectors/generate.js [--check] DIR`: writes every suite's vector file into DIR as
 * `JSON.stringify(doc, null, 2) + "\n"` (spec/VECTORS.md). With `--check` it writes nothing and exits 1,
 * naming each file whose content differs from what it would write (CI's drift check).
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

async function main(argv: string[]): Promise<number> {
  const check = argv.includes('--check');
  const dirs = argv.filter((a) => a !== '--check');
  if (dirs.length !== 1) {
    process.stderr.write('usage: generate.js [--check] DIR\n');
    return 2;
  }
  const dir = dirs[0]!;
  const differing = await generateAll(dir, check);
  if (check) {
    for (const f of differing) process.stdout.write(`differs: ${join(dir, f)}\n`);
    if (differing.length > 0) {
      process.stdout.write(`${differing.length} vector file(s) differ from the generator; run npm run vectors\n`);
      return 1;
    }
    process.stdout.write(`${SUITES.length} vector file(s) up to date\n`);
    return 0;
  }
  process.stdout.write(`wrote ${SUITES.map((s) => join(dir, s.file)).join(', ')}\n`);
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
