/**
 * A relay (here: a proxy in front of it) that alters a relayed MSG: the receiving client reports the
 * message as failing to verify (§8.3 DECRYPT_FAILED) and never prints it; the sender sees it listed as
 * not acknowledged. Real relay and client processes on 127.0.0.1.
 */
import t from 'tap';
import { join } from 'node:path';
import { connect, createServer, type Socket } from 'node:net';
import { decodeFrame, encodeFrame, encodeWire, frame, FrameReader } from '../../src/codec/index.js';
import { startClient, startServerProc, tempDir } from './procs.js';

/** Forwards both ways; flips one ciphertext byte in the first DELIVER that carries an e2e MSG. */
async function tamperingProxy(t: { teardown(f: () => unknown): void }, target: number): Promise<{ port: number; tampered: () => number }> {
  let tampered = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const up = connect({ host: '127.0.0.1', port: target });
    sockets.add(client).add(up);
    client.pipe(up);
    const reader = new FrameReader();
    up.on('data', (d: Buffer) => {
      for (const body of reader.push(d)) {
        const f = decodeFrame(body, 'relay');
        if (f.type === 'DELIVER' && tampered === 0) {
          const inner = decodeFrame(f.body, 'e2e');
          if (inner.type === 'MSG') {
            const ct = Uint8Array.from(inner.ct);
            ct[ct.length - 1]! ^= 0x01;
            tampered++;
            client.write(encodeWire(frame('DELIVER', { from: f.from, body: encodeFrame(frame('MSG', { seq: inner.seq, ct })) })));
            continue;
          }
        }
        client.write(encodeWire(f));
      }
    });
    const close = () => {
      client.destroy();
      up.destroy();
    };
    for (const s of [client, up]) s.on('close', close).on('error', close);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { port: (server.address() as { port: number }).port, tampered: () => tampered };
}

t.test('an altered MSG is reported as failing to verify, never shown, and stays unacknowledged', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const proxy = await tamperingProxy(t, port);
  const bob = startClient(t, { port: proxy.port, relayName: `localhost:${port}`, nick: 'bob', home: join(dir, 'bob') });
  await bob.waitFor(/^\* joined /);
  const alice = startClient(t, { port, nick: 'alice', home: join(dir, 'alice') });
  await alice.waitFor(/^\* secure session with bob/);
  await bob.waitFor(/^\* secure session with alice/);
  alice.write('this one is altered on the way');
  const line = await bob.waitFor(/^\* message from alice failed to verify: /);
  t.equal(line, '* message from alice failed to verify: DECRYPT_FAILED');
  t.equal(proxy.tampered(), 1);
  t.notOk(bob.out.some((l) => l.startsWith('alice: ')), 'the altered message is not shown');
  alice.end();
  const listed = await alice.waitFor(/^\* not delivered to bob/);
  t.match(listed, /^\* not delivered to bob \(#\d+ not acknowledged\): this one is altered on the way$/);
  t.equal((await alice.exited).code, 9, 'status 9: a message was not delivered');
  bob.end();
  t.equal((await bob.exited).code, 0);
});
