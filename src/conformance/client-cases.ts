/**
 * `conformance client`: a scripted test relay that plays every other member of the room and the relay
 * itself (so it can also act as a hostile relay, §11), and starts the client under test once per case.
 *
 * The client is driven through the scriptable contract of the reference client (spec/CONFORMANCE.md
 * "Client contract"): it is started with placeholders {host} {port} {nick} {room} {home} filled in and
 * stdin a pipe; it prints each received message as `NICK: TEXT` and events as lines starting with `* `;
 * at end of input it leaves and exits 0; exit 5 means a peer's key changed, 6 connection lost, 7 protocol
 * error. The kit observes the wire (what the client sends) and stdout (what it shows).
 *
 * A case passes when the client refused correctly: the forged, replayed, reordered or tampered content
 * is never shown, the refusal is reported as a `* ` event (and if that event names a §9 code, it is the
 * one the spec gives), and the session goes on unchanged where §7.2 says it does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeFrame, encodeFrame, encodeWire, type FrameOf, type RelayFrame } from '../codec/index.js';
import { authMessage, pssVerify, parsePublicKey } from '../crypto/rsa.js';
import { ERROR_CODES, wireErrorName, type ErrorName } from '../protocol/errors.js';
import { CaseFailure, Conn, describe } from './conn.js';
import { makeIdentity, type Identity } from './context.js';
import { InitiatorSession, pad, ResponderSession, safetyNumber, type KitPeer, type RespOptions } from './peer.js';
import * as mp from '../wirekit/msgpack.js';
import { runCases, selects, type CaseResult, type RunnableCase } from './runner.js';

const SAFETY = /\d{5}( \d{5}){11}/;
const ERROR_NAMES = Object.keys(ERROR_CODES) as ErrorName[];

export interface ClientKitOptions {
  /** The client command; {host} {port} {nick} {room} {home} are replaced per run. */
  readonly cmd: string;
  readonly only?: string | undefined;
  /** How long to wait for each thing the spec or contract requires, in milliseconds (default 5000). */
  readonly waitMs?: number;
  readonly concurrency?: number;
  readonly onResult?: (r: CaseResult) => void;
}

/** The client under test as a child process: stdout lines, exit status. */
class Proc {
  readonly lines: string[] = [];
  readonly stderr: string[] = [];
  private readonly exited: Promise<number | string>;
  private lineWaiters: Array<() => void> = [];
  exitCode: number | string | undefined;

  constructor(readonly child: ChildProcess) {
    let buf = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      buf += d;
      const parts = buf.split('\n');
      buf = parts.pop()!;
      // Bounded: a client that prints without end cannot exhaust the kit (cases need a few dozen lines).
      for (const l of parts) if (this.lines.length < 10_000) this.lines.push(l.replace(/\r$/, ''));
      if (buf.length > 1 << 20) buf = '';
      const w = this.lineWaiters;
      this.lineWaiters = [];
      for (const f of w) f();
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      if (this.stderr.length < 200) this.stderr.push(d);
    });
    child.stdin!.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitCode = code ?? `signal ${signal ?? '?'}`;
        const w = this.lineWaiters;
        this.lineWaiters = [];
        for (const f of w) f();
        resolve(this.exitCode);
      });
      child.on('error', (e) => {
        this.exitCode = `spawn error ${e.message}`;
        resolve(this.exitCode);
      });
    });
  }

  /** Waits until a stdout line satisfies `pred` (true) or `ms` pass or the process exits (false). */
  async waitLine(pred: (l: string) => boolean, ms: number): Promise<string | undefined> {
    const deadline = Date.now() + ms;
    for (let i = 0; i < 10_000; i++) {
      const hit = this.lines.find(pred);
      if (hit !== undefined) return hit;
      const left = deadline - Date.now();
      if (left <= 0 || this.exitCode !== undefined) return undefined;
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.lineWaiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return undefined;
  }

  /** Closes stdin (end of input, contract) and waits up to `ms` for the exit status. */
  async finish(ms: number): Promise<number | string> {
    this.child.stdin!.end();
    return this.exitStatus(ms);
  }

  async exitStatus(ms: number): Promise<number | string> {
    let t: NodeJS.Timeout | undefined;
    const r = await Promise.race([this.exited, new Promise<'timeout'>((res) => (t = setTimeout(() => res('timeout'), ms)))]);
    clearTimeout(t);
    return r === 'timeout' ? `still running after ${ms} ms` : r;
  }

  kill(): void {
    if (this.exitCode !== undefined || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, 'SIGKILL'); // the process group we created (detached)
    } catch {
      this.child.kill('SIGKILL');
    }
  }

  tail(): string {
    return [...this.lines.slice(-6), ...this.stderr.join('').split('\n').filter(Boolean).slice(-3).map((l) => `stderr: ${l}`)].join(' | ');
  }
}

/** One case's world: the scripted relay, the kit peers, the client process, a temp home. */
export class ClientCtx {
  readonly room = `ckroom.${randomBytes(4).toString('hex')}`;
  readonly nick = `ckclient${randomBytes(4).toString('hex')}`;
  readonly home = mkdtempSync(join(tmpdir(), 'e2ee-conf-'));
  private server: Server | undefined;
  private readonly accepted: Socket[] = [];
  private acceptWaiters: Array<(s: Socket) => void> = [];
  readonly procs: Proc[] = [];
  port = 0;

  constructor(
    readonly cmd: string,
    readonly waitMs: number,
    readonly idents: readonly Identity[],
  ) {}

  async listen(): Promise<void> {
    this.server = createServer((s) => {
      const w = this.acceptWaiters.shift();
      if (w) w(s);
      else this.accepted.push(s);
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    const a = this.server.address();
    if (a === null || typeof a === 'string') throw new Error('scripted relay has no port');
    this.port = a.port;
  }

  peer(i: number, nick = `ckpeer${i}${randomBytes(3).toString('hex')}`): KitPeer {
    const ident = this.idents[i % this.idents.length]!;
    return { nick, spki: ident.spki, ident };
  }

  /** Starts the client under test; stdin stays open until `finish`. */
  start(): Proc {
    const fill = this.cmd
      .replaceAll('{host}', '127.0.0.1')
      .replaceAll('{port}', String(this.port))
      .replaceAll('{nick}', this.nick)
      .replaceAll('{room}', this.room)
      .replaceAll('{home}', `'${this.home.replaceAll("'", "'\\''")}'`);
    const child = spawn(fill, {
      shell: true,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1', E2EE_CONF_HOST: '127.0.0.1', E2EE_CONF_PORT: String(this.port), E2EE_CONF_NICK: this.nick, E2EE_CONF_ROOM: this.room, E2EE_CONF_HOME: this.home },
    });
    const p = new Proc(child);
    this.procs.push(p);
    return p;
  }

  /** The next connection the client opens to the scripted relay. */
  accept(): Promise<Conn> {
    const s = this.accepted.shift();
    if (s) return Promise.resolve(Conn.wrap(s, this.waitMs));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new CaseFailure('the client to connect to the relay', `no connection within ${this.waitMs} ms`)), this.waitMs);
      this.acceptWaiters.push((sock) => {
        clearTimeout(t);
        resolve(Conn.wrap(sock, this.waitMs));
      });
    });
  }

  cleanup(): void {
    for (const p of this.procs) p.kill();
    for (const s of this.accepted) s.destroy();
    this.server?.close();
    rmSync(this.home, { recursive: true, force: true });
  }
}

/** The relay side of one client connection, with the relay's own steps (§7.1, §7.3) done by the kit. */
class Session {
  readonly sessions = new Map<string, ResponderSession>();
  /** SEND frames from the client not yet consumed, in order. */
  private readonly sends: FrameOf<'SEND'>[] = [];
  clientKey: Uint8Array = new Uint8Array();
  clientNick = '';

  constructor(
    readonly conn: Conn,
    readonly ctx: ClientCtx,
    readonly proc: Proc,
  ) {}

  /** HELLO -> CHALLENGE -> AUTH (verified) -> WELCOME -> JOIN -> JOINED listing `peers`. */
  async admit(peers: readonly KitPeer[], welcome: { idle_ms?: number; max_frame?: number } = {}): Promise<void> {
    const nonce = await this.challenge(1);
    const auth = await this.expectFrom('AUTH');
    const ok = pssVerify(parsePublicKey(this.clientKey).key, authMessage(nonce, this.clientNick, this.clientKey), auth.sig);
    if (!ok) throw new CaseFailure("an AUTH signature that verifies (§7.3)", 'a signature that does not verify');
    this.conn.send({ type: 'WELCOME', idle_ms: welcome.idle_ms ?? 60_000, max_frame: welcome.max_frame ?? 65536, room_size: 8, rate: 1000 });
    const join = await this.expectFrom('JOIN');
    if (join.room !== this.ctx.room) throw new CaseFailure(`JOIN {room: ${this.ctx.room}}`, `JOIN {room: ${join.room}}`);
    this.conn.send({ type: 'JOINED', room: join.room, members: peers.map((p) => ({ nick: p.nick, key: p.spki })) });
  }

  /** Reads HELLO and answers CHALLENGE with `version`; returns the nonce. */
  async challenge(version: number): Promise<Uint8Array> {
    const hello = await this.expectFrom('HELLO');
    this.clientNick = hello.nick;
    this.clientKey = hello.key;
    const nonce = randomBytes(32);
    this.conn.send({ type: 'CHALLENGE', version, nonce });
    return nonce;
  }

  /** The next frame from the client that is not a PING (PINGs are answered, §7.1); must be `name`. */
  async expectFrom<N extends RelayFrame['type']>(name: N): Promise<Extract<RelayFrame, { type: N }>> {
    for (let i = 0; i < 50; i++) {
      const a = await this.conn.next();
      if (a.kind === 'frame' && a.frame.type === 'PING') {
        this.conn.send({ type: 'PONG', n: a.frame.n });
        continue;
      }
      if (a.kind === 'frame' && a.frame.type === name) return a.frame as Extract<RelayFrame, { type: N }>;
      throw new CaseFailure(`${name} from the client`, `${describe(a)}; client output: ${this.proc.tail()}`);
    }
    throw new CaseFailure(`${name} from the client`, 'only PINGs');
  }

  /** The next SEND from the client to `to` whose body is an e2e frame of type `t` (ACK MSGs to others are kept). */
  async sendTo(to: string, t: 'HS_INIT' | 'HS_RESP' | 'HS_FINISH' | 'MSG', ms = this.ctx.waitMs): Promise<Uint8Array | undefined> {
    const deadline = Date.now() + ms;
    for (let i = 0; i < 200; i++) {
      const idx = this.sends.findIndex((s) => s.to === to);
      if (idx >= 0) {
        const s = this.sends.splice(idx, 1)[0]!;
        let type: string;
        try {
          type = decodeFrame(s.body, 'e2e').type;
        } catch (e) {
          throw new CaseFailure(`a valid ${t} to ${to}`, `an e2e body that does not decode (${String(e)})`);
        }
        if (type === t) return s.body;
        if (type === 'MSG') continue; // an ACK or a message: not what this step waits for
        throw new CaseFailure(`${t} to ${to}`, `${type} to ${to}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      const a = await this.conn.next(left);
      // Silence or a closed connection: the client sent no such frame.
      if (a.kind === 'silence' || a.kind === 'closed') return undefined;
      if (a.kind === 'frame' && a.frame.type === 'PING') this.conn.send({ type: 'PONG', n: a.frame.n });
      else if (a.kind === 'frame' && a.frame.type === 'SEND') this.sends.push(a.frame);
      else if (a.kind === 'frame' && a.frame.type === 'LEAVE') this.conn.send({ type: 'LEFT' });
      else throw new CaseFailure(`SEND {to: ${to}} with ${t}`, `${describe(a)}; client output: ${this.proc.tail()}`);
    }
    return undefined;
  }

  deliver(from: string, body: Uint8Array): void {
    this.conn.send({ type: 'DELIVER', from, body });
  }

  /** Runs the §8.2 handshake with the client as initiator and `peer` as responder; returns the session. */
  async handshake(peer: KitPeer, opts: RespOptions = {}): Promise<ResponderSession> {
    const init = await this.sendTo(peer.nick, 'HS_INIT');
    if (init === undefined) throw new CaseFailure(`HS_INIT to ${peer.nick} (the client joined later: it initiates, §7.2)`, `nothing; client output: ${this.proc.tail()}`);
    const s = new ResponderSession(this.ctx.room, { nick: peer.nick, spki: peer.spki, privateKey: peer.ident.privateKey }, { nick: this.clientNick, spki: this.clientKey });
    this.sessions.set(peer.nick, s);
    this.deliver(peer.nick, s.onInit(init, opts));
    return s;
  }

  /** Handshake that must complete: the client's HS_FINISH must verify. */
  async established(peer: KitPeer): Promise<ResponderSession> {
    const s = await this.handshake(peer);
    const fin = await this.sendTo(peer.nick, 'HS_FINISH');
    if (fin === undefined) throw new CaseFailure(`HS_FINISH to ${peer.nick}`, `nothing; client output: ${this.proc.tail()}`);
    if (!s.onFinish(fin)) throw new CaseFailure('an HS_FINISH whose signature and MAC verify (§8.2)', 'an HS_FINISH that does not verify');
    await this.sessionEvent(peer);
    return s;
  }

  /**
   * Waits for the contract's session-established event for `peer`: a `* ` line that names it and shows
   * the safety number of §8.4, which the kit computes itself (so a wrong safety number fails).
   */
  async sessionEvent(peer: KitPeer): Promise<void> {
    const sn = safetyNumber({ nick: this.clientNick, spki: this.clientKey }, peer);
    const line = await this.proc.waitLine((l) => l.startsWith('* ') && l.includes(peer.nick) && l.includes(sn), this.ctx.waitMs);
    if (line === undefined) throw new CaseFailure(`a "* " event for ${peer.nick} with the safety number ${sn} (§8.4)`, this.proc.tail());
  }

  /** Answers the client's LEAVE (if any) so it can exit cleanly at end of input. */
  async serveUntilClosed(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    for (let i = 0; i < 500; i++) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      const a = await this.conn.next(left);
      if (a.kind === 'closed' || a.kind === 'silence') return;
      if (a.kind === 'frame' && a.frame.type === 'PING') this.conn.send({ type: 'PONG', n: a.frame.n });
      if (a.kind === 'frame' && a.frame.type === 'LEAVE') this.conn.send({ type: 'LEFT' });
      if (a.kind === 'frame' && a.frame.type === 'ERROR' && wireErrorName(a.frame.code) === undefined) {
        throw new CaseFailure('only wire-scope error codes sent to the relay, no end-to-end result (§9)', describe(a));
      }
    }
  }
}

async function open(ctx: ClientCtx, peers: readonly KitPeer[], welcome: { idle_ms?: number; max_frame?: number } = {}): Promise<Session> {
  const s = await connected(ctx);
  await s.admit(peers, welcome);
  return s;
}

/** Starts the client and accepts its connection, before HELLO. */
async function connected(ctx: ClientCtx): Promise<Session> {
  if (ctx.port === 0) await ctx.listen();
  const proc = ctx.start();
  let conn: Conn;
  try {
    conn = await ctx.accept();
  } catch (e) {
    if (e instanceof CaseFailure) throw new CaseFailure(e.expected, `${e.arrived}; client output: ${proc.tail()}`);
    throw e;
  }
  return new Session(conn, ctx, proc);
}

const shown = (nick: string, text: string) => (l: string) => l === `${nick}: ${text}`;
const marker = (what: string) => `${what}-${randomBytes(4).toString('hex')}`;

/** Ends input, serves the LEAVE, and requires exit status `want`. */
async function endsWith(s: Session, want: number): Promise<void> {
  s.proc.child.stdin!.end();
  await s.serveUntilClosed(s.ctx.waitMs);
  const code = await s.proc.exitStatus(s.ctx.waitMs);
  if (code !== want) throw new CaseFailure(`exit status ${want} at end of input`, `exit status ${String(code)}; output: ${s.proc.tail()}`);
}

/**
 * The refusal checks of one rejected MSG: `bad` was never shown, a `* ` event was printed after `from`
 * (index into stdout lines) up to the marker, and if that event names a §9 code it is `code`.
 */
function refused(s: Session, badText: string | undefined, from: number, markerLine: string, code: ErrorName): void {
  if (badText !== undefined && s.proc.lines.some((l) => l.endsWith(`: ${badText}`))) {
    throw new CaseFailure(`the refused message never shown (${code})`, `it was shown: ${s.proc.lines.find((l) => l.endsWith(`: ${badText}`))}`);
  }
  const end = s.proc.lines.indexOf(markerLine);
  const window = s.proc.lines.slice(from, end < 0 ? undefined : end);
  const events = window.filter((l) => l.startsWith('* ') && !/^\* (sent|delivered) /.test(l));
  if (events.length === 0) throw new CaseFailure(`a "* " event reporting the refused message (${code})`, `no event line; output: ${window.join(' | ') || '(none)'}`);
  const named = events.flatMap((l) => ERROR_NAMES.filter((n) => new RegExp(`\\b${n}\\b`).test(l)));
  if (named.length > 0 && !named.includes(code)) throw new CaseFailure(`the event to name ${code} (if it names a code)`, events.join(' | '));
}

export interface ClientCase extends RunnableCase<ClientCtx> {}

const cases: ClientCase[] = [];
const add = (c: ClientCase) => cases.push(c);

add({
  id: 'client_baseline_message',
  section: '§8.2, §8.3, §8.4',
  title: 'after the handshake (event with the §8.4 safety number) a TEXT from a peer is shown as "NICK: TEXT", acknowledged with ACK{upto: seq}; exit 0 at end of input',
  async run(ctx) {
    const bob = ctx.peer(0);
    const s = await open(ctx, [bob]);
    const sess = await s.established(bob);
    const text = marker('hello');
    s.deliver(bob.nick, sess.text(text));
    if ((await s.proc.waitLine(shown(bob.nick, text), ctx.waitMs)) === undefined) throw new CaseFailure(`"${bob.nick}: ${text}" on stdout`, s.proc.tail());
    const ack = await s.sendTo(bob.nick, 'MSG');
    const inner = ack && sess.open(ack);
    if (!(inner && inner.type === 'ACK' && inner.upto === 0)) throw new CaseFailure('MSG carrying ACK {upto: 0} (§8.3 step 6)', inner ? JSON.stringify(inner) : 'no MSG that opens');
    await endsWith(s, 0);
  },
});

add({
  id: 'client_replay',
  section: '§8.3 step 1',
  title: 'a replayed MSG (same seq and bytes again) is refused (REPLAY), shown once only; the next message is shown',
  async run(ctx) {
    const bob = ctx.peer(0);
    const s = await open(ctx, [bob]);
    const sess = await s.established(bob);
    const first = marker('once');
    const msg = sess.text(first);
    s.deliver(bob.nick, msg);
    if ((await s.proc.waitLine(shown(bob.nick, first), ctx.waitMs)) === undefined) throw new CaseFailure(`"${bob.nick}: ${first}"`, s.proc.tail());
    const from = s.proc.lines.length;
    s.deliver(bob.nick, msg);
    const next = marker('next');
    s.deliver(bob.nick, sess.text(next));
    if ((await s.proc.waitLine(shown(bob.nick, next), ctx.waitMs)) === undefined) throw new CaseFailure(`"${bob.nick}: ${next}" after the replay`, s.proc.tail());
    const times = s.proc.lines.filter(shown(bob.nick, first)).length;
    if (times !== 1) throw new CaseFailure('the replayed message shown once', `shown ${times} times`);
    refused(s, undefined, from, `${bob.nick}: ${next}`, 'REPLAY');
    await endsWith(s, 0);
  },
});

add({
  id: 'client_reorder',
  section: '§8.3 step 1',
  title: 'a MSG that arrives before its predecessor is refused (OUT_OF_ORDER) and changes nothing: seq 0 then the same seq 1 are shown in order',
  async run(ctx) {
    const bob = ctx.peer(0);
    const s = await open(ctx, [bob]);
    const sess = await s.established(bob);
    const t0 = marker('zero');
    const t1 = marker('one');
    const m0 = sess.text(t0);
    const m1 = sess.text(t1);
    const from = s.proc.lines.length;
    s.deliver(bob.nick, m1);
    s.deliver(bob.nick, m0);
    if ((await s.proc.waitLine(shown(bob.nick, t0), ctx.waitMs)) === undefined) throw new CaseFailure(`"${bob.nick}: ${t0}"`, s.proc.tail());
    if (s.proc.lines.some(shown(bob.nick, t1))) throw new CaseFailure('seq 1 not shown before seq 0', 'seq 1 was shown first');
    refused(s, undefined, from, `${bob.nick}: ${t0}`, 'OUT_OF_ORDER');
    s.deliver(bob.nick, m1);
    if ((await s.proc.waitLine(shown(bob.nick, t1), ctx.waitMs)) === undefined) throw new CaseFailure(`"${bob.nick}: ${t1}" once its turn came`, s.proc.tail());
    await endsWith(s, 0);
  },
});

add({
  id: 'client_tampered_ciphertext',
  section: '§8.3 step 2',
  title: 'a MSG with one bit of its ciphertext flipped is refused (DECRYPT_FAILED), not shown; the genuine MSG is then shown',
  async run(ctx) {
    const bob = ctx.peer(0);
    const s = await open(ctx, [bob]);
    const sess = await s.established(bob);
    const text = marker('genuine');
    const good = sess.text(text);
    const f = decodeFrame(good, 'e2e') as FrameOf<'MSG'>;
    const ct = Buffer.from(f.ct);
    ct[10]! ^= 0x40;
    const from = s.proc.lines.length;
    s.deliver(bob.nick, mp.map([['t', mp.uint(0x24)], ['seq', mp.uint(f.seq)], ['ct', mp.bin(ct)]]));
    s.deliver(bob.nick, good);
    if ((await s.proc.waitLine(shown(bob.nick, text), ctx.waitMs)) === undefined) throw new CaseFailure(`"${bob.nick}: ${text}" after the tampered copy`, s.proc.tail());
    if (s.proc.lines.filter(shown(bob.nick, text)).length !== 1) throw new CaseFailure('the text shown once', 'shown twice');
    refused(s, undefined, from, `${bob.nick}: ${text}`, 'DECRYPT_FAILED');
    await endsWith(s, 0);
  },
});

add({
  id: 'client_bad_padding',
  section: '§8.3 step 4',
  title: 'a MSG that opens but whose padding has a non-zero byte is refused (BAD_PADDING), not shown; the next MSG is shown',
  async run(ctx) {
    const bob = ctx.peer(0);
    const s = await open(ctx, [bob]);
    const sess = await s.established(bob);
    const bad = marker('padded');
    const padded = pad(mp.map([['t', mp.uint(0x31)], ['ts', mp.uint(1)], ['text', mp.str(bad)]]));
    padded[padded.length - 1] = 0x01;
    const from = s.proc.lines.length;
    s.deliver(bob.nick, sess.seal(new Uint8Array(), { padded }));
    // Steps 1-3 succeeded, so the receive chain advanced: the next message is seq 1.
    const next = marker('next');
    s.deliver(bob.nick, sess.text(next));
    if ((await s.proc.waitLine(shown(bob.nick, next), ctx.waitMs)) === undefined) throw new CaseFailure(`"${bob.nick}: ${next}" (seq 1)`, s.proc.tail());
    refused(s, bad, from, `${bob.nick}: ${next}`, 'BAD_PADDING');
    await endsWith(s, 0);
  },
});

add({
  id: 'client_inner_unknown_type',
  section: '§8.3 step 5, §4 rule 9',
  title: 'a MSG whose inner frame has an unknown type is refused (UNKNOWN_FRAME_TYPE); the next MSG is shown',
  async run(ctx) {
    const bob = ctx.peer(0);
    const s = await open(ctx, [bob]);
    const sess = await s.established(bob);
    const from = s.proc.lines.length;
    s.deliver(bob.nick, sess.seal(mp.map([['t', mp.uint(0x7f)], ['text', mp.str('x')]])));
    const next = marker('next');
    s.deliver(bob.nick, sess.text(next));
    if ((await s.proc.waitLine(shown(bob.nick, next), ctx.waitMs)) === undefined) throw new CaseFailure(`"${bob.nick}: ${next}" (seq 1)`, s.proc.tail());
    refused(s, undefined, from, `${bob.nick}: ${next}`, 'UNKNOWN_FRAME_TYPE');
    await endsWith(s, 0);
  },
});

add({
  id: 'client_truncated_e2e_body',
  section: '§4 rule 7, §8.3',
  title: 'a DELIVER whose body is a truncated MSG is refused (MALFORMED_FRAME) and changes nothing: the intact MSG is then shown',
  async run(ctx) {
    const bob = ctx.peer(0);
    const s = await open(ctx, [bob]);
    const sess = await s.established(bob);
    const text = marker('intact');
    const good = sess.text(text);
    const from = s.proc.lines.length;
    s.deliver(bob.nick, good.subarray(0, good.length - 7));
    s.deliver(bob.nick, good);
    if ((await s.proc.waitLine(shown(bob.nick, text), ctx.waitMs)) === undefined) throw new CaseFailure(`"${bob.nick}: ${text}"`, s.proc.tail());
    refused(s, undefined, from, `${bob.nick}: ${text}`, 'MALFORMED_FRAME');
    await endsWith(s, 0);
  },
});

add({
  id: 'client_forged_sender',
  section: '§8.3, §11',
  title: "a MSG of bob's session delivered as from carol is refused (DECRYPT_FAILED), shown under neither name; both sessions go on",
  async run(ctx) {
    const bob = ctx.peer(0);
    const carol = ctx.peer(1);
    const s = await open(ctx, [bob, carol]);
    const sb = await s.established(bob);
    const sc = await s.established(carol);
    const forged = marker('forged');
    const from = s.proc.lines.length;
    s.deliver(carol.nick, sb.text(forged, { seq: 0 }));
    const fromCarol = marker('carol');
    s.deliver(carol.nick, sc.text(fromCarol));
    if ((await s.proc.waitLine(shown(carol.nick, fromCarol), ctx.waitMs)) === undefined) throw new CaseFailure(`"${carol.nick}: ${fromCarol}"`, s.proc.tail());
    refused(s, forged, from, `${carol.nick}: ${fromCarol}`, 'DECRYPT_FAILED');
    s.deliver(bob.nick, sb.text(forged, { seq: 0 }));
    if ((await s.proc.waitLine(shown(bob.nick, forged), ctx.waitMs)) === undefined) throw new CaseFailure(`"${bob.nick}: ${forged}" delivered from its real sender`, s.proc.tail());
    await endsWith(s, 0);
  },
});

add({
  id: 'client_handshake_key_substitution',
  section: '§8.2, §11',
  title: 'an HS_RESP signed with a key other than the one in JOINED is refused (BAD_SIGNATURE): no HS_FINISH, no session, nothing shown',
  async run(ctx) {
    const bob = ctx.peer(0);
    const s = await open(ctx, [bob]);
    const sess = await s.handshake(bob, { signWith: ctx.peer(1).ident.privateKey });
    const fin = await s.sendTo(bob.nick, 'HS_FINISH', ctx.waitMs);
    if (fin !== undefined) throw new CaseFailure('no HS_FINISH (BAD_SIGNATURE fails the session, §7.2)', 'HS_FINISH sent');
    const text = marker('mitm');
    s.deliver(bob.nick, sess.text(text));
    await s.proc.waitLine(shown(bob.nick, text), Math.min(ctx.waitMs, 1000));
    if (s.proc.lines.some(shown(bob.nick, text))) throw new CaseFailure('nothing shown from a peer whose handshake failed', `shown: ${text}`);
    const est = s.proc.lines.find((l) => l.startsWith('* ') && l.includes(bob.nick) && SAFETY.test(l));
    if (est) throw new CaseFailure('no session-established event', est);
  },
});

add({
  id: 'client_handshake_bad_confirmation',
  section: '§8.2',
  title: 'an HS_RESP whose key-confirmation MAC is wrong is refused (BAD_KEY_CONFIRMATION): no HS_FINISH, nothing shown',
  async run(ctx) {
    const bob = ctx.peer(0);
    const s = await open(ctx, [bob]);
    const sess = await s.handshake(bob, { badMac: true });
    const fin = await s.sendTo(bob.nick, 'HS_FINISH', ctx.waitMs);
    if (fin !== undefined) throw new CaseFailure('no HS_FINISH (BAD_KEY_CONFIRMATION fails the session, §7.2)', 'HS_FINISH sent');
    const text = marker('unconfirmed');
    s.deliver(bob.nick, sess.text(text));
    await s.proc.waitLine(shown(bob.nick, text), Math.min(ctx.waitMs, 1000));
    if (s.proc.lines.some(shown(bob.nick, text))) throw new CaseFailure('nothing shown', `shown: ${text}`);
  },
});

/** A handshake whose HS_RESP is spoiled: the client must send no HS_FINISH and show nothing. */
function badResp(id: string, section: string, title: string, opts: (ctx: ClientCtx) => RespOptions): void {
  add({
    id,
    section,
    title,
    async run(ctx) {
      const bob = ctx.peer(0);
      const s = await open(ctx, [bob]);
      const sess = await s.handshake(bob, opts(ctx));
      const fin = await s.sendTo(bob.nick, 'HS_FINISH', ctx.waitMs);
      if (fin !== undefined) throw new CaseFailure('no HS_FINISH: the refusal fails the session (§7.2)', 'HS_FINISH sent');
      const text = marker('unverified');
      s.deliver(bob.nick, sess.text(text));
      await s.proc.waitLine(shown(bob.nick, text), Math.min(ctx.waitMs, 1000));
      if (s.proc.lines.some(shown(bob.nick, text))) throw new CaseFailure('nothing shown from a peer whose handshake failed', `shown: ${text}`);
      const est = s.proc.lines.find((l) => l.startsWith('* ') && l.includes(bob.nick) && SAFETY.test(l));
      if (est) throw new CaseFailure('no session-established event', est);
    },
  });
}

badResp(
  'client_handshake_zero_ephemeral',
  '§8.2',
  'an HS_RESP whose ephemeral key is all zeros (so dh is all zeros) is refused (BAD_EPHEMERAL_KEY): no HS_FINISH, nothing shown',
  () => ({ eph: new Uint8Array(32) }),
);
badResp(
  'client_handshake_bad_oaep',
  '§8.2',
  'an HS_RESP whose ct does not decrypt under the client key is refused (OAEP_FAILED): no HS_FINISH, nothing shown',
  () => ({ ct: randomBytes(256) }),
);

const badPeerKeys: Array<[string, string, (ctx: ClientCtx) => Promise<Uint8Array>]> = [
  ['rsa_1024', 'an RSA-1024 key', async () => (await makeIdentity(1024)).spki],
  ['trailing_byte', 'a valid key followed by one byte', async (ctx) => Buffer.concat([ctx.peer(0).spki, Buffer.from([0])])],
];
for (const [tag, what, key] of badPeerKeys) {
  add({
    id: `client_peer_key_${tag}`,
    section: '§8.1',
    title: `a member listed in JOINED with ${what} gets no session (no HS_INIT), while a member with a valid key does`,
    async run(ctx) {
      const k = await key(ctx);
      const bob = { ...ctx.peer(0), spki: k };
      const carol = ctx.peer(1);
      const s = await open(ctx, [bob, carol]);
      // carol's HS_INIT shows the client is running its handshakes; bob's, if any, has been sent by then or soon after.
      if ((await s.sendTo(carol.nick, 'HS_INIT')) === undefined) throw new CaseFailure(`HS_INIT to ${carol.nick}, whose key is valid`, `nothing; client output: ${s.proc.tail()}`);
      const init = await s.sendTo(bob.nick, 'HS_INIT', Math.min(ctx.waitMs, 1000));
      if (init !== undefined) throw new CaseFailure(`no HS_INIT to a member whose key is not canonical RSA-2048/65537 (§8.1)`, 'HS_INIT sent');
    },
  });
}

add({
  id: 'client_msg_before_established',
  section: '§7.2',
  title: 'a MSG that arrives while the client waits for HS_RESP is never shown and fails the session: no HS_FINISH follows',
  async run(ctx) {
    const bob = ctx.peer(0);
    const s = await open(ctx, [bob]);
    const init = await s.sendTo(bob.nick, 'HS_INIT');
    if (init === undefined) throw new CaseFailure(`HS_INIT to ${bob.nick}`, s.proc.tail());
    const early = mp.map([['t', mp.uint(0x24)], ['seq', mp.uint(0)], ['ct', mp.bin(randomBytes(272))]]);
    s.deliver(bob.nick, early);
    const sess = new ResponderSession(ctx.room, { nick: bob.nick, spki: bob.spki, privateKey: bob.ident.privateKey }, { nick: s.clientNick, spki: s.clientKey });
    s.deliver(bob.nick, sess.onInit(init));
    const fin = await s.sendTo(bob.nick, 'HS_FINISH', ctx.waitMs);
    if (fin !== undefined) throw new CaseFailure('no HS_FINISH: MSG in AWAIT_RESP is not in the table, the session FAILED (§7.2)', 'HS_FINISH sent');
    if (s.proc.lines.some((l) => l.startsWith(`${bob.nick}: `))) throw new CaseFailure('nothing shown from bob', s.proc.lines.find((l) => l.startsWith(`${bob.nick}: `))!);
  },
});

/** The client as responder: it is alone in the room, then `peer` joins (PEER_JOINED) and initiates. */
async function responderUpTo(ctx: ClientCtx): Promise<{ s: Session; bob: KitPeer; sess: InitiatorSession; finish: Uint8Array }> {
  const bob = ctx.peer(0);
  const s = await open(ctx, []);
  s.conn.send({ type: 'PEER_JOINED', nick: bob.nick, key: bob.spki });
  const sess = new InitiatorSession(ctx.room, { nick: bob.nick, spki: bob.spki, privateKey: bob.ident.privateKey }, { nick: s.clientNick, spki: s.clientKey });
  s.deliver(bob.nick, sess.init());
  const resp = await s.sendTo(bob.nick, 'HS_RESP');
  if (resp === undefined) throw new CaseFailure(`HS_RESP to ${bob.nick} (the client learnt of it by PEER_JOINED: it responds, §7.2)`, `nothing; client output: ${s.proc.tail()}`);
  let finish: Uint8Array;
  try {
    finish = sess.onResp(resp);
  } catch (e) {
    throw new CaseFailure('an HS_RESP that passes the initiator checks of §8.2', e instanceof Error ? e.message : String(e));
  }
  return { s, bob, sess, finish };
}

add({
  id: 'client_responder_baseline',
  section: '§7.2, §8.2',
  title: 'as responder (peer announced by PEER_JOINED) the client answers HS_INIT with a valid HS_RESP and, after HS_FINISH, shows the peer\'s TEXT',
  async run(ctx) {
    const { s, bob, sess, finish } = await responderUpTo(ctx);
    s.deliver(bob.nick, finish);
    await s.sessionEvent(bob);
    const text = marker('responder');
    s.deliver(bob.nick, sess.text(text));
    if ((await s.proc.waitLine(shown(bob.nick, text), ctx.waitMs)) === undefined) throw new CaseFailure(`"${bob.nick}: ${text}"`, s.proc.tail());
    await endsWith(s, 0);
  },
});

add({
  id: 'client_responder_hs_init_version',
  section: '§2.1, §7.2',
  title: 'as responder, an HS_INIT with version 2 fails the session (UNSUPPORTED_VERSION): no HS_RESP',
  async run(ctx) {
    const bob = ctx.peer(0);
    const s = await open(ctx, []);
    s.conn.send({ type: 'PEER_JOINED', nick: bob.nick, key: bob.spki });
    const sess = new InitiatorSession(ctx.room, { nick: bob.nick, spki: bob.spki, privateKey: bob.ident.privateKey }, { nick: s.clientNick, spki: s.clientKey });
    s.deliver(bob.nick, sess.init(2));
    // A valid HS_INIT to a second peer shows the client is answering handshakes.
    const carol = ctx.peer(1);
    s.conn.send({ type: 'PEER_JOINED', nick: carol.nick, key: carol.spki });
    const ok = new InitiatorSession(ctx.room, { nick: carol.nick, spki: carol.spki, privateKey: carol.ident.privateKey }, { nick: s.clientNick, spki: s.clientKey });
    s.deliver(carol.nick, ok.init());
    if ((await s.sendTo(carol.nick, 'HS_RESP')) === undefined) throw new CaseFailure(`HS_RESP to ${carol.nick} (version 1)`, `nothing; client output: ${s.proc.tail()}`);
    const resp = await s.sendTo(bob.nick, 'HS_RESP', Math.min(ctx.waitMs, 1000));
    if (resp !== undefined) throw new CaseFailure('no HS_RESP to an HS_INIT of version 2 (§2.1)', 'HS_RESP sent');
  },
});

add({
  id: 'client_msg_before_finish',
  section: '§7.2',
  title: 'a correctly sealed MSG that arrives before HS_FINISH (responder in AWAIT_FINISH) is never shown',
  async run(ctx) {
    const { s, bob, sess, finish } = await responderUpTo(ctx);
    const early = marker('early');
    s.deliver(bob.nick, sess.text(early));
    s.deliver(bob.nick, finish);
    await s.proc.waitLine(shown(bob.nick, early), Math.min(ctx.waitMs, 1500));
    if (s.proc.lines.some(shown(bob.nick, early))) throw new CaseFailure('no MSG shown before ESTABLISHED (§7.2)', `shown: ${bob.nick}: ${early}`);
  },
});

add({
  id: 'client_ack_unknown_seq',
  section: '§8.3 step 6',
  title: 'an ACK for a seq the client never sent is refused (INVALID_FIELD) and changes nothing else: the next TEXT is shown',
  async run(ctx) {
    const bob = ctx.peer(0);
    const s = await open(ctx, [bob]);
    const sess = await s.established(bob);
    const from = s.proc.lines.length;
    s.deliver(bob.nick, sess.seal(encodeFrame({ type: 'ACK', upto: 5 })));
    const next = marker('next');
    s.deliver(bob.nick, sess.text(next));
    if ((await s.proc.waitLine(shown(bob.nick, next), ctx.waitMs)) === undefined) throw new CaseFailure(`"${bob.nick}: ${next}" (seq 1)`, s.proc.tail());
    refused(s, undefined, from, `${bob.nick}: ${next}`, 'INVALID_FIELD');
    await endsWith(s, 0);
  },
});

add({
  id: 'client_handshake_frame_when_established',
  section: '§7.2',
  title: 'a handshake frame (HS_FINISH) in ESTABLISHED fails the session (UNEXPECTED_FRAME): a TEXT that follows is not shown',
  async run(ctx) {
    const bob = ctx.peer(0);
    const s = await open(ctx, [bob]);
    const sess = await s.established(bob);
    s.deliver(bob.nick, encodeFrame({ type: 'HS_FINISH', sig: randomBytes(256), mac: randomBytes(32) }));
    const after = marker('after');
    s.deliver(bob.nick, sess.text(after));
    await s.proc.waitLine(shown(bob.nick, after), Math.min(ctx.waitMs, 1500));
    if (s.proc.lines.some(shown(bob.nick, after))) throw new CaseFailure('nothing shown after the session failed', `shown: ${bob.nick}: ${after}`);
  },
});

add({
  id: 'client_hs_init_to_initiator',
  section: '§7.2',
  title: 'an HS_INIT sent to the initiator fails its session (roles are fixed): no HS_RESP, and no HS_FINISH for a valid HS_RESP after it',
  async run(ctx) {
    const bob = ctx.peer(0);
    const s = await open(ctx, [bob]);
    const init = await s.sendTo(bob.nick, 'HS_INIT');
    if (init === undefined) throw new CaseFailure(`HS_INIT to ${bob.nick}`, s.proc.tail());
    const counter = new InitiatorSession(ctx.room, { nick: bob.nick, spki: bob.spki, privateKey: bob.ident.privateKey }, { nick: s.clientNick, spki: s.clientKey });
    s.deliver(bob.nick, counter.init());
    const sess = new ResponderSession(ctx.room, { nick: bob.nick, spki: bob.spki, privateKey: bob.ident.privateKey }, { nick: s.clientNick, spki: s.clientKey });
    s.deliver(bob.nick, sess.onInit(init));
    for (let i = 0; i < 5; i++) {
      const a = await s.conn.next(Math.min(ctx.waitMs, 1500));
      if (a.kind === 'silence' || a.kind === 'closed') return;
      if (a.kind === 'frame' && a.frame.type === 'PING') {
        s.conn.send({ type: 'PONG', n: a.frame.n });
        continue;
      }
      if (a.kind === 'frame' && a.frame.type === 'SEND' && a.frame.to === bob.nick) {
        const t = decodeFrame(a.frame.body, 'e2e').type;
        if (t === 'HS_RESP' || t === 'HS_FINISH') throw new CaseFailure('no HS_RESP or HS_FINISH: the session FAILED on HS_INIT (§7.2)', `${t} sent`);
      }
    }
  },
});

add({
  id: 'client_challenge_version',
  section: '§2.1',
  title: 'a CHALLENGE with version 2 (the client sent 1) makes the client close without AUTH (UNSUPPORTED_VERSION): exit 7',
  async run(ctx) {
    const s = await connected(ctx);
    await s.challenge(2);
    for (let i = 0; i < 3; i++) {
      const a = await s.conn.next();
      if (a.kind === 'closed') break;
      if (a.kind === 'frame' && a.frame.type === 'ERROR' && a.frame.code === ERROR_CODES.UNSUPPORTED_VERSION.code) continue; // SHOULD (§9)
      throw new CaseFailure('the connection closed with no AUTH (optionally after ERROR UNSUPPORTED_VERSION)', describe(a));
    }
    const code = await s.proc.exitStatus(ctx.waitMs);
    if (code !== 7) throw new CaseFailure('exit status 7 (protocol error)', `exit status ${String(code)}; output: ${s.proc.tail()}`);
  },
});

add({
  id: 'client_respects_max_frame',
  section: '§3',
  title: 'with max_frame 1024 announced, the client sends no larger frame, even for a 3000-byte line (a short line after it still arrives)',
  async run(ctx) {
    const bob = ctx.peer(0);
    const s = await open(ctx, [bob], { max_frame: 1024 });
    const sess = await s.established(bob);
    const short = marker('short');
    s.proc.child.stdin!.write(`${'x'.repeat(3000)}\n${short}\n`);
    let seen = false;
    for (let i = 0; i < 20 && !seen; i++) {
      const m = await s.sendTo(bob.nick, 'MSG');
      if (m === undefined) break;
      const inner = sess.open(m);
      if (inner?.type === 'TEXT' && inner.text === short) seen = true;
    }
    if (s.conn.maxBody > 1024) throw new CaseFailure('no frame body above the announced max_frame of 1024 bytes', `a frame body of ${s.conn.maxBody} bytes`);
    if (!seen) throw new CaseFailure(`the short line "${short}" sent to ${bob.nick}`, `not received; output: ${s.proc.tail()}`);
  },
});

add({
  id: 'client_keepalive',
  section: '§7.1 Timeouts',
  title: 'with idle_ms 1500 announced, an idle client sends a frame (PING) at least every 1500 ms, for 4500 ms',
  async run(ctx) {
    const idle = 1500;
    const s = await open(ctx, [], { idle_ms: idle });
    const until = Date.now() + 3 * idle;
    for (let i = 0; i < 100 && Date.now() < until; i++) {
      const a = await s.conn.next(idle);
      if (a.kind === 'frame' && a.frame.type === 'PING') s.conn.send({ type: 'PONG', n: a.frame.n });
      else if (a.kind === 'silence') throw new CaseFailure(`a frame within the announced idle_ms (${idle} ms)`, `nothing for ${idle} ms`);
      else if (a.kind !== 'frame') throw new CaseFailure('PING', describe(a));
    }
  },
});

add({
  id: 'client_key_changed',
  section: '§11, client contract',
  title: 'a peer that comes back with another key (same nick, same relay, same --home) stops the client: exit 5, no HS_INIT to it',
  async run(ctx) {
    const nick = `ckpeer${randomBytes(4).toString('hex')}`;
    const first = ctx.peer(0, nick);
    const s1 = await open(ctx, [first]);
    const sess = await s1.established(first);
    const text = marker('pinned');
    s1.deliver(first.nick, sess.text(text));
    if ((await s1.proc.waitLine(shown(nick, text), ctx.waitMs)) === undefined) throw new CaseFailure(`"${nick}: ${text}" on the first run`, s1.proc.tail());
    await endsWith(s1, 0);
    const second = ctx.peer(1, nick);
    const s2 = await open(ctx, [second]);
    const init = await s2.sendTo(nick, 'HS_INIT', Math.min(ctx.waitMs, 1500));
    if (init !== undefined) throw new CaseFailure(`no traffic with ${nick} after its key changed`, 'HS_INIT sent to the changed key');
    const code = await s2.proc.exitStatus(ctx.waitMs);
    if (code !== 5) throw new CaseFailure('exit status 5 (a peer key changed)', `exit status ${String(code)}; output: ${s2.proc.tail()}`);
  },
});

add({
  id: 'client_truncated_relay_frame',
  section: '§3',
  title: 'a relay connection that closes in the middle of a DELIVER is a lost connection: the partial message is not shown, exit 6',
  async run(ctx) {
    const bob = ctx.peer(0);
    const s = await open(ctx, [bob]);
    const sess = await s.established(bob);
    const text = marker('partial');
    const w = encodeWire({ type: 'DELIVER', from: bob.nick, body: sess.text(text) });
    s.conn.raw(w.subarray(0, w.length - 20));
    await new Promise((r) => setTimeout(r, 20));
    s.conn.socket.end();
    const code = await s.proc.exitStatus(ctx.waitMs);
    if (s.proc.lines.some((l) => l.includes(text))) throw new CaseFailure('the partial frame discarded', 'its text was shown');
    if (code !== 6) throw new CaseFailure('exit status 6 (connection lost)', `exit status ${String(code)}; output: ${s.proc.tail()}`);
  },
});

add({
  id: 'client_noncanonical_relay_frame',
  section: '§4 rule 3',
  title: 'a DELIVER whose `t` is written as uint 8 is refused (MALFORMED_FRAME): not shown, exit 7',
  async run(ctx) {
    const bob = ctx.peer(0);
    const s = await open(ctx, [bob]);
    const sess = await s.established(bob);
    const text = marker('noncanonical');
    s.conn.body(mp.map([['t', Buffer.from([0xcc, 0x0a])], ['from', mp.str(bob.nick)], ['body', mp.bin(sess.text(text))]]));
    const code = await s.proc.exitStatus(ctx.waitMs);
    if (s.proc.lines.some((l) => l.includes(text))) throw new CaseFailure('the non-canonical frame not acted on', 'its text was shown');
    if (code !== 7) throw new CaseFailure('exit status 7 (protocol error)', `exit status ${String(code)}; output: ${s.proc.tail()}`);
  },
});

/** Every client case. */
export const CLIENT_CASES: readonly ClientCase[] = cases;

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
