/**
 * TLS first flights for the relay's ClientHello gate tests (src/server/tls.ts): the ClientHello Node's
 * own TLS client sends, captured on a plain listener, and edits of it: padded to an exact size,
 * split over smaller records, or with no key share (so that the relay must answer HelloRetryRequest).
 */
import { createServer as netServer } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { TLS_ALPN } from '../../src/server/tls.js';

/** The extensions of a one-record ClientHello: where they start in the handshake body, and each (type, data). */
function extensions(hello: Buffer): { body: Buffer; at: number; list: [number, Buffer][] } {
  const body = hello.subarray(5 + 4);
  let p = 2 + 32;
  p += 1 + body[p]!;
  p += 2 + body.readUInt16BE(p);
  p += 1 + body[p]!;
  const end = p + 2 + body.readUInt16BE(p);
  const list: [number, Buffer][] = [];
  for (let q = p + 2; q < end; ) {
    const len = body.readUInt16BE(q + 2);
    list.push([body.readUInt16BE(q), body.subarray(q + 4, q + 4 + len)]);
    q += 4 + len;
  }
  return { body, at: p, list };
}

/** A one-record ClientHello from the fields before the extensions and a list of extensions. */
function assemble(head: Buffer, list: [number, Buffer][]): Buffer {
  const exts = Buffer.concat(list.flatMap(([type, data]) => [Buffer.from([type >> 8, type & 0xff, data.length >> 8, data.length & 0xff]), data]));
  const n = Buffer.from([exts.length >> 8, exts.length & 0xff]);
  const hs = Buffer.from([1, 0, 0, 0]);
  hs.writeUIntBE(head.length + 2 + exts.length, 1, 3);
  const rec = Buffer.from([0x16, 3, 1, 0, 0]);
  rec.writeUInt16BE(4 + head.length + 2 + exts.length, 3);
  return Buffer.concat([rec, hs, head, n, exts]);
}

/** The first flight (the ClientHello record) Node's TLS client sends, captured on a plain listener. */
export async function capturedHello(): Promise<Buffer> {
  const srv = netServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const got = new Promise<Buffer>((resolve) => {
    srv.once('connection', (sock) => {
      let b = Buffer.alloc(0);
      sock.on('data', (d: Buffer) => {
        b = Buffer.concat([b, d]);
        if (b.length >= 5 && b.length >= 5 + b.readUInt16BE(3)) {
          resolve(b.subarray(0, 5 + b.readUInt16BE(3)));
          sock.destroy();
        }
      });
    });
  });
  const c = tlsConnect({ host: '127.0.0.1', port: (srv.address() as { port: number }).port, servername: 'localhost', ALPNProtocols: [TLS_ALPN], rejectUnauthorized: false });
  c.on('error', () => {});
  const hello = await got;
  c.destroy();
  srv.close();
  return hello;
}

/** `hello` (one record) with a padding extension (RFC 7685) that makes the record exactly `wire` bytes. */
export function padded(hello: Buffer, wire: number): Buffer {
  const { body, at, list } = extensions(hello);
  return assemble(body.subarray(0, at), [...list, [0x15, Buffer.alloc(wire - hello.length - 4)]]);
}

/** `hello` with an empty key_share list (RFC 8446 §4.2.8): a server must answer with HelloRetryRequest. */
export function withoutKeyShare(hello: Buffer): Buffer {
  const { body, at, list } = extensions(hello);
  return assemble(body.subarray(0, at), list.map(([type, data]) => [type, type === 51 ? Buffer.from([0, 0]) : data]));
}

/** Splits a one-record first flight into records of at most `size` bytes of the same handshake bytes. */
export function refragment(hello: Buffer, size: number): Buffer {
  const hs = hello.subarray(5);
  const out: Buffer[] = [];
  for (let o = 0; o < hs.length; o += size) {
    const part = hs.subarray(o, o + size);
    const h = Buffer.from([0x16, 3, 1, 0, 0]);
    h.writeUInt16BE(part.length, 3);
    out.push(h, part);
  }
  return Buffer.concat(out);
}

