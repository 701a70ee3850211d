/**
 * The benchmark harness's pure parts (bench/harness.ts): ratios against floors, targets, percentiles,
 * argument parsing, the printed table and the --json document. No benchmark runs here and nothing is
 * timed: these are the parts whose mistakes would print a wrong verdict next to a right measurement.
 */
import t from 'tap';
import {
  BENCH_NAMES,
  MIN_REPS,
  checkReceived,
  connectCpu,
  Reservoir,
  formatNumber,
  formatTable,
  makeFigure,
  median,
  mergedPercentiles,
  parseBenchArgs,
  percentile,
  ratioOf,
  spreadOf,
  targetMet,
  toJsonDoc,
  type RunInfo,
} from '../../bench/harness.js';

t.test('ratio is figure / floor, and absent when the floor cannot divide', async (t) => {
  t.equal(ratioOf(50, 100), 0.5);
  t.equal(ratioOf(300, 150), 2);
  t.equal(ratioOf(1, null), null);
  t.equal(ratioOf(1, undefined), null);
  t.equal(ratioOf(1, 0), null, 'a zero floor gives no ratio rather than Infinity');
  t.equal(ratioOf(1, -5), null);
  t.equal(ratioOf(1, NaN), null);
  t.equal(ratioOf(NaN, 10), null);
});

t.test('targets apply to the column they name, in the direction they name', async (t) => {
  t.equal(targetMet({ on: 'ratio', op: '>=', value: 0.5 }, 10, 0.5), true, 'bound is inclusive');
  t.equal(targetMet({ on: 'ratio', op: '>=', value: 0.5 }, 10, 0.49), false);
  t.equal(targetMet({ on: 'ratio', op: '<=', value: 2 }, 10, 2.01), false);
  t.equal(targetMet({ on: 'ratio', op: '<=', value: 2 }, 10, 1.2), true);
  t.equal(targetMet({ on: 'figure', op: '<=', value: 8192 }, 8000, 100), true, 'figure target ignores the ratio');
  t.equal(targetMet({ on: 'figure', op: '<=', value: 8192 }, 8193, 0.1), false);
  t.equal(targetMet({ on: 'ratio', op: '>=', value: 0 }, 10, null), false, 'a missing ratio never meets a ratio target');
});

t.test('makeFigure computes the ratio and the verdict over every target', async (t) => {
  const both = [
    { on: 'figure', op: '>=', value: 39500 },
    { on: 'ratio', op: '>=', value: 0.25 },
  ] as const;
  const ok = makeFigure({ name: 'e2e', values: [50000, 50000, 50000], floors: 150000, unit: 'msgs/s', targets: both });
  t.equal(ok.ratio, 50000 / 150000);
  t.equal(ok.met, true);
  t.equal(ok.met_worst, true);
  t.same(ok.values.floor, [150000, 150000, 150000], 'a constant floor divides every repetition');
  const lowAbsolute = makeFigure({ name: 'e2e', values: [30000, 30000, 30000], floors: 100000, unit: 'msgs/s', targets: both });
  t.equal(lowAbsolute.met, false, 'ratio 0.3 passes but 30,000 < 39,500 fails the row');
  const none = makeFigure({ name: 'scale', values: [1, 1, 1], floors: [2, 2, 2], unit: 'x' });
  t.equal(none.met, null, 'no target, no verdict');
  t.equal(none.met_worst, null);
  t.same(none.targets, []);
  t.same(none.extra, {});
  t.equal(none.note, '');
  const noFloor = makeFigure({ name: 'hs', values: [120, 120, 120], unit: 'sessions/s', targets: [{ on: 'ratio', op: '>=', value: 1 }] });
  t.equal(noFloor.floor, null);
  t.equal(noFloor.ratio, null);
  t.equal(noFloor.spread.floor, null);
  t.equal(noFloor.spread.ratio, null);
  t.equal(noFloor.met, false);
});

t.test('a figure is the median of its repetitions, with min and max, and ratios pair repetitions', async (t) => {
  // Repetition i of the figure is divided by repetition i of the floor, measured next to it.
  const f = makeFigure({ name: 'relay', values: [100, 300, 200], floors: [400, 500, 200], unit: 'frames/s', targets: [{ on: 'ratio', op: '>=', value: 0.5 }] });
  t.same(f.spread.figure, { min: 100, median: 200, max: 300 });
  t.equal(f.figure, 200);
  t.same(f.spread.floor, { min: 200, median: 400, max: 500 });
  t.equal(f.floor, 400);
  t.same(f.spread.ratio, { min: 0.25, median: 0.6, max: 1 }, 'ratios 0.25, 0.6, 1: the median ratio, not median / median');
  t.equal(f.ratio, 0.6);
  t.equal(f.reps, 3);
  t.same(f.values.figure, [100, 300, 200], 'repetitions kept in run order');
  t.equal(f.met, true, 'the median ratio meets >= 0.5');
  t.equal(f.met_worst, false, 'the worst repetition (0.25) does not');
  const le = makeFigure({ name: 'rtt', values: [1, 1, 1], floors: [1, 0.4, 1], unit: 'us', targets: [{ on: 'ratio', op: '<=', value: 2 }] });
  t.equal(le.met, true);
  t.equal(le.met_worst, false, 'for a <= target the worst repetition is the largest ratio (2.5)');
});

t.test('a repetition without a figure fails the figure, with the reason', async (t) => {
  t.throws(() => makeFigure({ name: 'relay', values: [100, NaN, 200], unit: 'u' }), /relay: repetition 2 of 3 produced no figure/);
  t.throws(() => makeFigure({ name: 'relay', values: [100, Infinity, 200], unit: 'u' }), /repetition 2/);
  t.throws(() => makeFigure({ name: 'relay', values: [100, 200], unit: 'u' }), new RegExp(`2 repetition\\(s\\), at least ${MIN_REPS}`));
  t.throws(() => makeFigure({ name: 'relay', values: [], unit: 'u' }), /at least/);
  t.throws(() => makeFigure({ name: 'relay', values: [1, 2, 3], floors: [1, 0, 1], unit: 'u' }), /floor of repetition 2 is 0/);
  t.throws(() => makeFigure({ name: 'relay', values: [1, 2, 3], floors: [1, NaN, 1], unit: 'u' }), /floor of repetition 2/);
  t.throws(() => makeFigure({ name: 'relay', values: [1, 2, 3], floors: 0, unit: 'u' }), /floor of repetition 1 is 0/);
  t.throws(() => makeFigure({ name: 'relay', values: [1, 2, 3], floors: [1, 2], unit: 'u' }), /2 floor\(s\) for 3 repetition/);
  t.equal(MIN_REPS, 3);
});

t.test('a repetition that received nothing, or a stream that never started, is an error naming it', async (t) => {
  const sides = [
    { nick: 'n0a', role: 'a' },
    { nick: 'n0b', role: 'b' },
    { nick: 'n1b', role: 'b' },
  ];
  t.same(checkReceived('flow', sides, [5, 1, 300], [9, 9, 400], 500), { starved: 0 });
  t.throws(() => checkReceived('flow', sides, [0, 0, 0], [3, 1, 2], 500), /flow: no connection of 3 received anything in the 500 ms window \(6 over the whole phase\)/);
  t.throws(() => checkReceived('flow', sides, [5, 0, 7], [5, 0, 7], 500), /flow: 1 of 3 connection\(s\) received nothing in the whole phase \(first: n0b, role b\)/);
  t.same(checkReceived('flow', sides, [5, 0, 7], [5, 2, 7], 500), { starved: 1 }, 'starved in the window but not stalled: counted, not fatal');
  t.throws(() => checkReceived('flow', sides, [1, 1], [1, 1, 1], 500), RangeError, 'a count per connection');
  t.same(checkReceived('flow', [], [], [], 500), { starved: 0 }, 'nothing to drive in this worker');
});

t.test('a spread is min, median and max', async (t) => {
  t.same(spreadOf([3, 1, 2]), { min: 1, median: 2, max: 3 });
  t.same(spreadOf([5]), { min: 5, median: 5, max: 5 });
  t.throws(() => spreadOf([]), RangeError);
});

t.test('percentiles use the nearest rank; the median averages the middle pair', async (t) => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
  t.equal(percentile(xs, 50), 50);
  t.equal(percentile(xs, 99), 99);
  t.equal(percentile(xs, 100), 100);
  t.equal(percentile([7], 99), 7);
  t.ok(Number.isNaN(percentile([], 50)));
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5);
  t.ok(Number.isNaN(median([])));
  t.equal(median([5, NaN, 1, 3]), 3, 'a repetition without samples is left out, not sorted in');
  t.ok(Number.isNaN(median([NaN, Infinity])));
});

t.test('a reservoir keeps at most its capacity and counts everything it saw', async (t) => {
  let x = 0;
  const r = new Reservoir(10, () => {
    x = (x * 9301 + 49297) % 233280;
    return x / 233280;
  });
  for (let i = 0; i < 1000; i++) r.add(i);
  t.equal(r.values.length, 10);
  t.equal(r.seen, 1000);
  for (const v of r.values) t.ok(v >= 0 && v < 1000);
  t.throws(() => new Reservoir(0), RangeError);
});

t.test('merged percentiles weight each worker by how many observations it stands for', async (t) => {
  // Worker A saw 900 round trips of 1 (sample of 3), worker B 100 of 10 (sample of 2): p50 is 1, p99 is 10.
  const parts = [
    { values: [1, 1, 1], seen: 900 },
    { values: [10, 10], seen: 100 },
  ];
  const [p50, p90, p99] = mergedPercentiles(parts, [50, 90, 99]);
  t.equal(p50, 1);
  t.equal(p90, 1);
  t.equal(p99, 10);
  t.ok(mergedPercentiles([], [50]).every((v) => Number.isNaN(v)));
});

t.test('numbers print with separators or three significant digits', async (t) => {
  t.equal(formatNumber(145000), '145,000');
  t.equal(formatNumber(0.123456), '0.123');
  t.equal(formatNumber(12.345), '12.3');
  t.equal(formatNumber(null), '-');
  t.equal(formatNumber(0), '0');
});

t.test('the table has a row per figure with median, min, max, ratios, target and both verdicts', async (t) => {
  const figs = [
    makeFigure({ name: 'relay_throughput_ratio', values: [80000, 70000, 90000], floors: [145000, 145000, 145000], unit: 'frames/s', targets: [{ on: 'ratio', op: '>=', value: 0.5 }] }),
    makeFigure({ name: 'idle_conn_bytes', values: [9000, 9000, 9000], floors: [3400, 3400, 3400], unit: 'bytes/conn', targets: [{ on: 'figure', op: '<=', value: 8192 }], extra: { fds: 10012 } }),
    makeFigure({ name: 'scale_rtt_10_rooms', values: [200, 200, 200], floors: [100, 100, 100], unit: 'us p50', note: 'informational' }),
    makeFigure({ name: 'handshakes_per_s', values: [2, 3, 4], unit: 'sessions/s' }),
  ];
  const out = formatTable(figs);
  const lines = out.split('\n');
  t.match(lines[0], /^figure\s+median\s+min\s+max\s+floor\s+ratio\s+r\.min\s+r\.max\s+unit\s+target\s+median\s+worst$/);
  const row = (name: string) => lines.find((l) => l.startsWith(name + ' ')) ?? '';
  t.match(row('relay_throughput_ratio'), /80,000\s+70,000\s+90,000\s+145,000\s+0\.552\s+0\.483\s+0\.621\s+frames\/s\s+ratio >= 0\.500\s+ok\s+MISSED$/);
  t.match(row('idle_conn_bytes'), /9,000\s+9,000\s+9,000\s+3,400\s+2\.647\s+2\.647\s+2\.647\s+bytes\/conn\s+figure <= 8,192\s+MISSED\s+MISSED$/);
  t.match(row('scale_rtt_10_rooms'), /200\s+200\s+200\s+100\s+2\.000\s+2\.000\s+2\.000\s+us p50\s+-$/);
  t.match(row('handshakes_per_s'), /3\.00\s+2\.00\s+4\.00\s+-\s+-\s+-\s+-\s+sessions\/s\s+-$/);
  t.match(out, /idle_conn_bytes: 3 repetitions; floor min 3,400 max 3,400; fds=10,012/);
  t.match(out, /scale_rtt_10_rooms: 3 repetitions; floor min 100 max 100; informational/);
  t.match(out, /handshakes_per_s: 3 repetitions$/m);
});

t.test('the --json document keys figures by name and refuses duplicates', async (t) => {
  const run: RunInfo = { quick: true, started: '2026-01-01T00:00:00.000Z', seconds: 1, node: 'v20', cpus: 2, loadavg: [0, 0, 0], loadavg_end: [1, 1, 1], nofile: 20000, workers: 2, serverOptions: { rate: '1' } };
  const a = makeFigure({ name: 'a', values: [1, 2, 3], floors: [4, 4, 4], unit: 'u', targets: [{ on: 'ratio', op: '<=', value: 1 }] });
  const doc = toJsonDoc(run, [a], { idle: 'failed' });
  const back = JSON.parse(JSON.stringify(doc)) as typeof doc;
  t.equal(back.version, 2);
  t.same(back.run, run);
  t.same(Object.keys(back.figures), ['a']);
  t.same(back.figures['a'], {
    name: 'a',
    figure: 2,
    floor: 4,
    ratio: 0.5,
    unit: 'u',
    targets: [{ on: 'ratio', op: '<=', value: 1 }],
    met: true,
    met_worst: true,
    reps: 3,
    spread: { figure: { min: 1, median: 2, max: 3 }, floor: { min: 4, median: 4, max: 4 }, ratio: { min: 0.25, median: 0.5, max: 0.75 } },
    values: { figure: [1, 2, 3], floor: [4, 4, 4] },
    note: '',
    extra: {},
  });
  t.same(back.errors, { idle: 'failed' });
  t.throws(() => toJsonDoc(run, [a, a]), /duplicate/);
});

t.test('arguments: --quick, --json, --only, --workers; anything else is refused', async (t) => {
  t.same(parseBenchArgs([]), { quick: false, json: null, only: [], workers: 2, profile: null, help: false });
  const a = parseBenchArgs(['--quick', '--json', 'out.json', '--only', 'relay,idle', '--workers', '3']);
  t.equal(a.quick, true);
  t.equal(a.json, 'out.json');
  t.same(a.only, ['relay', 'idle']);
  t.equal(a.workers, 3);
  t.throws(() => parseBenchArgs(['--only', 'nope']), /unknown benchmark/);
  t.throws(() => parseBenchArgs(['--workers', '0']));
  t.throws(() => parseBenchArgs(['--workers', '1.5']));
  t.throws(() => parseBenchArgs(['--fast']));
  t.throws(() => parseBenchArgs(['positional']));
  t.throws(() => parseBenchArgs(['--json', '']));
  t.same([...BENCH_NAMES].sort(), ['cluster', 'codec', 'e2e', 'handshake', 'idle', 'relay']);
});

t.test('connectCpu: CPU per connection of relay and clients, medians over repetitions, and the bound it puts on the ratio', async (t) => {
  const ours = [
    { relayUs: 300, clientUs: 1500 },
    { relayUs: 200, clientUs: 1300 },
    { relayUs: 250, clientUs: 1700 },
  ];
  const pipe = [
    { relayUs: 40, clientUs: 160 },
    { relayUs: 50, clientUs: 150 },
    { relayUs: 60, clientUs: 140 },
  ];
  const x = connectCpu(ours, pipe);
  t.equal(x['relay_cpu_us_per_conn'], 250);
  t.equal(x['client_cpu_us_per_conn'], 1500);
  t.equal(x['floor_relay_cpu_us_per_conn'], 50);
  t.equal(x['floor_client_cpu_us_per_conn'], 150);
  t.equal(x['relay_bound_conns_per_s'], 4000);
  t.equal(x['floor_relay_bound_conns_per_s'], 20000);
  t.equal(x['cpu_bound_ratio'], 200 / 1750, "the pipe's relay + client CPU over ours");
  const none = connectCpu([{ relayUs: 0, clientUs: 0 }], [{ relayUs: 0, clientUs: 0 }]);
  t.ok(Number.isNaN(none['relay_bound_conns_per_s']) && Number.isNaN(none['cpu_bound_ratio']), 'no CPU measured (a tick of /proc is 10 ms): not a number, not infinity');
});
