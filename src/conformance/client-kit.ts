/**
 * `conformance client`: runs CLIENT_CASES (client-cases.ts) against a client command, one scripted relay
 * (client-context.ts) and one client process per case.
 */
import { CLIENT_CASES } from './client-cases.js';
import { ClientCtx } from './client-context.js';
import { makeIdentity } from './context.js';
import { runCases, selects, type CaseResult } from './runner.js';

export { CLIENT_CASES, type ClientCase } from './client-cases.js';

export interface ClientKitOptions {
  /** The client command; {host} {port} {nick} {room} {home} are replaced per run. */
  readonly cmd: string;
  readonly only?: string | undefined;
  /** How long to wait for each thing the spec or contract requires, in milliseconds (default 5000). */
  readonly waitMs?: number;
  readonly concurrency?: number;
  readonly onResult?: (r: CaseResult) => void;
}

/** Runs the client cases: one scripted relay and one client process per case. */
export async function runClientKit(o: ClientKitOptions): Promise<CaseResult[]> {
  const waitMs = o.waitMs ?? 5000;
  const idents = await Promise.all([makeIdentity(), makeIdentity()]);
  const selected = CLIENT_CASES.filter((c) => selects(o.only, c));
  return runCases(selected, {
    concurrency: o.concurrency ?? 4,
    capMs: 20 * waitMs,
    makeCtx: () => new ClientCtx(o.cmd, waitMs, idents),
    cleanup: (c) => c.cleanup(),
    ...(o.onResult ? { onResult: o.onResult } : {}),
  });
}
