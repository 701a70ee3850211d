/**
 * Shared plumbing of the crypto vector suites (vectors/primitives.json, handshake.json, passive.json):
 * loading node-forge only when a suite runs (it is a
 * development dependency used to reproduce seeded OAEP and salted PSS; the chat runtime never loads it).
 */
import { isDeepStrictEqual } from 'node:util';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Loads the forge-backed helpers lazily. */
export async function loadForge() {
  const [forge, hs] = await Promise.all([import('./crypto-forge.js'), import('./crypto-handshake.js')]);
  return { ...forge, ...hs };
}

export { verifyCases } from './verify-cases.js';

/** Compares an expected JSON value with what the runtime produced; the first difference as text. */
export function diff(path: string, want: unknown, got: unknown): string | undefined {
  if (isDeepStrictEqual(want, got)) return undefined;
  if (typeof want === 'object' && want !== null && typeof got === 'object' && got !== null && !Array.isArray(want)) {
    const keys = new Set([...Object.keys(want), ...Object.keys(got)]);
    for (const k of keys) {
      const d = diff(`${path}.${k}`, (want as Record<string, unknown>)[k], (got as Record<string, unknown>)[k]);
      if (d !== undefined) return d;
    }
  }
  if (Array.isArray(want) && Array.isArray(got)) {
    if (want.length !== got.length) return `${path}: expected ${want.length} entries, got ${got.length}`;
    for (let i = 0; i < want.length; i++) {
      const d = diff(`${path}[${i}]`, want[i], got[i]);
      if (d !== undefined) return d;
    }
  }
  const show = (v: unknown) => {
    const j = JSON.stringify(v) ?? 'undefined';
    return j.length > 100 ? `${j.slice(0, 100)}...(${j.length} chars)` : j;
  };
  return `${path}: expected ${show(want)}, got ${show(got)}`;
}
