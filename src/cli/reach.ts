/**
 * Reaching the relay before asking for a passphrase (issue 15: "the passphrase is asked before the relay
 * is even reached"). The interactive client opens one TCP connection to the relay's address and closes it
 * at once, before any prompt, so that a relay that is down or a mistyped --port is said first, and nobody
 * types a passphrase for a run that cannot start. Only TCP: the relay's certificate (--tls) and its
 * protocol are checked by the real connection that follows, with the key.
 */
import { connect } from 'node:net';

/** Longest wait for the TCP handshake; a relay that does not answer within it is reported as unreachable. */
export const REACH_TIMEOUT_MS = 5000;

/** Resolves with null when a TCP connection to host:port opens, else with the reason (`ECONNREFUSED`, `timeout`, ...). */
export function reachRelay(host: string, port: number, timeoutMs = REACH_TIMEOUT_MS): Promise<string | null> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const done = (why: string | null) => {
      clearTimeout(timer);
      sock.removeAllListeners();
      sock.on('error', () => undefined);
      sock.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => done(`no answer within ${timeoutMs / 1000} s`), timeoutMs);
    sock.once('connect', () => done(null));
    sock.once('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
  });
}
