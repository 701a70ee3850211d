/**
 * The fuzz loop behind `npm run fuzz`: batches of cases against a relay child process, the health checks
 * after every batch, and on a failure the seed, the minimised bytes and a corpus file.
 */
import { join } from 'node:path';
import { LIMITS } from '../src/protocol/limits.js';
import {
  caseNames,
  frameFlood,
  IdentityBook,
  legitimatePair,
  makeCase,
  runCase,
  segmentsOf,
  type Deadlines,
  type FuzzCase,
  type Transport,
} from './harness.js';
import { runUpgradeCase, upgradeCase } from './ws.js';
import { connectionFlood, KEY_POOL_SIZE } from '../src/wirekit/relay-conn.js';
import { saveCrasher } from './corpus.js';
import { minimise } from './minimise.js';
import { Prng } from './prng.js';
import { loadSeeds } from './seeds.js';
import { repoRoot, ServerProcess } from './server-process.js';

/**
 * The fuzzer binds a fresh nickname per case from one address: the relay's binding quotas (§7.1
 * "Quotas", 512 per address per hour by default) would refuse AUTH after a few hundred cases, so they
 * are raised here; test/server/quota.test.ts covers the quotas themselves.
 */
const QUOTA_ARGS = ['--binds-per-key', '1000000000', '--binds-per-address', '1000000000', '--binds-per-relay', '1000000000'];

/**
 * The relay keeps its default of MAX_CONNECTIONS_PER_KEY (4) for the default batch of 8: a batch holds
 * at most 2 x batch + 3 authenticated connections over the wire kit's KEY_POOL_SIZE keys, handed out in
 * turn. Only a larger --batch raises the cap, to what that batch needs with the same margin.
 */
export function relayArgs(batchSize: number): string[] {
  const perKey = Math.ceil((2 * batchSize + 3) / KEY_POOL_SIZE) + 2;
  return perKey <= LIMITS.MAX_CONNECTIONS_PER_KEY ? QUOTA_ARGS : [...QUOTA_ARGS, '--max-connections-per-key', String(perKey), '--max-connections-per-nick', String(perKey)];
}

export interface FuzzOptions {
  seed: number;
  /** The transports cases run over, chosen per case (default both: TCP, and WebSocket on --web-port 0). */
  transports?: readonly Transport[];
  /** Stop after this many cases (whichever of iterations and seconds comes first). */
  iterations?: number;
  seconds?: number;
  /** Cases run at once in a batch. */
  batchSize?: number;
  /** Resident-memory bound for the relay process. */
  memoryLimitBytes?: number;
  deadlines?: Deadlines;
  /** Where crashers are saved; undefined: do not save. */
  corpusDir?: string;
  /** Stop after this many distinct failures (failures that differ only in numbers count once). */
  maxFailures?: number;
  /** Minimise failing cases (re-runs each up to 300 times, within `minimiseSeconds`); default true. */
  minimise?: boolean;
  minimiseSeconds?: number;
  log?: (line: string) => void;
}

export interface Failure {
  seed: number;
  /** The failure text with numbers blanked: failures with the same signature are one bug. */
  signature: string;
  /** How many times this signature was seen (only its first case is minimised and saved). */
  count: number;
  batch: number;
  caseIndex?: number;
  what: string;
  /** Minimised bytes (payload hex) and the corpus file, for case failures. */
  bytes?: string;
  state?: string;
  saved?: string;
}

export interface FuzzReport {
  seed: number;
  cases: number;
  batches: number;
  framesSent: number;
  connections: number;
  floods: number;
  /** Cases per transport. */
  byTransport: Record<Transport, number>;
  /** Hostile or malformed WebSocket upgrade requests sent (each answered with its HTTP status). */
  upgrades: number;
  /** WebSocket-level events sent after a case's stream (fuzz/ws.ts tails), by kind. */
  tails: Record<string, number>;
  /** Distinct failures; `failures[i].count` says how often each was seen. */
  failures: Failure[];
  /** Every failure seen, repeats included. */
  failureCount: number;
  peakRssBytes: number;
  seconds: number;
  seeds: number;
  seedsFromVectors: number;
}

/** Source addresses: per-address connection caps must not let the floods starve the checks (spec §7.1). */
const FLOOD_ADDR = '127.0.0.2';
const LEGIT_ADDR = '127.0.0.3';

/** A failure text with hex runs and numbers blanked: what stays the same across repeats of one bug. */
function signatureOf(what: string): string {
  return what
    .replace(/[0-9a-f]{16,}/g, '#')
    .replace(/^(after [^:]*: )?expected .*?, (got|relay)/, '$2')
    .replace(/\d{3,}/g, 'N');
}

export async function fuzz(o: FuzzOptions): Promise<FuzzReport> {
  const log = o.log ?? (() => {});
  const d: Deadlines = o.deadlines ?? { replyMs: 10_000 };
  const batchSize = o.batchSize ?? 8;
  const memLimit = o.memoryLimitBytes ?? 512 * 1024 * 1024;
  const maxFailures = o.maxFailures ?? 5;
  const started = performance.now();
  const endAt = o.seconds !== undefined ? started + o.seconds * 1000 : Infinity;
  const iterations = o.iterations ?? (o.seconds !== undefined ? Infinity : 200);
  const { seeds, raw, fromVectors } = loadSeeds(join(repoRoot(), 'vectors', 'codec.json'));
  const book = new IdentityBook();
  const registry = new Map<string, Buffer>();
  const rng = new Prng(o.seed);
  const report: FuzzReport = {
    seed: o.seed,
    cases: 0,
    batches: 0,
    framesSent: 0,
    connections: 0,
    floods: 0,
    byTransport: { tcp: 0, ws: 0 },
    upgrades: 0,
    tails: {},
    failures: [],
    failureCount: 0,
    peakRssBytes: 0,
    seconds: 0,
    seeds: seeds.length,
    seedsFromVectors: fromVectors,
  };
  const transports = o.transports ?? ['tcp', 'ws'];
  const wsOn = transports.includes('ws');
  const args = [...relayArgs(batchSize), ...(wsOn ? ['--web-port', '0'] : [])];
  let server = await ServerProcess.start(args);
  const restart = async (): Promise<void> => {
    await server.stop();
    server = await ServerProcess.start(args);
    registry.clear();
  };
  let nextProgress = performance.now();
  /** Counts a failure; returns true when its signature is new (then it is kept, minimised and saved). */
  const record = (f: Omit<Failure, 'signature' | 'count'>): boolean => {
    report.failureCount++;
    const signature = signatureOf(f.what);
    const seen = report.failures.find((x) => x.signature === signature);
    if (seen) {
      seen.count++;
      return false;
    }
    report.failures.push({ ...f, signature, count: 1 });
    return true;
  };
  try {
    while (report.cases < iterations && performance.now() < endAt && report.failures.length < maxFailures) {
      const batch = report.batches++;
      const n = Math.min(batchSize, iterations - report.cases);
      const cases: FuzzCase[] = [];
      for (let i = 0; i < n; i++) cases.push(makeCase(o.seed, report.cases + i, seeds, raw, book, transports));
      report.cases += n;
      for (const c of cases) report.byTransport[c.transport]++;
      const results = await Promise.all(cases.map((c) => runCase(server, c, book, registry, d)));
      for (const r of results) {
        report.framesSent += r.framesSent;
        report.connections += r.connections;
        if (r.tail !== undefined) {
          const kind = r.tail.replace(/-\d+$/, '');
          report.tails[kind] = (report.tails[kind] ?? 0) + 1;
        }
      }
      // Floods, now and then: a frame flood on one connection and a connection flood from one address.
      if (rng.chance(0.15)) {
        report.floods++;
        const f = await frameFlood(server, book, `flood${(o.seed >>> 0).toString(36)}x${batch.toString(36)}`, rng.int(100, 2500), d);
        report.framesSent += f.frames;
        report.connections += 1;
        if (f.failure !== undefined) record({ seed: o.seed, batch, what: f.failure });
      }
      if (rng.chance(0.05)) {
        report.floods++;
        const count = LIMITS.MAX_CONNECTIONS_PER_ADDRESS + rng.int(1, 16);
        const f = await connectionFlood(server, count, LIMITS.MAX_CONNECTIONS_PER_ADDRESS, FLOOD_ADDR, d);
        report.connections += count;
        report.framesSent += count;
        if (f.failure !== undefined) record({ seed: o.seed, batch, what: f.failure });
      }
      // Hostile upgrade requests, now and then (§3.1): each must get its HTTP status, never 101.
      if (wsOn && server.wsPort !== undefined && rng.chance(0.5)) {
        const origin = `http://${server.host}:${server.wsPort}`;
        for (let k = rng.int(1, 3); k > 0; k--) {
          const u = upgradeCase(rng, origin);
          report.upgrades++;
          report.connections++;
          const f = await runUpgradeCase(server.host, server.wsPort, u, d.replyMs);
          if (f !== undefined) record({ seed: o.seed, batch, what: f });
        }
      }
      // Health after the batch.
      const health: string[] = [];
      if (!server.alive) health.push('relay process is not running');
      health.push(...server.problems.splice(0));
      const rss = server.rssBytes();
      if (rss !== undefined) {
        report.peakRssBytes = Math.max(report.peakRssBytes, rss);
        if (rss > memLimit) health.push(`relay holds ${rss} bytes resident, bound ${memLimit}`);
      }
      if (server.alive) {
        // Over WebSocket, one side of the pair joins from the browser transport (they meet in one room).
        const sides: [Transport, Transport] = wsOn ? (batch % 2 === 0 ? ['tcp', 'ws'] : ['ws', 'ws']) : ['tcp', 'tcp'];
        const legit = await legitimatePair(server, book, `${(o.seed >>> 0).toString(36)}x${batch.toString(36)}`, d, LEGIT_ADDR, sides);
        report.connections += 2;
        report.framesSent += 7;
        if (legit !== undefined) health.push(legit);
      }
      for (let i = 0; i < results.length; i++) {
        const r = results[i]!;
        if (r.ok) continue;
        const c = cases[i]!;
        if (record({ seed: o.seed, batch, caseIndex: c.index, what: r.failure!, state: c.state })) {
          log(`FAIL seed ${o.seed} case ${c.index} (${c.state}; ${c.ops.join(', ')}): ${r.failure!}`);
          Object.assign(report.failures[report.failures.length - 1]!, await reportCase(c, r.failure!));
        }
      }
      if (health.length > 0) {
        record({ seed: o.seed, batch, what: `after batch ${batch} (cases ${cases[0]?.index}..${cases[cases.length - 1]?.index}): ${health.join('; ')}` });
        log(`FAIL batch ${batch}: ${health.join('; ')}`);
        // Find the case that did it: each case of the batch alone against a fresh relay.
        for (const c of cases) {
          await restart();
          const r = await runCase(server, c, book, registry, d);
          const alone: string[] = [...server.problems.splice(0)];
          if (!server.alive) alone.push('relay process died');
          if (!r.ok || alone.length > 0) {
            const what = [r.failure, ...alone].filter(Boolean).join('; ');
            log(`  case ${c.index} (${c.state}; ${c.ops.join(', ')}) alone: ${what}`);
            if (record({ seed: o.seed, batch, caseIndex: c.index, what, state: c.state })) {
              Object.assign(report.failures[report.failures.length - 1]!, await reportCase(c, what));
            }
            break;
          }
        }
        await restart();
      }
      if (performance.now() >= nextProgress) {
        nextProgress = performance.now() + 30_000;
        log(`batch ${batch}: ${report.cases} cases, ${report.framesSent} frames, ${report.connections} connections, rss ${Math.round((rss ?? 0) / 1048576)} MiB, ${report.failureCount} failures`);
      }
    }
  } finally {
    await server.stop();
    report.seconds = (performance.now() - started) / 1000;
  }
  return report;

  async function reportCase(c: FuzzCase, failure: string): Promise<Pick<Failure, 'bytes' | 'state' | 'saved'>> {
    const stillFails = async (cand: FuzzCase): Promise<boolean> => {
      if (!server.alive) await restart();
      // The candidate reuses the case's names: give the relay a moment to drop the last attempt's room.
      await new Promise((resolve) => setTimeout(resolve, 50));
      const r = await runCase(server, cand, book, registry, d);
      const what = [r.failure, ...server.problems.splice(0), ...(server.alive ? [] : ['relay process died'])].filter(Boolean).join('; ');
      // Only the same failure counts, so the minimiser cannot drift from one bug to another.
      return what !== '' && signatureOf(what) === signatureOf(failure);
    };
    let small = c;
    if (o.minimise !== false) {
      const until = performance.now() + (o.minimiseSeconds ?? 120) * 1000;
      const bounded = async (cand: FuzzCase): Promise<boolean> => performance.now() < until && (await stillFails(cand));
      if (await stillFails(c)) small = await minimise(c, bounded);
      else log(`  (case ${c.index} did not fail again alone: not minimised)`);
    }
    const bytes = Buffer.concat(segmentsOf(small)).toString('hex');
    log(`  seed ${o.seed}, smallest reproducing bytes (${small.state}, ${small.payload.length} payload bytes): ${small.payload.toString('hex').slice(0, 2000)}`);
    const saved = o.corpusDir !== undefined ? saveCrasher(o.corpusDir, o.seed, small, failure) : undefined;
    if (saved) log(`  saved ${saved}`);
    return { bytes, state: small.state, ...(saved !== undefined ? { saved } : {}) };
  }
}

export { caseNames };
