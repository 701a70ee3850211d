/**
 * The TCP transport of the client (a byte stream, §3): the Node edge behind src/client/transport.ts.
 */
import { connect } from 'node:net';
import type { Transport, TransportFactory } from './transport.js';

/** A TCP connection to host:port, Nagle off (frames are small and latency matters more than packets). */
export function tcpTransport(host: string, port: number): TransportFactory {
  return (h) => {
    const sock = connect({ host, port });
    sock.setNoDelay(true);
    let connected = false;
    let closed = false;
    const close = (reason?: string) => {
      if (closed) return;
      closed = true;
      h.close(reason);
    };
    sock.once('connect', () => {
      connected = true;
      h.open();
    });
    sock.on('data', (chunk: Buffer) => h.data(chunk));
    sock.on('drain', () => h.drain());
    sock.on('error', (err: NodeJS.ErrnoException) =>
      close(connected ? `connection lost: ${err.code ?? err.message}` : `cannot connect to ${host}:${port}: ${err.code ?? err.message}`),
    );
    sock.on('close', () => close());
    const t: Transport = {
      framing: 'stream',
      write: (bytes) => (sock.destroyed ? false : sock.write(bytes)),
      cork: () => sock.cork(),
      uncork: () => {
        if (!sock.destroyed) sock.uncork();
      },
      end: () => {
        // end() flushes what is written (a LEAVE or an ERROR) before the FIN.
        sock.end();
        sock.destroySoon();
      },
    };
    return t;
  };
}
