/**
 * `npm run fuzz -- [--seconds N | --iterations N] [--seed S] [--batch N] [--memory-mb N] [--no-save]`
 *
 * Starts a relay child process and fuzzes it over real connections (fuzz/engine.ts). Prints the seed
 * first, one progress line every 25 batches, every failure with its seed and smallest reproducing bytes,
 * and a closing summary: frames sent, connections, failures. Exit status 0 with no failure, 1 otherwise.
 * Reproduce a run with the same --seed (and the same --iterations or case count).
 */
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fuzz } from './engine.js';
import { repoRoot } from './server-process.js';

function intArg(v: string | undefined, name: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[0-9]{1,10}$/.test(v) || Number(v) < min) throw new RangeError(`--${name}: expected an integer >= ${min}, got '${v}'`);
  return Number(v);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string' },
      iterations: { type: 'string' },
      seed: { type: 'string' },
      batch: { type: 'string' },
      'memory-mb': { type: 'string' },
      'no-save': { type: 'boolean' },
    },
    strict: true,
  });
  const seconds = intArg(values.seconds, 'seconds', 1);
  const iterations = intArg(values.iterations, 'iterations', 1);
  const seed = intArg(values.seed, 'seed', 0) ?? randomInt(0, 2 ** 31);
  const batch = intArg(values.batch, 'batch', 1);
  const mem = intArg(values['memory-mb'], 'memory-mb', 16);
  const runFor = seconds === undefined && iterations === undefined ? { seconds: 60 } : { ...(seconds !== undefined ? { seconds } : {}), ...(iterations !== undefined ? { iterations } : {}) };
  process.stdout.write(`fuzz: seed ${seed} (${JSON.stringify(runFor)})\n`);
  const report = await fuzz({
    seed,
    ...runFor,
    ...(batch !== undefined ? { batchSize: batch } : {}),
    ...(mem !== undefined ? { memoryLimitBytes: mem * 1024 * 1024 } : {}),
    ...(values['no-save'] === true ? {} : { corpusDir: join(repoRoot(), 'fuzz', 'corpus') }),
    log: (line) => process.stdout.write(line + '\n'),
  });
  process.stdout.write(
    `fuzz: seed ${report.seed}: ${report.cases} cases in ${report.batches} batches, ${report.framesSent} frames sent, ` +
      `${report.connections} connections, ${report.floods} floods, peak relay RSS ${Math.round(report.peakRssBytes / 1048576)} MiB, ` +
      `${report.seeds} seed frames (${report.seedsFromVectors} from vectors/codec.json), ${report.seconds.toFixed(1)} s, ${report.failures.length} failures\n`,
  );
  for (const f of report.failures) process.stdout.write(`  failure: seed ${f.seed} batch ${f.batch}${f.caseIndex !== undefined ? ` case ${f.caseIndex}` : ''}: ${f.what}\n`);
  return report.failures.length === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`fuzz: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exitCode = 2;
  },
);
