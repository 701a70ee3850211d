/**
 * `conformance server`: drives a live relay through SERVER_CASES (spec/PROTOCOL.md §3-§7, §9, §10),
 * over TCP or over its WebSocket endpoint (§3.1): the same cases, the same byte streams.
 */
import { LIMITS } from '../protocol/limits.js';
import { Ctx, KEYS_PER_CASE, type ServerKitOptions } from './context.js';
import { KeyPool } from '../wirekit/identity.js';
import { runCases, selects, type CaseResult } from './runner.js';
import { SERVER_CASES } from './server-cases.js';

export interface ServerRunOptions extends Partial<Omit<ServerKitOptions, 'host' | 'port'>> {
  readonly host: string;
  readonly port: number;
  /** A section number ("7.1") or a case id prefix; only matching cases run. */
  readonly only?: string | undefined;
  /**
   * true: only the cases that wait for a timeout of the target (ServerCase.slow); false: only the others;
   * undefined: both. A test can then run the timing cases against a relay with short timeouts and the
   * rest against one whose timeouts no case reaches under load.
   */
  readonly slow?: boolean | undefined;
  readonly concurrency?: number;
  readonly onResult?: (r: CaseResult) => void;
}

export const DEFAULT_WAIT_MS = 2000;
export const DEFAULT_BUDGET = 48;

/** Runs the server cases against host:port and returns one result per selected case. */
export async function runServerKit(o: ServerRunOptions): Promise<CaseResult[]> {
  const opts: ServerKitOptions = {
    host: o.host,
    port: o.port,
    waitMs: o.waitMs ?? DEFAULT_WAIT_MS,
    handshakeMs: o.handshakeMs ?? LIMITS.HANDSHAKE_TIMEOUT_MS,
    connectionBudget: o.connectionBudget ?? DEFAULT_BUDGET,
    connectionsPerKey: o.connectionsPerKey ?? LIMITS.MAX_CONNECTIONS_PER_KEY,
    transport: o.transport ?? 'tcp',
  };
  const selected = SERVER_CASES.filter((c) => selects(o.only, c) && (o.slow === undefined || !!c.slow === o.slow));
  if (selected.length === 0) return [];
  const pool = KeyPool.shared;
  // Spare keys first, off the event loop: a case that needs more than it reserved takes one of them.
  await pool.warm();
  return runCases(selected, {
    concurrency: o.concurrency ?? 8,
    // Generous: the slowest case waits about 2.5 idle timeouts plus a few answers.
    capMs: 120_000 + 4 * opts.handshakeMs,
    // A case's keys are made before its clock starts (key generation is slow on a loaded machine).
    makeCtx: async (c) => new Ctx(opts, pool, await pool.reserve(c.keys ?? KEYS_PER_CASE)),
    cleanup: (ctx) => ctx.cleanup(),
    ...(o.onResult ? { onResult: o.onResult } : {}),
  });
}
