/**
 * Shrinks a failing case to the smallest payload that still fails (delta debugging over bytes, then
 * dropping write() boundaries), re-running it against the relay at every step. Bounded in attempts, so
 * it ends by itself even when every candidate still fails.
 */
import type { FuzzCase } from './harness.js';

/**
 * `fails(c)` re-runs a candidate and says whether it still fails the same way. Returns the smallest
 * failing case found within `maxAttempts` runs (the original when nothing smaller fails).
 */
export async function minimise(c: FuzzCase, fails: (c: FuzzCase) => Promise<boolean>, maxAttempts = 300): Promise<FuzzCase> {
  let best = c;
  let attempts = 0;
  const tryCase = async (cand: FuzzCase): Promise<boolean> => {
    if (attempts >= maxAttempts) return false;
    attempts++;
    if (await fails(cand)) {
      best = cand;
      return true;
    }
    return false;
  };
  const withPayload = (p: Buffer): FuzzCase => {
    // Keep the write boundaries that still fall inside the shorter stream.
    const total = p.length + best.sentinel.length;
    return { ...best, payload: p, cuts: best.cuts.filter((x) => x < total) };
  };
  // ddmin over the payload: remove chunks of halving size while the case still fails.
  let chunk = Math.max(1, best.payload.length >> 1);
  while (chunk >= 1 && attempts < maxAttempts) {
    let removed = false;
    for (let at = 0; at < best.payload.length && attempts < maxAttempts; ) {
      const p = Buffer.concat([best.payload.subarray(0, at), best.payload.subarray(at + chunk)]);
      if (p.length < best.payload.length && (await tryCase(withPayload(p)))) removed = true;
      else at += chunk;
    }
    if (!removed) chunk >>= 1;
  }
  // Then fewer write() boundaries.
  for (let i = best.cuts.length - 1; i >= 0 && attempts < maxAttempts; i--) {
    await tryCase({ ...best, cuts: best.cuts.filter((_, j) => j !== i) });
  }
  return best;
}
