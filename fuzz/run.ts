/**
 * `npm run fuzz -- [--seconds N | --iterations N] [--seed S] [--transport tcp|ws|both] [--batch N] [--memory-mb N] [--max-failures N] [--lax-framing] [--no-save]`
 *
 * Starts a relay child process and fuzzes it over real connections (fuzz/engine.ts): over TCP and over
 * its WebSocket endpoint (spec §3.1, `--web-port 0`), each case on one of them, unless --transport
 * names one. Prints the seed
 * first, a progress line every 30 seconds, every failure with its seed and smallest reproducing bytes,
 * and a closing summary: frames sent, connections, failures. Exit status 0 with no failure, 1 otherwise.
 * Reproduce a run with the same --seed (and the same --iterations or case count). Frames before a bad length
 * prefix in the same read must be answered before the framing error (spec §3); --lax-framing also accepts
 * a framing error answered first (how the relay behaved before FrameReader kept those frames).
 */
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fuzz } from './engine.js';
import type { Transport } from './harness.js';
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
      'max-failures': { type: 'string' },
      'lax-framing': { type: 'boolean' },
      transport: { type: 'string' },
    },
    strict: true,
  });
  const tr = values.transport ?? 'both';
  if (tr !== 'tcp' && tr !== 'ws' && tr !== 'both') throw new RangeError(`--transport: expected tcp, ws or both, got '${tr}'`);
  const transports: Transport[] = tr === 'both' ? ['tcp', 'ws'] : [tr];
  const seconds = intArg(values.seconds, 'seconds', 1);
  const iterations = intArg(values.iterations, 'iterations', 1);
  const seed = intArg(values.seed, 'seed', 0) ?? randomInt(0, 2 ** 31);
  const batch = intArg(values.batch, 'batch', 1);
  const mem = intArg(values['memory-mb'], 'memory-mb', 16);
  const maxFailures = intArg(values['max-failures'], 'max-failures', 1);
  const runFor = seconds === undefined && iterations === undefined ? { seconds: 60 } : { ...(seconds !== undefined ? { seconds } : {}), ...(iterations !== undefined ? { iterations } : {}) };
  process.stdout.write(`fuzz: seed ${seed} (${JSON.stringify({ ...runFor, transport: tr })})\n`);
  const report = await fuzz({
    seed,
    transports,
    ...runFor,
    ...(batch !== undefined ? { batchSize: batch } : {}),
    ...(mem !== undefined ? { memoryLimitBytes: mem * 1024 * 1024 } : {}),
    ...(maxFailures !== undefined ? { maxFailures } : {}),
    deadlines: { replyMs: 10_000, framingMayPreempt: values['lax-framing'] === true },
    ...(values['no-save'] === true ? {} : { corpusDir: join(repoRoot(), 'fuzz', 'corpus') }),
    log: (line) => process.stdout.write(line + '\n'),
  });
  process.stdout.write(
    `fuzz: seed ${report.seed}: ${report.cases} cases (${report.byTransport.tcp} over TCP, ${report.byTransport.ws} over WebSocket) in ${report.batches} batches, ` +
      `${report.upgrades} hostile upgrades, ${report.framesSent} frames sent, ` +
      `${report.connections} connections, ${report.floods} floods, peak relay RSS ${Math.round(report.peakRssBytes / 1048576)} MiB, ` +
      `${report.seeds} seed frames (${report.seedsFromVectors} from vectors/codec.json), ${report.seconds.toFixed(1)} s, ${report.failureCount} failures (${report.failures.length} distinct)\n`,
  );
  const tails = Object.entries(report.tails).sort();
  if (tails.length > 0) process.stdout.write(`fuzz: WebSocket tails sent: ${tails.map(([k, n]) => `${k} ${n}`).join(', ')}\n`);
  for (const f of report.failures) {
    process.stdout.write(`  failure x${f.count}: seed ${f.seed} batch ${f.batch}${f.caseIndex !== undefined ? ` case ${f.caseIndex}` : ''}: ${f.what}${f.saved ? ` [${f.saved}]` : ''}\n`);
  }
  return report.failureCount === 0 ? 0 : 1;
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
