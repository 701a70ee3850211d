/** Case iteration shared by every vector suite's verify: duplicate ids and thrown errors are failures. */
import type { VectorCase, VectorFailure } from './types.js';

/** Runs `check` over every case of `doc` in order; a thrown error is that case's failure. */
export async function verifyCases(doc: unknown, check: (c: VectorCase, index: number) => Promise<string | undefined> | string | undefined): Promise<VectorFailure[]> {
  const cases = (doc as { cases?: unknown } | null)?.cases;
  if (!Array.isArray(cases)) return [{ id: '(document)', reason: 'expected an object with a cases array' }];
  const failures: VectorFailure[] = [];
  const seen = new Set<string>();
  for (const [i, raw] of cases.entries()) {
    const c = (typeof raw === 'object' && raw !== null ? raw : {}) as VectorCase;
    const id = typeof c.id === 'string' ? c.id : `(case ${i})`;
    if (seen.has(id)) {
      failures.push({ id, reason: 'duplicate case id' });
      continue;
    }
    seen.add(id);
    try {
      const reason = await check(c, i);
      if (reason !== undefined) failures.push({ id, reason });
    } catch (e) {
      failures.push({ id, reason: `bad case: ${e instanceof Error ? e.message : String(e)}` });
    }
  }
  return failures;
}
