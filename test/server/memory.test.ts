// Memory bounded by what a peer sent (issue 12, spec §3, §10 MAX_PRELOGIN_FRAME_BYTES, FRAME_TIMEOUT_MS,
// BUFFER_BUDGET_BYTES), against the real relay over loopback. The relay runs in a child process with
// --expose-gc so its resident memory is measured after a full collection; hostile peers trickle partial
// frames in small writes, before and after login, and the relay's growth must stay within 4x the bytes
// they sent. The baseline is taken with the same connections open and idle, so the figure is the cost
// of the trickled bytes (what each connection costs is bounded by the connection caps, not by this).
import t, { type Test } from 'tap';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { frame } from '../../src/codec/index.js';
import { LIMITS } from '../../src/protocol/limits.js';
import { startServer, type ServerOptions, type ServerStats } from '../../src/server/index.js';
import { identities, TestClient, type Identity } from './helpers.js';
import { makeCerts } from './tls-certs.js';
import { WS_CLOSE_POLICY, WS_READ_BYTES, WS_READS_BASE } from '../../src/server/ws-stream.js';
import { OP, upgrade, wsFrame } from '../../src/wirekit/ws.js';
import { capturedHello, withoutKeyShare } from './tls-hello.js';

const CHILD = join(fileURLToPath(new URL('../..', import.meta.url)), 'dist', 'test', 'server', 'relay-child.js');
const ids = identities(4);
const [alice, bob, carol] = ids as [Identity, Identity, Identity];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Measure {
  rss: number;
  /** process.memoryUsage() after a full collection. */
  mem: NodeJS.MemoryUsage;
  /** Bytes of the V8 heap's code spaces (compiled code), part of mem.heapUsed. */
  code: number;
  stats: ServerStats;
}

/** What the relay's own allocations hold: the V8 heap in use, less compiled code, plus memory outside it (Buffers). */
const accounted = (m: Measure) => m.mem.heapUsed - m.code + m.mem.external;

async function childRelay(t: Test, opts: ServerOptions & { tlsCertFile?: string; tlsKeyFile?: string; webRoot?: string }): Promise<{ port: number; webPort?: number; measure: () => Promise<Measure> }> {
  const child: ChildProcess = fork(CHILD, [JSON.stringify(opts)], { execArgv: ['--expose-gc'], stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  t.teardown(() => void child.kill('SIGKILL'));
  let webPort: number | undefined;
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const w = /^web (\d+)\n/.exec(out);
      if (w !== null) webPort = Number(w[1]);
      const m = /^(?:web \d+\n)?port (\d+)\n/.exec(out);
      if (m !== null) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`relay child exited ${String(code)}`)));
  });
  const measure = () =>
    new Promise<Measure>((resolve) => {
      child.once('message', (m) => resolve(m as Measure));
      child.send({ op: 'measure' });
    });
  return { port, ...(webPort === undefined ? {} : { webPort }), measure };
}

/** Writes `wire` to every client in `step`-byte writes, round robin, letting each write reach the socket. */
const trickle = (clients: TestClient[], wire: Buffer, step: number): Promise<number> =>
  trickleRaw(clients.map((c) => ({ write: (b: Buffer) => c.raw(b) })), wire, step);

/** Waits (bounded: 600 polls) until the relay reports `want` bytes held. */
async function held(measure: () => Promise<Measure>, want: number): Promise<Measure> {
  let m = await measure();
  for (let i = 0; i < 600 && m.stats.bufferedBytes < want; i++) {
    await sleep(50);
    m = await measure();
  }
  return m;
}

const prefix = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

t.test('trickled partial frames before login: heap+external growth is at most 4x the bytes sent', async (t) => {
  const long = 600_000;
  const { port, measure } = await childRelay(t, {
    handshakeTimeoutMs: long,
    idleTimeoutMs: long,
    frameTimeoutMs: long,
    maxConnectionsPerAddress: 1000,
  });
  const body = LIMITS.MAX_PRELOGIN_FRAME_BYTES;
  const preWire = Buffer.concat([prefix(body), Buffer.alloc(body - 1, 0x41)]);
  // Warm-up: the same trickle on as many other connections, closed before the baseline. V8 keeps the code
  // it compiles for the read path (and its feedback) on the heap: 0.1-0.25 MB that is no cost of the bytes
  // sent. Without a warm-up it moved the figure between 3.0x and 5.0x in repeated runs of one build; with
  // one of 20 connections (a tenth of the reads) it still did, 2.1x or 4.2x (2026-12-02: 4.14x, 2.15x,
  // 4.22x), as the optimizing compiler's thresholds were then crossed inside the measured phase.
  const warm = await Promise.all(Array.from({ length: 200 }, () => TestClient.connect(port)));
  await trickle(warm, preWire, 16);
  await held(measure, warm.length * body);
  for (const c of warm) c.destroy();
  // Before login: 200 connections, each declares the largest pre-login frame and sends all but its last byte.
  const pre = await Promise.all(Array.from({ length: 200 }, () => TestClient.connect(port)));
  let before = await measure();
  // The baseline counts none of the warm-up: its connections are gone and their buffers freed (bounded poll).
  for (let i = 0; i < 600 && (before.stats.connections !== pre.length || before.stats.bufferedBytes !== 0); i++) {
    await sleep(50);
    before = await measure();
  }
  t.equal(before.stats.connections, pre.length, 'the baseline is taken with only the 200 idle connections open');
  t.equal(before.stats.bufferedBytes, 0, 'and nothing buffered');
  const sentPre = await trickle(pre, preWire, 16);
  const afterPre = await held(measure, pre.length * body);
  t.equal(afterPre.stats.bufferedBytes, pre.length * body, 'every pre-login partial frame is held, in exactly its declared length');
  t.equal(afterPre.stats.connections, pre.length, 'no connection was dropped');
  // Before login a connection can make the relay hold at most one pre-login frame (572 bytes), which is
  // below the resolution of RSS here: libuv reads each segment into a fresh 64 KiB allocation, and the
  // allocator's fragmentation from 36 such reads per connection moved RSS by anywhere from -16 KB to
  // +0.8 MB for these 200 connections in repeated runs (2026-12-01). That cost is per connection, not per
  // byte sent, and the connection caps bound it; what the relay itself holds is asserted exactly.
  const growthPre = accounted(afterPre) - accounted(before);
  t.comment(`before login: compiled code ${before.code} -> ${afterPre.code}; ${sentPre} bytes sent, heap+external growth ${growthPre} (${(growthPre / sentPre).toFixed(2)}x), RSS ${before.rss} -> ${afterPre.rss} (${((afterPre.rss - before.rss) / sentPre).toFixed(2)}x, not asserted: see above)`);
  t.ok(growthPre <= 4 * sentPre, `pre-login heap+external growth ${growthPre} <= 4 x ${sentPre}`);
  for (const c of pre) c.destroy();
});

// After login a connection may hold one frame of up to MAX_FRAME_BYTES. Each figure is taken in a relay of
// its own, with nothing freed before it: memory an earlier phase freed is reused, and the RSS growth of a
// relay that had just dropped 200 connections was 0 (or negative) whatever the reader kept (2026-12-02: a
// reader that kept every TCP segment's buffer still measured -0.58x there).
t.test('trickled partial frames after login: heap+external growth at most 4x the bytes sent in 2-byte writes, RSS growth at most 4x in 1024-byte writes', async (t) => {
  const long = 600_000;
  const opts = { handshakeTimeoutMs: long, idleTimeoutMs: long, frameTimeoutMs: long, maxConnectionsPerAddress: 1000 };
  /** 12 connections of three keys (MAX_CONNECTIONS_PER_KEY each), logged in, and the baseline with them idle. */
  const loggedIn = async (port: number, measure: () => Promise<Measure>) => {
    const post: TestClient[] = [];
    for (const [i, id] of [alice, bob, carol].entries()) {
      for (let k = 0; k < LIMITS.MAX_CONNECTIONS_PER_KEY; k++) post.push(await authed(port, `user${i}`, id));
    }
    await sleep(100);
    return { post, base: await measure() };
  };
  // Two bytes per write: a reader that kept each segment's buffer (the review's finding) grew heap+external
  // 6.9x-11x here; one that copies into one buffer of the declared length, 0.75x-1.4x (2026-12-02). RSS in
  // writes this small also carries what Node's read path leaves per read (a 64 KiB allocation shrunk to the
  // segment, freed only by the next collection): 2x-9x the bytes sent whatever the relay holds, a cost of
  // reads that is bounded by the collector and not held for the peer; it is printed, not asserted.
  {
    const { port, measure } = await childRelay(t, opts);
    const { post, base } = await loggedIn(port, measure);
    const size = 16384;
    const sent = await trickle(post, Buffer.concat([prefix(size), Buffer.alloc(size - 1, 0x42)]), 2);
    const after = await held(measure, post.length * size);
    t.equal(after.stats.bufferedBytes, post.length * size, 'every partial frame is held in one buffer of its declared length');
    const acc = accounted(after) - accounted(base);
    const rss = after.rss - base.rss;
    t.comment(`after login, 2-byte writes: ${sent} bytes sent, heap+external growth ${acc} (${(acc / sent).toFixed(2)}x), RSS growth ${rss} (${(rss / sent).toFixed(2)}x)`);
    t.ok(acc <= 4 * sent, `heap+external growth ${acc} <= 4 x ${sent}`);
  }
  // 1024-byte writes of MAX_FRAME_BYTES frames: RSS, the figure (0.33x-1.17x in fresh relays, 2026-12-02).
  {
    const { port, measure } = await childRelay(t, opts);
    const { post, base } = await loggedIn(port, measure);
    const max = LIMITS.MAX_FRAME_BYTES;
    const sent = await trickle(post, Buffer.concat([prefix(max), Buffer.alloc(max - 1, 0x42)]), 1024);
    const after = await held(measure, post.length * max);
    t.equal(after.stats.bufferedBytes, post.length * max, 'every partial frame is held in one buffer of its declared length');
    const rss = after.rss - base.rss;
    const acc = accounted(after) - accounted(base);
    t.comment(`after login, 1024-byte writes: ${sent} bytes sent, RSS growth ${rss} (${(rss / sent).toFixed(2)}x), heap+external growth ${acc} (${(acc / sent).toFixed(2)}x)`);
    t.ok(rss <= 4 * sent, `RSS growth ${rss} <= 4 x ${sent}`);
    t.ok(acc <= 4 * sent, `heap+external growth ${acc} <= 4 x ${sent}`);
  }
});

/** Raw TCP connections to the relay's TLS port; what the relay answers is read and dropped. */
async function rawConns(port: number, n: number): Promise<Socket[]> {
  return Promise.all(
    Array.from({ length: n }, () =>
      new Promise<Socket>((resolve, reject) => {
        const s = netConnect({ host: '127.0.0.1', port }, () => resolve(s));
        s.on('error', reject);
        s.on('data', () => {});
      }),
    ),
  );
}

/** Writes `wire` to every socket in `step`-byte writes, round robin, letting each write reach the socket. */
async function trickleRaw(socks: readonly { write(b: Buffer): unknown }[], wire: Buffer, step: number): Promise<number> {
  let sent = 0;
  for (let off = 0; off < wire.length; off += step) {
    const part = wire.subarray(off, Math.min(wire.length, off + step));
    for (const s of socks) {
      s.write(part);
      sent += part.length;
    }
    await new Promise((r) => setImmediate(r));
  }
  return sent;
}

/** Waits (bounded: 600 polls) until the relay holds exactly `conns` connections and `bytes` buffered. */
async function settled(measure: () => Promise<Measure>, conns: number, bytes: number): Promise<Measure> {
  let m = await measure();
  for (let i = 0; i < 600 && (m.stats.connections !== conns || m.stats.bufferedBytes !== bytes); i++) {
    await sleep(50);
    m = await measure();
  }
  return m;
}

/** One TLS record of type 22 around `body`. */
const handshakeRecord = (body: Buffer) => Buffer.concat([Buffer.from([0x16, 3, 1, body.length >> 8, body.length & 0xff]), body]);

t.test('TLS: partial ClientHellos before the handshake, and a second ClientHello after HelloRetryRequest: relay RSS growth at most 4x the bytes sent', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'e2ee-tlsmem-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const certs = makeCerts(dir);
  const long = 600_000;
  // Each RSS figure is taken in a relay of its own: memory one phase freed would be reused by the next.
  const tlsRelay = () =>
    childRelay(t, {
      tlsCertFile: certs.certFile,
      tlsKeyFile: certs.keyFile,
      handshakeTimeoutMs: long,
      idleTimeoutMs: long,
      frameTimeoutMs: long,
      maxConnectionsPerAddress: 1000,
      maxConnectionsPerSubnet: 1000,
    });
  const { port, measure } = await tlsRelay();
  // All but the last byte of the largest ClientHello the gate takes: one record of MAX_CLIENT_HELLO_BYTES.
  const limit = LIMITS.MAX_CLIENT_HELLO_BYTES;
  const msg = Buffer.alloc(limit - 5, 0x41);
  msg[0] = 1;
  msg.writeUIntBE(msg.length - 4, 1, 3);
  const partial = handshakeRecord(msg).subarray(0, limit - 1);
  const n = 200;
  // Warm-up, as for the plain pre-login figure: the same trickle on 20 other connections, closed first.
  const warm = await rawConns(port, 20);
  await trickleRaw(warm, partial, 16);
  await held(measure, warm.length * limit);
  for (const s of warm) s.destroy();
  await settled(measure, 0, 0);

  for (const step of [1024, 16]) {
    const socks = await rawConns(port, n);
    const before = await settled(measure, n, 0);
    t.equal(before.stats.connections, n, `${step}-byte writes: the baseline has only the ${n} silent TLS connections open`);
    t.equal(before.stats.bufferedBytes, 0, 'and nothing buffered');
    const sent = await trickleRaw(socks, partial, step);
    const after = await held(measure, n * limit);
    t.equal(after.stats.bufferedBytes, n * limit, 'each partial ClientHello is held by the gate in at most MAX_CLIENT_HELLO_BYTES, counted in the buffer budget');
    t.equal(after.stats.connections, n, 'no connection was dropped');
    const rss = after.rss - before.rss;
    const acc = accounted(after) - accounted(before);
    // The 16-byte round runs second, in memory the first one freed: only its heap+external figure means anything.
    const shown = step === 1024 ? `RSS growth ${rss} (${(rss / sent).toFixed(2)}x), ` : '';
    t.comment(`TLS, partial ClientHello in ${step}-byte writes: ${sent} bytes sent, ${shown}heap+external ${acc} (${(acc / sent).toFixed(2)}x)`);
    t.ok(acc <= 4 * sent, `heap+external growth ${acc} <= 4 x ${sent}`);
    // RSS: OpenSSL's allocations are outside the V8 heap, so RSS is the figure that shows them. In 16-byte
    // writes RSS also carries what Node's read path leaves behind per read (a 64 KiB allocation shrunk to the
    // segment): 4.7x the bytes sent with a server that drops every byte it reads (measured 2026-12-02), a
    // cost of segments, the same on plain TCP; so RSS is asserted on the 1024-byte round.
    if (step === 1024) t.ok(rss <= 4 * sent, `RSS growth ${rss} <= 4 x ${sent} (before the gate: about 6.3x, OpenSSL's buffers from the first byte)`);
    for (const s of socks) s.destroy();
    await settled(measure, 0, 0);
  }

  // After a complete ClientHello TLS has the bytes: one without a key share makes the relay answer with
  // HelloRetryRequest, and OpenSSL then gathers the second ClientHello itself (up to its own limit).
  const hrr = withoutKeyShare(await capturedHello());
  const fresh = await tlsRelay();
  const warmHrr = await rawConns(fresh.port, 20);
  await trickleRaw(warmHrr, hrr, hrr.length);
  for (const s of warmHrr) s.destroy();
  await settled(fresh.measure, 0, 0);
  const socks = await rawConns(fresh.port, 100);
  const silent = await settled(fresh.measure, socks.length, 0);
  let answered = 0;
  for (const s of socks) s.once('data', () => answered++);
  await trickleRaw(socks, hrr, hrr.length);
  for (let i = 0; i < 600 && answered < socks.length; i++) await sleep(50);
  t.equal(answered, socks.length, 'every connection got the relay\'s HelloRetryRequest');
  const before = await fresh.measure();
  // Not a cost of bytes: the TLS state of a handshake in progress, bounded by the caps and HANDSHAKE_TIMEOUT_MS.
  t.comment(`a connection in its TLS handshake after a ${hrr.length}-byte ClientHello: about ${Math.round((before.rss - silent.rss) / socks.length)} bytes of RSS each`);
  const second = Buffer.alloc(100_004, 0x42);
  second[0] = 1;
  second.writeUIntBE(100_000, 1, 3);
  const records: Buffer[] = [];
  for (let o = 0; o < second.length; o += 16384) records.push(handshakeRecord(second.subarray(o, o + 16384)));
  const sent = await trickleRaw(socks, Buffer.concat(records).subarray(0, 90_000), 4096);
  // Nothing answers a partial ClientHello: wait (bounded) until the relay's memory stops growing, so every
  // byte sent has been read into TLS before the figure is taken.
  let after = await fresh.measure();
  for (let i = 0; i < 40; i++) {
    await sleep(100);
    const m = await fresh.measure();
    if (m.rss <= after.rss) break;
    after = m;
  }
  t.equal(after.stats.connections, socks.length, 'all still held, in their handshake');
  const rss = after.rss - before.rss;
  t.comment(`TLS, second ClientHello after HelloRetryRequest in 4096-byte writes: ${sent} bytes sent, RSS growth ${rss} (${(rss / sent).toFixed(2)}x)`);
  t.ok(rss <= 4 * sent, `RSS growth ${rss} <= 4 x ${sent}`);
});

/** Raw sockets upgraded to the relay's WebSocket endpoint (§3.1); what the relay sends is read and dropped. */
async function wsConns(port: number, n: number): Promise<Socket[]> {
  const ups = await Promise.all(Array.from({ length: n }, () => upgrade({ host: '127.0.0.1', port })));
  for (const u of ups) {
    if (u.status !== 101) throw new Error(`upgrade refused: HTTP ${u.status}`);
    u.socket.on('data', () => {});
  }
  return ups.map((u) => u.socket);
}

// §3.1: ws holds a message it is gathering as the reads it came in. Before the read rule, 20 connections
// trickling 4000 bytes each one byte per read before login grew the relay's RSS by 83.7x what they sent
// (measured 2026-12-02). Now a message may take WS_READS_BASE reads plus one per WS_READ_BYTES: what a
// peer keeps within that costs at most 4x what it sent, and one byte per read is cut off at once.
t.test('WebSocket: a message gathered before login costs at most 4x the bytes sent; one byte per read is closed with 1008', async (t) => {
  const long = 600_000;
  const relay = await childRelay(t, {
    webRoot: t.testdir({ 'index.html': '<!doctype html><title>t</title>' }),
    handshakeTimeoutMs: long,
    idleTimeoutMs: long,
    frameTimeoutMs: long,
    maxConnectionsPerAddress: 1000,
    maxConnectionsPerSubnet: 1000,
  });
  const { measure } = relay;
  const webPort = relay.webPort!;
  const size = 20_000;
  // One binary message declared `size` bytes, all of it but its last byte (it never completes).
  const partial = Buffer.concat([wsFrame({ opcode: OP.BINARY, declared: size }), Buffer.alloc(size - 1, 0x41)]);
  const warm = await wsConns(webPort, 20);
  await trickleRaw(warm, partial, WS_READ_BYTES);
  await held(measure, warm.length * size);
  for (const s of warm) s.destroy();
  await settled(measure, 0, 0);

  const n = 100;
  const socks = await wsConns(webPort, n);
  const before = await settled(measure, n, 0);
  t.equal(before.stats.connections, n, `the baseline has only the ${n} idle WebSocket connections open`);
  const sent = await trickleRaw(socks, partial, WS_READ_BYTES);
  const after = await held(measure, n * size);
  t.equal(after.stats.connections, n, `no connection was dropped: reads of ${WS_READ_BYTES} bytes are within the rule`);
  t.ok(after.stats.bufferedBytes >= n * (size - 1), 'what ws holds is counted in the buffer budget');
  const acc = accounted(after) - accounted(before);
  t.comment(`WebSocket, ${n} partial messages in ${WS_READ_BYTES}-byte writes: ${sent} bytes sent, RSS growth ${after.rss - before.rss}, heap+external ${acc} (${(acc / sent).toFixed(2)}x)`);
  t.ok(acc <= 4 * sent, `heap+external growth ${acc} is at most 4x the ${sent} bytes sent`);
  for (const s of socks) s.destroy();
  await settled(measure, 0, 0);

  // One byte per read: each connection is closed with 1008 after its header and WS_READS_BASE bytes.
  const tricklers = await wsConns(webPort, 20);
  const closes = tricklers.map(
    (s) =>
      new Promise<number>((resolve) => {
        let got = Buffer.alloc(0);
        s.on('data', (d: Buffer) => {
          got = Buffer.concat([got, d]);
          if (got.length >= 4 && got[0] === 0x88) resolve(got.readUInt16BE(2));
        });
        s.on('close', () => resolve(-1));
      }),
  );
  const header = wsFrame({ opcode: OP.BINARY, declared: size });
  for (const s of tricklers) s.write(header);
  for (let i = 0; i < 4 * WS_READS_BASE; i++) {
    for (const s of tricklers) if (!s.destroyed) s.write(Buffer.from([0x41]));
    await sleep(10);
  }
  t.same(await Promise.all(closes), tricklers.map(() => WS_CLOSE_POLICY), 'every one-byte-per-read message is closed with 1008');
  for (const s of tricklers) s.destroy();
});

async function authed(port: number, nick: string, id: Identity): Promise<TestClient> {
  const c = await TestClient.connect(port);
  await c.auth(nick, id);
  return c;
}

async function withServer(t: Test, opts: ServerOptions) {
  const s = await startServer(opts);
  t.teardown(() => s.close());
  return s;
}

t.test('before WELCOME a declared length over MAX_PRELOGIN_FRAME_BYTES is FRAME_TOO_LARGE on the prefix; at it, the frame is read', async (t) => {
  const s = await withServer(t, {});
  const over = await TestClient.connect(s.port);
  over.raw(prefix(LIMITS.MAX_PRELOGIN_FRAME_BYTES + 1));
  t.equal(await over.expectError(), 'FRAME_TOO_LARGE');
  // A HELLO of exactly 572 bytes (version 200: two bytes; 512-byte key; 32-byte nick) is decoded: its version is refused.
  const at = await TestClient.connect(s.port);
  at.send(frame('HELLO', { version: 200, nick: 'n'.repeat(32), key: new Uint8Array(512) }));
  t.equal(await at.expectError(), 'UNSUPPORTED_VERSION');
  // After WELCOME the announced max_frame applies instead.
  const c = await authed(s.port, 'alice', alice);
  c.raw(Buffer.concat([prefix(1000), Buffer.alloc(10)]));
  await sleep(50);
  t.equal(c.closed, false, 'a 1000-byte frame in progress is fine after WELCOME');
  c.raw(Buffer.alloc(990));
  t.equal(await c.expectError(), 'MALFORMED_FRAME', 'and is read and decoded when complete');
});

t.test('a frame not completed within FRAME_TIMEOUT_MS gets TIMEOUT, though bytes keep coming', async (t) => {
  const s = await withServer(t, { frameTimeoutMs: 100, idleTimeoutMs: 600_000 });
  const c = await authed(s.port, 'alice', alice);
  c.raw(prefix(60_000));
  for (let i = 0; i < 100 && !c.closed; i++) {
    c.raw(Buffer.alloc(10));
    await sleep(10);
  }
  const frames = await c.drainUntilClosed();
  t.same(
    frames.map((f) => (f.type === 'ERROR' ? f.code : f.type)),
    [13],
    'ERROR TIMEOUT (13), then the close',
  );
});

t.test('over BUFFER_BUDGET_BYTES the largest holder is dropped and new connections are refused until it is back under', async (t) => {
  const budget = 65536;
  const s = await withServer(t, { bufferBudgetBytes: budget, frameTimeoutMs: 600_000, idleTimeoutMs: 600_000 });
  const a = await authed(s.port, 'alice', alice);
  const b = await authed(s.port, 'bob', bob);
  a.raw(Buffer.concat([prefix(65536), Buffer.alloc(10)]));
  await sleep(50);
  t.equal(s.stats().bufferedBytes, 65536, 'a holds one partial frame: exactly the budget, not over it');
  t.equal(a.closed, false);
  b.raw(Buffer.concat([prefix(30000), Buffer.alloc(10)]));
  t.equal(await a.expectError(), 'TIMEOUT', 'the largest holder (a) is dropped');
  await sleep(50);
  t.equal(b.closed, false, 'b, under the budget once a is gone, stays');
  t.equal(s.stats().bufferedBytes, 30000);
  const c = await authed(s.port, 'carol', carol);
  c.raw(Buffer.concat([prefix(40000), Buffer.alloc(10)]));
  t.equal(await c.expectError(), 'TIMEOUT', 'over again (70000): now c is the largest holder and is dropped');
  t.equal(b.closed, false);
  const d = await authed(s.port, 'dave', ids[3]!);
  d.raw(Buffer.concat([prefix(budget - 30000), Buffer.alloc(10)]));
  await sleep(50);
  t.equal(s.stats().bufferedBytes, budget, 'b and d hold exactly the budget');
  const late = await TestClient.connect(s.port);
  t.equal(await late.expectError(), 'TOO_MANY_CONNECTIONS', 'a new connection is refused while the budget is used up');
  b.destroy();
  await sleep(50);
  const later = await TestClient.connect(s.port);
  t.equal((await later.auth('erin', alice)).type, 'WELCOME', 'accepted again once bytes were released');
});
