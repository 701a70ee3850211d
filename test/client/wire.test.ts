/**
 * What crosses the wire (spec §11): a recording TCP proxy between two client processes and the relay
 * keeps every byte in both directions. None of it may contain a message text, the passphrase, the room
 * secret, or any 16-byte run of either private key. As a control, the proxy must see what is public:
 * the nicknames and both identity public keys.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadIdentity } from '../../src/crypto/keystore.js';
import { RecordingProxy, startClient, startServerProc, tempDir } from './procs.js';

const WINDOW = 16;

function windows(secret: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i + WINDOW <= secret.length; i++) out.push(secret.subarray(i, i + WINDOW));
  return out;
}

t.test('a recording proxy sees no plaintext, passphrase, room secret or private key byte', async (t) => {
  const dir = tempDir(t);
  const { port: relayPort } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const proxy = new RecordingProxy(relayPort);
  const port = await proxy.listen();
  t.teardown(() => proxy.close());

  const passphrase = 'pass-7f3a9c1e-never-on-the-wire';
  const secretFile = join(dir, 'room.secret');
  const roomSecret = 'room-secret-5b2d8e44-never-on-the-wire';
  writeFileSync(secretFile, roomSecret + '\n', { mode: 0o600 });
  const env = { E2EE_CHAT_PASSPHRASE: passphrase };
  const common = { port, relayName: `localhost:${relayPort}`, env, noPassphrase: false, args: ['--room-secret-file', secretFile] };
  const texts = {
    alice: ['PLAINTEXT-alice-0001 meet at noon', 'Ünïcødé-PLAINTEXT-ålice ☃ 秘密のメッセージ', 'PLAINTEXT-long-' + 'a1b2c3d4'.repeat(1250)],
    bob: ['PLAINTEXT-bob-0002 ok, bring the keys', 'Привет-PLAINTEXT-боб 🙂'],
  };

  const alice = startClient(t, { ...common, nick: 'alice', home: join(dir, 'alice') });
  await alice.waitFor(/^\* joined /);
  const bob = startClient(t, { ...common, nick: 'bob', home: join(dir, 'bob') });
  await alice.waitFor(/^\* secure session with bob/);
  await bob.waitFor(/^\* secure session with alice/);
  for (const line of texts.alice) alice.write(line);
  for (const line of texts.bob) bob.write(line);
  for (const line of texts.alice) t.ok(await bob.waitFor(new RegExp(`^alice: ${line.slice(0, 12)}`)), 'bob got an alice line');
  for (const line of texts.bob) t.ok(await alice.waitFor(new RegExp(`^bob: ${line.slice(0, 12)}`)), 'alice got a bob line');
  t.same(bob.out.filter((l) => l.startsWith('alice: ')), texts.alice.map((l) => `alice: ${l}`), 'bob received exactly what alice sent');
  t.same(alice.out.filter((l) => l.startsWith('bob: ')), texts.bob.map((l) => `bob: ${l}`), 'alice received exactly what bob sent');
  alice.end();
  bob.end();
  t.equal((await alice.exited).code, 0);
  t.equal((await bob.exited).code, 0);

  const wire = proxy.bytes();
  t.ok(wire.length > 10000, `the proxy recorded traffic (${wire.length} bytes)`);

  const ids = {
    alice: await loadIdentity(join(dir, 'alice', 'identity.key'), passphrase),
    bob: await loadIdentity(join(dir, 'bob', 'identity.key'), passphrase),
  };
  // Control: public things are visible, so the searches below are searching the real stream.
  t.ok(wire.includes(Buffer.from('alice')) && wire.includes(Buffer.from('bob')), 'nicknames are on the wire (control)');
  t.ok(wire.includes(Buffer.from(ids.alice.spki)) && wire.includes(Buffer.from(ids.bob.spki)), 'public keys are on the wire (control)');

  for (const text of [...texts.alice, ...texts.bob]) {
    for (const needle of [text, text.slice(0, 20), ...text.split(' ')].filter((s) => Buffer.byteLength(s) >= 8)) {
      if (wire.includes(Buffer.from(needle, 'utf8'))) t.fail(`plaintext on the wire: ${JSON.stringify(needle.slice(0, 40))}`);
    }
  }
  t.notOk(wire.includes(Buffer.from('PLAINTEXT')), 'no plaintext marker on the wire');
  t.notOk(wire.includes(Buffer.from(passphrase)), 'no passphrase on the wire');
  t.notOk(wire.includes(Buffer.from(roomSecret)), 'no room secret on the wire');

  for (const [who, id] of Object.entries(ids)) {
    const der = id.privateKey.export({ format: 'der', type: 'pkcs8' });
    const jwk = id.privateKey.export({ format: 'jwk' });
    const parts = [der, ...(['d', 'p', 'q', 'dp', 'dq', 'qi'] as const).map((k) => Buffer.from(jwk[k]!, 'base64url'))];
    let hits = 0;
    let checked = 0;
    for (const part of parts.slice(1)) {
      for (const w of windows(part)) {
        checked++;
        if (wire.includes(w)) hits++;
      }
    }
    t.equal(hits, 0, `no ${WINDOW}-byte run of ${who}'s private key on the wire (${checked} runs checked)`);
    t.notOk(wire.includes(der), `${who}'s PKCS#8 key is not on the wire`);
  }
});
