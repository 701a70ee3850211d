// A short, bounded fuzz run (the same engine as `npm run fuzz`), half a minute to a minute here: 6,000
// cases from a fixed seed against the relay as a child process, with frame and connection floods between
// batches and, after every batch, the health checks (alive, a fresh legitimate pair served, memory bound,
// no internal error logged). Bounded by its case count; the reply deadline only turns a hang into a failure.
import t from 'tap';
import { fuzz } from '../../fuzz/engine.js';

const SEED = 20261125;

t.test(`fuzz seed ${SEED}: 6,000 cases, every answer as the oracle says, relay healthy after every batch`, async (t) => {
  const lines: string[] = [];
  const report = await fuzz({
    seed: SEED,
    // TCP only here; test/fuzz/ws.test.ts runs the WebSocket transport.
    transports: ['tcp'],
    iterations: 6000,
    batchSize: 8,
    minimise: false,
    maxFailures: 20,
    memoryLimitBytes: 512 * 1024 * 1024,
    deadlines: { replyMs: 15_000 },
    log: (l) => lines.push(l),
  });
  t.equal(report.cases, 6000, 'every case ran');
  t.ok(report.framesSent > report.cases, `${report.framesSent} frames sent over ${report.connections} connections`);
  t.ok(report.seedsFromVectors > 0, `${report.seedsFromVectors} seed frames from vectors/codec.json`);
  t.equal(report.failureCount, 0, report.failures.map((f) => `x${f.count} case ${String(f.caseIndex)}: ${f.what}`).join(' | ') || 'no failure');
  t.comment(`${report.cases} cases, ${report.framesSent} frames, ${report.connections} connections, ${report.floods} floods, peak relay RSS ${Math.round(report.peakRssBytes / 1048576)} MiB`);
});
