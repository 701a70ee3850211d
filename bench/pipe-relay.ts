/**
 * The floor: a bare Node relay that pairs two connections and `socket.pipe`s them into each other, with
 * no parsing, no authentication and no limits. Every relay figure is divided by what this moves on the
 * same machine in the same run.
 *
 * Pairing needs one message: each client first sends one length-prefixed JOIN frame `{t: 5, room}`. Like
 * our relay, the first of a room gets JOINED with no members and later PEER_JOINED, the second gets JOINED
 * listing a member (names are placeholders: the load generator knows its peer), so the load generator's
 * code is the same for both relays. From then on the relay only pipes bytes; nothing after the pairing
 * message is inspected.
 *
 * Usage: node dist/bench/pipe-relay.js [--host 127.0.0.1] [--port 0]; prints `listening on HOST:PORT`.
 */
import { decode } from '@msgpack/msgpack';
import { createServer, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { encodeWire, frame } from '../src/codec/index.js';

const PREAMBLE_MAX = 256;

const { values } = parseArgs({ options: { host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '0' } } });

const waiting = new Map<string, Socket>();

const PLACEHOLDER = { nick: 'peer', key: new Uint8Array(1) };

function onPreamble(sock: Socket, room: string, rest: Buffer): void {
  const other = waiting.get(room);
  if (other === undefined || other.destroyed) {
    waiting.set(room, sock);
    sock.write(encodeWire(frame('JOINED', { room, epoch: 1, members: [] })));
    sock.once('close', () => {
      if (waiting.get(room) === sock) waiting.delete(room);
    });
    if (rest.length > 0) sock.unshift(rest);
    sock.pause();
    return;
  }
  waiting.delete(room);
  other.write(encodeWire(frame('PEER_JOINED', { ...PLACEHOLDER, epoch: 2 })));
  sock.write(encodeWire(frame('JOINED', { room, epoch: 2, members: [PLACEHOLDER] })));
  if (rest.length > 0) sock.unshift(rest);
  sock.pipe(other);
  other.pipe(sock);
  sock.resume();
  other.resume();
}

const server = createServer({ noDelay: true }, (sock) => {
  sock.setNoDelay(true);
  sock.on('error', () => sock.destroy());
  sock.on('close', () => sock.destroy());
  let buf = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    if (buf.length < 4) return;
    const n = buf.readUInt32BE(0);
    if (n === 0 || n > PREAMBLE_MAX) return sock.destroy();
    if (buf.length < 4 + n) return;
    sock.off('data', onData);
    let room: unknown;
    try {
      room = (decode(buf.subarray(4, 4 + n)) as { room?: unknown }).room;
    } catch {
      return sock.destroy();
    }
    if (typeof room !== 'string') return sock.destroy();
    onPreamble(sock, room, buf.subarray(4 + n));
  };
  sock.on('data', onData);
});

// A paired socket that closes ends its partner through pipe(); nothing else needs tearing down.
server.listen(Number(values.port), values.host, () => {
  const a = server.address();
  if (a === null || typeof a === 'string') throw new Error('no TCP address');
  process.stdout.write(`listening on ${a.address}:${a.port}\n`);
});

const stop = () => {
  server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
