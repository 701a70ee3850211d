/**
 * Shared plumbing of the crypto vector suites (vectors/primitives.json, handshake.json, passive.json):
 * loading node-forge only when a suite runs (it is a
 * development dependency used to reproduce seeded OAEP and salted PSS; the chat runtime never loads it).
 */
import { isDeepStrictEqual } from 'node:util';
import { ProtocolError } from '../protocol/errors.js';
import type { VectorCase, VectorDocument, VectorFailure, VectorSuite } from './types.js';
import { verifyCases } from './verify-cases.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Loads the forge-backed helpers lazily. */
export async function loadForge() {
  const [forge, hs] = await Promise.all([import('./crypto-forge.js'), import('./crypto-handshake.js')]);
  return { ...forge, ...hs };
}

export { verifyCases } from './verify-cases.js';

/** A suite of vector file `file`: its document is `head` with the cases `cases` makes; `verify` checks one. */
export function suite(file: string, head: Omit<VectorDocument, 'cases'>, cases: () => Promise<VectorCase[]>, verify: VectorSuite['verify']): VectorSuite {
  return {
    file,
    async generate(): Promise<VectorDocument> {
      return { ...head, cases: await cases() };
    },
    verify,
  };
}

/** What an op case expects (and an op gives): every field of `output`, or `error`, a §9 code name. */
export type OpResult = { output: Json } | { error: string };

/** An op case as a suite writes it, before its result is computed. */
export interface OpSpec {
  id: string;
  description: string;
  section: string;
  op: string;
  input: Record<string, Json>;
}

/** Runs one op; a ProtocolError (the refusal a defect case expects) is the result {error: its code name}. */
export async function opResult(run: () => Promise<OpResult>): Promise<OpResult> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof ProtocolError) return { error: e.errorName };
    throw e;
  }
}

/** The cases of an op suite (primitives.json, roster.json): each spec with the result `run` gives it. */
export async function opCases(specs: readonly OpSpec[], run: (op: string, input: Record<string, Json>) => Promise<OpResult>): Promise<VectorCase[]> {
  const out: VectorCase[] = [];
  for (const s of specs) out.push({ id: s.id, description: s.description, section: s.section, op: s.op, input: s.input, ...(await opResult(() => run(s.op, s.input))) });
  return out;
}

/**
 * Verifies the cases of an op suite. A runner never skips what it does not understand (spec/VECTORS.md
 * §3): no unknown case field, exactly one of output and error, an op of `inputs` with exactly its input
 * fields; then the result `run` gives must equal the case's.
 */
export function verifyOpCases(doc: unknown, inputs: Record<string, readonly string[]>, run: (op: string, input: Record<string, Json>) => Promise<OpResult>): Promise<VectorFailure[]> {
  return verifyCases(doc, async (c: VectorCase) => {
    const extra = Object.keys(c).filter((k) => !['id', 'description', 'section', 'op', 'input', 'output', 'error'].includes(k));
    if (extra.length > 0) return `unknown case fields: ${extra.join(', ')}`;
    if (('error' in c) === ('output' in c)) return 'expected exactly one of output, error';
    const allowed = inputs[String(c['op'])];
    if (allowed === undefined) return `unknown op ${String(c['op'])}`;
    const inputKeys = Object.keys((c['input'] ?? {}) as object);
    if (inputKeys.length !== allowed.length || inputKeys.some((k) => !allowed.includes(k))) return `input fields ${inputKeys.join(',')}, expected ${allowed.join(',')}`;
    const want = 'error' in c ? { error: c['error'] } : { output: c['output'] };
    return diff(c.id, want, await opResult(() => run(String(c['op']), c['input'] as Record<string, Json>)));
  });
}

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
