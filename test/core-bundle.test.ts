// The core runs anywhere (STYLE.md rule 12, issue 11): the protocol tables, codec, handshake, session,
// key schedule, the crypto interface with its WebCrypto backend and the client core (ChatClient, its relay
// connection, members, emitter and pin book) bundle with esbuild for platform=browser, and the build fails
// on any import of a Node built-in (node:crypto, net, fs, ...).
// The bundle then runs a whole session pair in a fresh JavaScript realm that has only what a page has
// (globalThis.crypto, TextEncoder, TextDecoder): no Buffer, no process, no require.
import t from 'tap';
import fc from 'fast-check';
import { builtinModules } from 'node:module';
import { runInNewContext } from 'node:vm';
import { build, type Plugin } from 'esbuild';
import { utf8Length } from '../src/codec/frame.js';
import { fixedIdentity } from '../src/vectors/crypto-keys.js';
import { fingerprint, safetyNumber } from '../src/crypto/safety.js';

/** Every module of the core, by path from the repository root. */
const CORE = [
  'src/protocol/client-machine.ts',
  'src/protocol/errors.ts',
  'src/protocol/frames.ts',
  'src/protocol/limits.ts',
  'src/protocol/names.ts',
  'src/protocol/relay-machine.ts',
  'src/protocol/session-machine.ts',
  'src/protocol/version.ts',
  'src/codec/frame.ts',
  'src/codec/strict.ts',
  'src/codec/index.ts',
  'src/crypto/backend.ts',
  'src/crypto/bytes.ts',
  'src/crypto/identity.ts',
  'src/crypto/fingerprint.ts',
  'src/crypto/schedule.ts',
  'src/crypto/webcrypto.ts',
  'src/handshake/session.ts',
  'src/crypto/fingerprint.ts',
  'src/client/chat-client.ts',
  'src/client/relay-connection.ts',
  'src/client/members.ts',
  'src/client/emitter.ts',
  'src/client/events.ts',
  'src/client/pin-book.ts',
  'src/client/transport.ts',
  'src/protocol/relay-id.ts',
];

const BUILTIN = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** Fails the build on any import of a Node built-in, naming the importer. */
const noNode: Plugin = {
  name: 'no-node-builtins',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => (BUILTIN.has(args.path) || args.path.startsWith('node:') ? { errors: [{ text: `${args.importer} imports the Node built-in ${args.path}` }] } : undefined));
  },
};

// The entry: every core module, and a self-test that runs the protocol on the WebCrypto backend.
const ENTRY = `
${CORE.map((p, i) => `export * as m${i} from './${p}';`).join('\n')}
import { webCryptoBackend } from './src/crypto/webcrypto.ts';
import { PeerSession } from './src/handshake/session.ts';
const hex = (s) => Uint8Array.from(s.match(/../g), (x) => parseInt(x, 16));
const sendOf = (ev) => { const s = ev.find((e) => e.kind === 'send'); if (!s) throw new Error('no send: ' + ev.map((e) => e.kind + (e.error ? ' ' + e.error.errorName : '')).join()); return s.body; };
export async function selfTest(a, b) {
  const c = webCryptoBackend();
  const mk = async (self, peer, role) => new PeerSession({ crypto: c, room: 'lobby', self: { nick: self.nick, key: await c.importPrivateKey(hex(self.pkcs8)), spki: hex(self.spki) }, peerNick: peer.nick, peerKey: await c.importPublicKey(hex(peer.spki)), role });
  const I = await mk(a, b, 'initiator');
  const R = await mk(b, a, 'responder');
  const fin = sendOf(await I.receive(sendOf(await R.receive(sendOf(await I.start())))));
  await R.receive(fin);
  const m = await I.sendText('hello from a page', 1);
  const got = await R.receive(sendOf(m.events));
  const ack = await I.receive(sendOf(got));
  return { states: [I.state, R.state], text: got.find((e) => e.kind === 'text')?.text, delivered: ack[0]?.kind, safety: await R.safetyNumber(), bufferSeen: typeof Buffer !== 'undefined' };
}
import { ChatClient } from './src/client/chat-client.ts';
import { decodeFrame, encodeFrame, frame } from './src/codec/index.ts';
import { ERROR_CODES } from './src/protocol/errors.ts';
/** A ChatClient on WebCrypto over a message transport whose relay is this function: HELLO, CHALLENGE, AUTH, then an ERROR. */
export async function clientTest(a) {
  const c = webCryptoBackend();
  const written = [];
  let h;
  const client = new ChatClient({ host: 'relay.example', port: 7000, nick: a.nick, identity: { privateKey: c.importPrivateKey(hex(a.pkcs8)), spki: hex(a.spki) }, crypto: c,
    transport: (handlers) => {
      h = handlers;
      setTimeout(() => h.open(), 0);
      return { encode: encodeFrame, write: (b) => { const f = decodeFrame(b, 'relay'); written.push(f); if (f.type === 'HELLO') setTimeout(() => h.data(encodeFrame(frame('CHALLENGE', { version: 2, nonce: new Uint8Array(32), relay: 'relay.example:7000' }))), 0); if (f.type === 'AUTH') setTimeout(() => h.data(encodeFrame(frame('ERROR', { code: ERROR_CODES.AUTH_FAILED.code, detail: '' }))), 0); return true; }, cork() {}, uncork() {}, end() { setTimeout(() => h.close(), 0); } };
    } });
  const closed = new Promise((r) => client.on('closed', (e) => r(e.failure && e.failure.kind)));
  const err = await client.connect().then(() => 'connected', (e) => e.kind);
  return { written: written.map((f) => f.type), err, closed: await closed, fingerprint: client.fingerprint(), bufferSeen: typeof Buffer !== 'undefined' };
}
`;

async function bundle(contents: string) {
  return build({
    stdin: { contents, resolveDir: process.cwd(), loader: 'ts', sourcefile: 'core-entry.ts' },
    bundle: true,
    platform: 'browser',
    format: 'iife',
    globalName: 'core',
    write: false,
    logLevel: 'silent',
    plugins: [noNode],
  });
}

t.test('the core bundles for platform=browser with no Node built-in', async (t) => {
  const out = await bundle(ENTRY);
  t.equal(out.errors.length, 0);
  t.equal(out.outputFiles.length, 1);
});

t.test('an import of a Node built-in anywhere in what is bundled fails the build', async (t) => {
  for (const spec of ['node:crypto', 'net', 'node:buffer']) {
    await t.rejects(bundle(`${ENTRY}\nimport '${spec}';`), { message: new RegExp(`imports the Node built-in ${spec}`) }, spec);
  }
});

t.test('the bundled core runs a session pair on WebCrypto in a realm without Node globals', async (t) => {
  const out = await bundle(ENTRY);
  const sandbox: Record<string, unknown> = { crypto: globalThis.crypto, TextEncoder, TextDecoder };
  runInNewContext(out.outputFiles[0]!.text, sandbox);
  const core = sandbox['core'] as { selfTest(a: unknown, b: unknown): Promise<Record<string, unknown>> };
  const party = (n: 'alice' | 'bob') => {
    const id = fixedIdentity(n);
    return { nick: n, pkcs8: Buffer.from(id.pkcs8).toString('hex'), spki: Buffer.from(id.spki).toString('hex') };
  };
  const r = await core.selfTest(party('alice'), party('bob'));
  t.same(r['states'], ['ESTABLISHED', 'ESTABLISHED']);
  t.equal(r['text'], 'hello from a page');
  t.equal(r['delivered'], 'delivered');
  t.equal(r['bufferSeen'], false, 'the realm has no Buffer');
  t.equal(r['safety'], safetyNumber('alice', fixedIdentity('alice').spki, 'bob', fixedIdentity('bob').spki), 'the same safety number as node:crypto computes');
});

t.test('the bundled ChatClient runs on WebCrypto over a message transport in a realm without Node globals', async (t) => {
  const out = await bundle(ENTRY);
  // What a page has besides WebCrypto: timers, microtasks, performance, URL (relayIdentity).
  const sandbox: Record<string, unknown> = { crypto: globalThis.crypto, TextEncoder, TextDecoder, setTimeout, clearTimeout, queueMicrotask, performance, URL };
  runInNewContext(out.outputFiles[0]!.text, sandbox);
  const core = sandbox['core'] as { clientTest(a: unknown): Promise<Record<string, unknown>> };
  const id = fixedIdentity('alice');
  const r = await core.clientTest({ nick: 'alice', pkcs8: Buffer.from(id.pkcs8).toString('hex'), spki: Buffer.from(id.spki).toString('hex') });
  t.same(r['written'], ['HELLO', 'AUTH'], 'HELLO, then AUTH signed with the WebCrypto key');
  t.equal(r['err'], 'auth', 'the relay refusing AUTH is an auth failure');
  t.equal(r['closed'], 'auth', 'reported once as closed');
  t.equal(r['fingerprint'], fingerprint(id.spki), 'its own fingerprint is the one node:crypto computes');
  t.equal(r['bufferSeen'], false, 'the realm has no Buffer');
});

t.test('utf8Length (the codec without Buffer) equals the UTF-8 byte length, lone surrogates included', async (t) => {
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => utf8Length(s) === Buffer.byteLength(s, 'utf8')),
      { numRuns: 500 },
    ),
  );
  t.equal(utf8Length('\ud800'), 3);
  t.equal(utf8Length('😀'), 4);
});
