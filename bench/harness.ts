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

/**
 * One measured figure. `figure` and `floor` share `unit`; `ratio` is figure / floor (null when the row
 * has no floor, as for an absolute count); `met` is whether every target holds (null without targets).
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
  readonly note: string;
  readonly extra: Readonly<Record<string, number>>;
}

export interface FigureInput {
  name: string;
  figure: number;
  floor?: number | null;
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

/** Builds a Figure: computes the ratio and whether the targets are met. */
export function makeFigure(f: FigureInput): Figure {
  const floor = f.floor ?? null;
  const ratio = ratioOf(f.figure, floor);
  const targets = f.targets ?? [];
  const met = targets.length === 0 ? null : targets.every((t) => targetMet(t, f.figure, ratio));
  return { name: f.name, figure: f.figure, floor, ratio, unit: f.unit, targets, met, note: f.note ?? '', extra: f.extra ?? {} };
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
 * The result table as plain text: one row per figure, columns name, figure, floor, ratio, unit, target
 * and a verdict (`ok`, `MISSED`, or blank without a target), then one line per figure with notes/extras.
 */
export function formatTable(figs: readonly Figure[]): string {
  const header = ['figure', 'value', 'floor', 'ratio', 'unit', 'target', ''];
  const rows = figs.map((f) => [
    f.name,
    formatNumber(f.figure),
    formatNumber(f.floor),
    f.ratio === null ? '-' : f.ratio.toFixed(3),
    f.unit,
    formatTargets(f.targets),
    f.met === null ? '' : f.met ? 'ok' : 'MISSED',
  ]);
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  const numeric = new Set([1, 2, 3]);
  const line = (r: string[]) =>
    r
      .map((cell, c) => (numeric.has(c) ? cell.padStart(widths[c] ?? 0) : cell.padEnd(widths[c] ?? 0)))
      .join('  ')
      .trimEnd();
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  ').trimEnd(), ...rows.map(line)];
  const notes = figs.filter((f) => f.note !== '' || Object.keys(f.extra).length > 0);
  if (notes.length > 0) {
    out.push('');
    for (const f of notes) {
      const ex = Object.entries(f.extra).map(([k, v]) => `${k}=${formatNumber(v)}`);
      out.push(`  ${f.name}: ${[...ex, f.note].filter((s) => s !== '').join('; ')}`);
    }
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
  readonly loadavg: readonly number[];
  readonly nofile: number | null;
  readonly workers: number;
  readonly serverOptions: Readonly<Record<string, string>>;
}

/** The `--json FILE` document: version 1, the run facts, and the figures keyed by name, in run order. */
export interface JsonDoc {
  readonly version: 1;
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
  return { version: 1, run, figures, errors: { ...errors } };
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

  --quick         short runs, one repetition, 1,000 instead of 10,000 idle connections (a CI smoke run)
  --json FILE     also write the figures as JSON to FILE
  --only NAMES    run only these benchmarks: relay, e2e, handshake, idle, codec (comma-separated)
  --workers N     load-generator processes (default 2)
  --profile DIR   run the relay under node --cpu-prof, writing .cpuprofile files to DIR
`;

export const BENCH_NAMES = ['relay', 'e2e', 'handshake', 'idle', 'codec'] as const;

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
