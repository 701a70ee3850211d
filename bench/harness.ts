/**
 * The pure parts of the benchmark harness: figures and their ratios against floors measured in the same
 * run, targets, percentiles, argument parsing, the printed table and the `--json` document. Nothing here
 * opens a socket or reads a clock, so test/bench/harness.test.ts exercises all of it in CI.
 *
 * Why ratios: the machines this runs on are shared, so an absolute figure moves between runs; a floor
 * measured seconds earlier on the same machine moves with it (STYLE.md rule 11).
 */
import { parseArgs } from 'node:util';

/** A target on one column of a figure: `ratio >= 0.5`, `figure <= 8192`. */
export interface Target {
  readonly on: 'ratio' | 'figure';
  readonly op: '>=' | '<=';
  readonly value: number;
}

/** The smallest, middle and largest of a figure's repetitions. */
export interface Spread {
  readonly min: number;
  readonly median: number;
  readonly max: number;
}

/** Every figure is measured at least this many times; fewer is a harness error, not a figure. */
export const MIN_REPS = 3;

/**
 * One measured figure over its repetitions. `figure` is the median of `values.figure`, `floor` the
 * median of the floors (null when the row has no floor, as for an absolute count), `ratio` the median of
 * the per-repetition ratios figure_i / floor_i (a floor measured next to each repetition divides that
 * repetition). `met` is whether every target holds on the medians; `met_worst` whether it holds on the
 * worst repetition too (the minimum for a `>=` target, the maximum for `<=`); both null without targets.
 * `extra` holds secondary numbers (p99, counts, limits) under self-describing keys.
 */
export interface Figure {
  readonly name: string;
  readonly figure: number;
  readonly floor: number | null;
  readonly ratio: number | null;
  readonly unit: string;
  readonly targets: readonly Target[];
  readonly met: boolean | null;
  readonly met_worst: boolean | null;
  readonly reps: number;
  readonly spread: { readonly figure: Spread; readonly floor: Spread | null; readonly ratio: Spread | null };
  readonly values: { readonly figure: readonly number[]; readonly floor: readonly number[] | null };
  readonly note: string;
  readonly extra: Readonly<Record<string, number>>;
}

export interface FigureInput {
  name: string;
  /** One value per repetition (at least MIN_REPS), each a finite number: NaN means a repetition saw nothing. */
  values: readonly number[];
  /** One floor per repetition (paired with `values` by index), or one constant floor, or none. */
  floors?: readonly number[] | number | null;
  unit: string;
  targets?: readonly Target[];
  note?: string;
  extra?: Record<string, number>;
}

/**
 * figure / floor; null when there is no floor or the floor is not a positive finite number (a ratio
 * against zero would print as Infinity and read as a result).
 */
export function ratioOf(figure: number, floor: number | null | undefined): number | null {
  if (floor === null || floor === undefined || !Number.isFinite(floor) || floor <= 0 || !Number.isFinite(figure)) return null;
  return figure / floor;
}

/** Whether one target holds; false when the column it applies to is missing or not finite. */
export function targetMet(t: Target, figure: number, ratio: number | null): boolean {
  const v = t.on === 'ratio' ? ratio : figure;
  if (v === null || !Number.isFinite(v)) return false;
  return t.op === '>=' ? v >= t.value : v <= t.value;
}

/** min, median and max of a non-empty list. */
export function spreadOf(xs: readonly number[]): Spread {
  if (xs.length === 0) throw new RangeError('spread of nothing');
  return { min: Math.min(...xs), median: median(xs), max: Math.max(...xs) };
}

/**
 * Builds a Figure from its repetitions: medians, spreads, per-repetition ratios and the verdicts. Throws
 * (the benchmark then fails with this reason) when there are fewer than MIN_REPS repetitions, when a
 * repetition is not a finite number (it produced no samples), when a floor is not a positive finite
 * number, or when the floors are not paired one to one with the repetitions.
 */
export function makeFigure(f: FigureInput): Figure {
  if (f.values.length < MIN_REPS) throw new RangeError(`${f.name}: ${f.values.length} repetition(s), at least ${MIN_REPS} needed`);
  f.values.forEach((v, i) => {
    if (!Number.isFinite(v)) throw new RangeError(`${f.name}: repetition ${i + 1} of ${f.values.length} produced no figure (${v})`);
  });
  let floors: number[] | null = null;
  const fl = f.floors;
  if (typeof fl === 'number') floors = f.values.map(() => fl);
  else if (fl !== null && fl !== undefined) {
    if (fl.length !== f.values.length) throw new RangeError(`${f.name}: ${fl.length} floor(s) for ${f.values.length} repetition(s)`);
    floors = [...fl];
  }
  floors?.forEach((v, i) => {
    if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${f.name}: floor of repetition ${i + 1} is ${v}, not a positive figure`);
  });
  const ratios = floors === null ? null : f.values.map((v, i) => ratioOf(v, floors[i])!);
  const fig = spreadOf(f.values);
  const flo = floors === null ? null : spreadOf(floors);
  const rat = ratios === null ? null : spreadOf(ratios);
  const targets = f.targets ?? [];
  const holds = (pick: (s: Spread, t: Target) => number) =>
    targets.every((t) => targetMet(t, pick(fig, t), rat === null ? null : pick(rat, t)));
  return {
    name: f.name,
    figure: fig.median,
    floor: flo === null ? null : flo.median,
    ratio: rat === null ? null : rat.median,
    unit: f.unit,
    targets,
    met: targets.length === 0 ? null : holds((s) => s.median),
    met_worst: targets.length === 0 ? null : holds((s, t) => (t.op === '>=' ? s.min : s.max)),
    reps: f.values.length,
    spread: { figure: fig, floor: flo, ratio: rat },
    values: { figure: [...f.values], floor: floors },
    note: f.note ?? '',
    extra: f.extra ?? {},
  };
}

/** `ratio >= 0.5, figure >= 39500`. */
export function formatTargets(ts: readonly Target[]): string {
  return ts.length === 0 ? '-' : ts.map((t) => `${t.on} ${t.op} ${formatNumber(t.value)}`).join(', ');
}

/** Numbers for the table: integers with thousands separators, small values to 3 significant digits. */
export function formatNumber(n: number | null): string {
  if (n === null) return '-';
  if (!Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  if (a >= 1000) return Math.round(n).toLocaleString('en-US');
  if (a >= 100) return n.toFixed(0);
  if (a >= 10) return n.toFixed(1);
  if (a >= 1) return n.toFixed(2);
  if (a === 0) return '0';
  return n.toPrecision(3);
}

/**
 * The result table as plain text: one row per figure, columns name, the median figure with the minimum
 * and maximum over its repetitions, the median floor, the median ratio with its minimum and maximum,
 * unit, target, the verdict on the medians (`ok`, `MISSED`, or blank without a target) and on the worst
 * repetition; then one line per figure with the repetition count, the floor's spread, extras and notes.
 */
export function formatTable(figs: readonly Figure[]): string {
  const header = ['figure', 'median', 'min', 'max', 'floor', 'ratio', 'r.min', 'r.max', 'unit', 'target', 'median', 'worst'];
  const verdict = (m: boolean | null) => (m === null ? '' : m ? 'ok' : 'MISSED');
  const ratio = (r: number | null | undefined) => (r === null || r === undefined ? '-' : r.toFixed(3));
  const rows = figs.map((f) => [
    f.name,
    formatNumber(f.figure),
    formatNumber(f.spread.figure.min),
    formatNumber(f.spread.figure.max),
    formatNumber(f.floor),
    ratio(f.ratio),
    ratio(f.spread.ratio?.min),
    ratio(f.spread.ratio?.max),
    f.unit,
    formatTargets(f.targets),
    verdict(f.met),
    verdict(f.met_worst),
  ]);
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  const numeric = new Set([1, 2, 3, 4, 5, 6, 7]);
  const line = (r: string[]) =>
    r
      .map((cell, c) => (numeric.has(c) ? cell.padStart(widths[c] ?? 0) : cell.padEnd(widths[c] ?? 0)))
      .join('  ')
      .trimEnd();
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  ').trimEnd(), ...rows.map(line)];
  out.push('');
  for (const f of figs) {
    const fl = f.spread.floor;
    const parts = [`${f.reps} repetitions`];
    if (fl !== null) parts.push(`floor min ${formatNumber(fl.min)} max ${formatNumber(fl.max)}`);
    parts.push(...Object.entries(f.extra).map(([k, v]) => `${k}=${formatNumber(v)}`));
    if (f.note !== '') parts.push(f.note);
    out.push(`  ${f.name}: ${parts.join('; ')}`);
  }
  return out.join('\n') + '\n';
}

/** Facts about the run that a reader needs to compare two result files. */
export interface RunInfo {
  readonly quick: boolean;
  readonly started: string;
  readonly seconds: number;
  readonly node: string;
  readonly cpus: number;
  /** The load average (1, 5, 15 minutes) when the run started and when it ended. */
  readonly loadavg: readonly number[];
  readonly loadavg_end: readonly number[];
  readonly nofile: number | null;
  readonly workers: number;
  readonly serverOptions: Readonly<Record<string, string>>;
}

/**
 * The `--json FILE` document: version 2 (each figure carries its repetitions and their spread), the run
 * facts, and the figures keyed by name, in run order.
 */
export interface JsonDoc {
  readonly version: 2;
  readonly run: RunInfo;
  readonly figures: Record<string, Figure>;
  readonly errors: Record<string, string>;
}

export function toJsonDoc(run: RunInfo, figs: readonly Figure[], errors: Readonly<Record<string, string>> = {}): JsonDoc {
  const figures: Record<string, Figure> = {};
  for (const f of figs) {
    if (Object.hasOwn(figures, f.name)) throw new Error(`duplicate figure ${f.name}`);
    figures[f.name] = f;
  }
  return { version: 2, run, figures, errors: { ...errors } };
}

/**
 * The p-th percentile (0 < p <= 100) by the nearest-rank method over `sorted` (ascending); NaN when empty.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/**
 * Median of unsorted numbers, ignoring NaN and infinities (a repetition that produced no samples must not
 * poison the sort); the mean of the middle pair for an even count; NaN when nothing finite is left.
 */
export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Checks one worker's share of a repetition. `inWindow[k]` is what connection k received in the measuring
 * window, `inPhase[k]` what it received over the whole phase (warm-up and drain included). Throws, so the
 * repetition is an error with this reason and never a figure, when nothing at all arrived in the window
 * or when a connection received nothing in the whole phase (its stream never started: the failure that
 * produced issue 16's repetitions of 0 frames/s). Returns how many connections received nothing in the
 * window although they did in the phase: starved by the others on an overloaded machine, reported with
 * the figure rather than failing it.
 */
export function checkReceived(
  phase: string,
  sides: readonly { readonly nick: string; readonly role: string }[],
  inWindow: readonly number[],
  inPhase: readonly number[],
  windowMs: number,
): { starved: number } {
  if (inWindow.length !== sides.length || inPhase.length !== sides.length) {
    throw new RangeError(`${phase}: ${inWindow.length} and ${inPhase.length} count(s) for ${sides.length} connection(s)`);
  }
  if (sides.length === 0) return { starved: 0 };
  const never = sides.flatMap((_, k) => (inPhase[k]! > 0 ? [] : [k]));
  if (never.length > 0) {
    const s = sides[never[0]!]!;
    throw new Error(`${phase}: ${never.length} of ${sides.length} connection(s) received nothing in the whole phase (first: ${s.nick}, role ${s.role})`);
  }
  const total = inWindow.reduce((x, y) => x + y, 0);
  if (total === 0) throw new Error(`${phase}: no connection of ${sides.length} received anything in the ${windowMs} ms window (${inPhase.reduce((x, y) => x + y, 0)} over the whole phase)`);
  return { starved: inWindow.filter((n) => n === 0).length };
}

/**
 * A bounded uniform sample of a stream (reservoir sampling, Algorithm R): memory stays at `capacity`
 * numbers however long a benchmark runs, and every observation is equally likely to be kept.
 */
export class Reservoir {
  readonly values: number[] = [];
  seen = 0;
  constructor(
    readonly capacity: number,
    private readonly random: () => number = Math.random,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  }
  add(v: number): void {
    this.seen++;
    if (this.values.length < this.capacity) {
      this.values.push(v);
      return;
    }
    const j = Math.floor(this.random() * this.seen);
    if (j < this.capacity) this.values[j] = v;
  }
}

/**
 * Merges per-worker samples into percentiles, weighting each worker's sample by how many observations it
 * stands for (a worker that saw ten times more round trips counts ten times more).
 */
export function mergedPercentiles(parts: readonly { values: readonly number[]; seen: number }[], ps: readonly number[]): number[] {
  const weighted: [number, number][] = [];
  for (const p of parts) {
    if (p.values.length === 0) continue;
    const w = p.seen / p.values.length;
    for (const v of p.values) weighted.push([v, w]);
  }
  weighted.sort((a, b) => a[0] - b[0]);
  const total = weighted.reduce((s, [, w]) => s + w, 0);
  return ps.map((p) => {
    if (weighted.length === 0) return NaN;
    const want = (p / 100) * total;
    let acc = 0;
    for (const [v, w] of weighted) {
      acc += w;
      if (acc >= want - 1e-9) return v;
    }
    return weighted[weighted.length - 1]![0];
  });
}

export interface BenchArgs {
  readonly quick: boolean;
  readonly json: string | null;
  readonly only: readonly string[];
  readonly workers: number;
  readonly profile: string | null;
  readonly help: boolean;
}

export const BENCH_USAGE = `usage: npm run bench -- [--quick] [--json FILE] [--only NAME[,NAME]] [--workers N] [--profile DIR]

  --quick         short runs (3 repetitions of 0.5 s windows), 1,000 instead of 10,000 idle connections (a CI smoke run)
  --json FILE     also write the figures as JSON to FILE
  --only NAMES    run only these benchmarks: relay, e2e, handshake, idle, codec, cluster (comma-separated)
  --workers N     load-generator processes (default 2)
  --profile DIR   run the relays and load generators under node --cpu-prof (.cpuprofile files in DIR)
`;

export const BENCH_NAMES = ['relay', 'e2e', 'handshake', 'idle', 'codec', 'cluster'] as const;

/** Parses `npm run bench` arguments strictly: an unknown option or benchmark name throws. */
export function parseBenchArgs(argv: readonly string[]): BenchArgs {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'string' },
      only: { type: 'string' },
      workers: { type: 'string' },
      profile: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const only = values.only === undefined ? [] : values.only.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const o of only) {
    if (!(BENCH_NAMES as readonly string[]).includes(o)) throw new Error(`unknown benchmark '${o}' (expected one of ${BENCH_NAMES.join(', ')})`);
  }
  let workers = 2;
  if (values.workers !== undefined) {
    workers = Number(values.workers);
    if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new Error(`--workers: expected an integer 1..64, got '${values.workers}'`);
  }
  if (values.json === '') throw new Error('--json: expected a file name');
  return {
    quick: values.quick === true,
    json: values.json ?? null,
    only,
    workers,
    profile: values.profile ?? null,
    help: values.help === true,
  };
}

/**
 * Where the CPU of a connection goes (microseconds of /proc CPU per connection, medians over the
 * repetitions), ours and the pipe's: the relay's, the load generators' (all clients together), and the
 * rate each relay's own CPU alone would allow (1e6 / its microseconds: what it could take from clients
 * on other machines). `cpu_bound_ratio` is the pipe's relay + client CPU per connection over ours: the
 * most connect_rate_ratio can be when the machine's cores, not the relays, are the limit.
 */
export function connectCpu(ours: readonly { relayUs: number; clientUs: number }[], pipe: readonly { relayUs: number; clientUs: number }[]): Record<string, number> {
  const m = (xs: readonly { relayUs: number; clientUs: number }[], k: 'relayUs' | 'clientUs') => median(xs.map((x) => x[k]));
  const [or, oc, pr, pc] = [m(ours, 'relayUs'), m(ours, 'clientUs'), m(pipe, 'relayUs'), m(pipe, 'clientUs')];
  return {
    relay_cpu_us_per_conn: or,
    floor_relay_cpu_us_per_conn: pr,
    client_cpu_us_per_conn: oc,
    floor_client_cpu_us_per_conn: pc,
    relay_bound_conns_per_s: or > 0 ? 1e6 / or : NaN,
    floor_relay_bound_conns_per_s: pr > 0 ? 1e6 / pr : NaN,
    cpu_bound_ratio: or + oc > 0 ? (pr + pc) / (or + oc) : NaN,
  };
}
