/**
 * Runs conformance cases and collects one result per case. Cases run concurrently in a bounded pool
 * (slow timeout cases start first so their waits overlap with everything else), each with its own
 * context, and every case is bounded: a target that never answers fails each case after its waits,
 * never hangs the run.
 */
import { CaseFailure, CaseSkip } from './conn.js';

export type Status = 'pass' | 'fail' | 'skip' | 'error';

export interface CaseResult {
  readonly id: string;
  readonly section: string;
  readonly title: string;
  readonly status: Status;
  /** For `fail`: what the spec requires. */
  readonly expected?: string;
  /** For `fail`: what the target did; for `skip` and `error`: why. */
  readonly arrived?: string;
  /** Wall time of the case in milliseconds (informative only). */
  readonly ms: number;
}

export interface RunnableCase<C> {
  readonly id: string;
  readonly section: string;
  readonly title: string;
  readonly slow?: boolean;
  readonly keys?: number;
  run(ctx: C): Promise<void>;
}

/** True when `only` selects the case: a section number ("4", "7.1") or a prefix of the case id. */
export function selects(only: string | undefined, c: { id: string; section: string }): boolean {
  if (only === undefined || only === '') return true;
  const want = only.replace(/^§/, '');
  if (/^\d+(\.\d+)*$/.test(want)) {
    const nums = [...c.section.matchAll(/§(\d+(?:\.\d+)*)/g)].map((m) => m[1]!);
    return nums.some((n) => n === want || n.startsWith(want + '.'));
  }
  return c.id.startsWith(want);
}

/**
 * Runs `cases` with at most `concurrency` at a time; `makeCtx` gives each case a fresh context and
 * `cleanup` releases it. `capMs` bounds one case. Results come back in the order of `cases`.
 */
export async function runCases<C>(
  cases: readonly RunnableCase<C>[],
  opts: {
    concurrency: number;
    capMs: number;
    /** The case's context; awaited before the case's clock starts. */
    makeCtx: (c: RunnableCase<C>) => C | Promise<C>;
    cleanup: (ctx: C) => void;
    onResult?: (r: CaseResult) => void;
  },
): Promise<CaseResult[]> {
  const results = new Array<CaseResult>(cases.length);
  const order = cases.map((c, i) => ({ c, i })).sort((x, y) => Number(!!y.c.slow) - Number(!!x.c.slow));
  const slow = order.filter((x) => x.c.slow);
  const fast = order.filter((x) => !x.c.slow);

  async function one(c: RunnableCase<C>, i: number): Promise<void> {
    const ctx = await opts.makeCtx(c);
    const t0 = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const cap = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CaseFailure('the case to finish', `still running after ${opts.capMs} ms`)), opts.capMs);
    });
    let r: Omit<CaseResult, 'ms'>;
    try {
      await Promise.race([c.run(ctx), cap]);
      r = { id: c.id, section: c.section, title: c.title, status: 'pass' };
    } catch (e) {
      if (e instanceof CaseFailure) r = { id: c.id, section: c.section, title: c.title, status: 'fail', expected: e.expected, arrived: e.arrived };
      else if (e instanceof CaseSkip) r = { id: c.id, section: c.section, title: c.title, status: 'skip', arrived: e.reason };
      else r = { id: c.id, section: c.section, title: c.title, status: 'error', arrived: `kit error: ${e instanceof Error ? e.message : String(e)}` };
    } finally {
      clearTimeout(timer);
      opts.cleanup(ctx);
    }
    const res = { ...r, ms: Math.round(performance.now() - t0) };
    results[i] = res;
    opts.onResult?.(res);
  }

  async function pool(items: typeof order, width: number): Promise<void> {
    let next = 0;
    const workers = Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) {
        const { c, i } = items[next++]!;
        await one(c, i);
      }
    });
    await Promise.all(workers);
  }

  // Slow cases mostly wait; they get their own pool so they overlap with the fast ones.
  await Promise.all([pool(slow, Math.max(1, slow.length)), pool(fast, opts.concurrency)]);
  return results;
}

/** Counts by status. */
export function summarize(results: readonly CaseResult[]): Record<Status, number> & { total: number } {
  const s = { total: results.length, pass: 0, fail: 0, skip: 0, error: 0 };
  for (const r of results) s[r.status]++;
  return s;
}

/** The report table: one line per case, and for a failure the expected and arrived lines under it. */
export function formatTable(results: readonly CaseResult[]): string {
  const idW = Math.max(4, ...results.map((r) => r.id.length));
  const secW = Math.max(7, ...results.map((r) => r.section.length));
  const lines = [`${'result'.padEnd(6)}  ${'case'.padEnd(idW)}  ${'section'.padEnd(secW)}  requirement`];
  lines.push(`${'-'.repeat(6)}  ${'-'.repeat(idW)}  ${'-'.repeat(secW)}  ${'-'.repeat(11)}`);
  for (const r of results) {
    lines.push(`${r.status.toUpperCase().padEnd(6)}  ${r.id.padEnd(idW)}  ${r.section.padEnd(secW)}  ${r.title}`);
    if (r.status === 'fail') {
      lines.push(`${' '.repeat(8)}expected: ${r.expected ?? ''}`);
      lines.push(`${' '.repeat(8)}arrived:  ${r.arrived ?? ''}`);
    } else if (r.status === 'skip' || r.status === 'error') {
      lines.push(`${' '.repeat(8)}${r.status === 'skip' ? 'skipped' : 'error'}: ${r.arrived ?? ''}`);
    }
  }
  const s = summarize(results);
  lines.push('');
  lines.push(`${s.total} cases: ${s.pass} passed, ${s.fail} failed, ${s.skip} skipped, ${s.error} kit errors`);
  return lines.join('\n') + '\n';
}
