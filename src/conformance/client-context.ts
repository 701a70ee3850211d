/**
 * The client kit's scripted relay (spec/CONFORMANCE.md "Client contract"): the client under test as a
 * child process (Proc), the per-case context that listens and starts it (ClientCtx), one accepted
 * connection that plays the relay and every other member (Session), and the checks the client cases
 * share. The cases are in client-cases.ts, the runner in client-kit.ts, as on the server side
 * (context.ts, server-cases.ts, server-kit.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeFrame, type FrameOf, type RelayFrame } from '../codec/index.js';
import { authMessage, pssVerify, parsePublicKey } from '../crypto/rsa.js';
import { ERROR_CODES, wireErrorName, type ErrorName } from '../protocol/errors.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import { relayIdentity } from '../protocol/relay-id.js';
import { rosterPreimage } from '../client/roster.js';
import { CaseFailure, Conn, describe } from './conn.js';
import type { Identity } from './context.js';
import { ResponderSession, safetyNumber, type KitPeer, type RespOptions, type SessionBase } from './peer.js';

/** How many waitMs the kit waits for a started client to connect (a liveness bound, see ClientCtx.accept). */
export const CONNECT_WAITS = 4;

export const SAFETY = /\d{5}( \d{5}){11}/;
export const ERROR_NAMES = Object.keys(ERROR_CODES) as ErrorName[];

/** The client under test as a child process: stdout lines, exit status. */
export class Proc {
  readonly lines: string[] = [];
  readonly stderr: string[] = [];
  /** Resolves with the exit status (or the spawn error) once the process is gone. */
  readonly exited: Promise<number | string>;
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

  /**
   * The next connection `proc` opens to the scripted relay. Waits up to CONNECT_WAITS x waitMs, or until
   * the process exits: how fast a process starts is no rule of the contract (on a loaded machine a node
   * process with a fresh home takes seconds), and a client that exits without connecting fails at once.
   */
  accept(proc: Proc): Promise<Conn> {
    const s = this.accepted.shift();
    if (s) return Promise.resolve(Conn.wrap(s, this.waitMs));
    const ms = CONNECT_WAITS * this.waitMs;
    return new Promise((resolve, reject) => {
      const waiter = (sock: Socket) => {
        clearTimeout(t);
        resolve(Conn.wrap(sock, this.waitMs));
      };
      const give = (arrived: string) => {
        const i = this.acceptWaiters.indexOf(waiter);
        if (i < 0) return; // connected meanwhile
        this.acceptWaiters.splice(i, 1);
        clearTimeout(t);
        reject(new CaseFailure('the client to connect to the relay', arrived));
      };
      const t = setTimeout(() => give(`no connection within ${ms} ms`), ms);
      this.acceptWaiters.push(waiter);
      void proc.exited.then((code) => give(`the client exited first (status ${String(code)})`));
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
export class Session {
  readonly sessions = new Map<string, ResponderSession>();
  /** SEND frames from the client not yet consumed, in order. */
  private readonly sends: FrameOf<'SEND'>[] = [];
  clientKey: Uint8Array = new Uint8Array();
  clientNick = '';
  /** The room epoch this scripted relay announced last (§7.1 "Room epoch"), and the members then. */
  epoch = 0;
  readonly members = new Map<string, Uint8Array>();

  constructor(
    readonly conn: Conn,
    readonly ctx: ClientCtx,
    readonly proc: Proc,
  ) {}

  /** HELLO -> CHALLENGE -> AUTH (verified) -> WELCOME -> JOIN -> JOINED listing `peers`. */
  async admit(peers: readonly KitPeer[], welcome: { idle_ms?: number; max_frame?: number } = {}): Promise<void> {
    const nonce = await this.challenge(PROTOCOL_VERSION);
    const auth = await this.expectFrom('AUTH');
    const ok = pssVerify(parsePublicKey(this.clientKey).key, authMessage(nonce, this.clientNick, this.clientKey, this.relayName(), new Uint8Array(0)), auth.sig);
    if (!ok) throw new CaseFailure("an AUTH signature that verifies (§7.3)", 'a signature that does not verify');
    this.conn.send({ type: 'WELCOME', idle_ms: welcome.idle_ms ?? 60_000, max_frame: welcome.max_frame ?? 65536, room_size: 8, rate: 1000 });
    // §7.5: a client may register a recovery code before it joins; the scripted relay confirms it. A JOIN
    // sent behind AUTH (§7.4, before WELCOME) is read here too: the client's frames come in order.
    const first = await this.expectFrom('JOIN', 'SET_RECOVERY');
    if (first.type === 'SET_RECOVERY') this.conn.send({ type: 'RECOVERY_SET' });
    const join = first.type === 'JOIN' ? first : await this.expectFrom('JOIN');
    if (join.room !== this.ctx.room) throw new CaseFailure(`JOIN {room: ${this.ctx.room}}`, `JOIN {room: ${join.room}}`);
    // As if the client joined a room its peers had entered one by one: epoch 1 + one per earlier member.
    this.epoch = peers.length + 1;
    this.members.clear();
    this.members.set(this.clientNick, this.clientKey);
    for (const p of peers) this.members.set(p.nick, p.spki);
    this.conn.send({ type: 'JOINED', room: join.room, epoch: this.epoch, members: peers.map((p) => ({ nick: p.nick, key: p.spki })) });
  }

  /** PEER_JOINED for `peer` at the next epoch. */
  peerJoined(peer: { nick: string; spki: Uint8Array }): void {
    this.members.set(peer.nick, peer.spki);
    this.conn.send({ type: 'PEER_JOINED', nick: peer.nick, key: peer.spki, epoch: ++this.epoch });
  }

  /** PEER_LEFT for `nick` at the next epoch. */
  peerLeft(nick: string): void {
    this.members.delete(nick);
    this.conn.send({ type: 'PEER_LEFT', nick, epoch: ++this.epoch });
  }

  /** The §8.6 commitment to `members` (default: the room as this relay announced it) at `epoch`. */
  commitment(epoch = this.epoch, members: ReadonlyMap<string, Uint8Array> = this.members): Uint8Array {
    return createHash('sha256')
      .update(rosterPreimage(this.ctx.room, epoch, [...members].map(([nick, key]) => ({ nick, key }))))
      .digest();
  }

  /** The scripted relay's name (§7.3): the relay identity of `{host}:{port}` as the client dials it (`localhost:PORT`). */
  relayName(): string {
    return relayIdentity('127.0.0.1', this.ctx.port);
  }

  /** Reads HELLO and answers CHALLENGE with `version` (and `relay`, default our own name); returns the nonce. */
  async challenge(version: number, relay = this.relayName()): Promise<Uint8Array> {
    const hello = await this.expectFrom('HELLO');
    this.clientNick = hello.nick;
    this.clientKey = hello.key;
    const nonce = randomBytes(32);
    this.conn.send({ type: 'CHALLENGE', version, nonce, relay });
    return nonce;
  }

  /** The next frame from the client that is not a PING (PINGs are answered, §7.1); must be `name`. */
  async expectFrom<N extends RelayFrame['type']>(...names: N[]): Promise<Extract<RelayFrame, { type: N }>> {
    const name = names.join(' or ');
    for (let i = 0; i < 50; i++) {
      const a = await this.conn.next();
      if (a.kind === 'frame' && a.frame.type === 'PING') {
        this.conn.send({ type: 'PONG', n: a.frame.n });
        continue;
      }
      if (a.kind === 'frame' && (names as string[]).includes(a.frame.type)) return a.frame as Extract<RelayFrame, { type: N }>;
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

  /** ROSTERs (§8.6) the client sent, per peer, in order, as the kit's sessions opened them. */
  readonly rosters = new Map<string, { epoch: number; hash: Uint8Array }[]>();

  /**
   * The next MSG from the client to `peer` that is not a ROSTER, opened in `sess`; ROSTERs before it are
   * recorded in `rosters` (a v2 client sends one once established and after membership changes, §8.6).
   * `inner` is undefined when the MSG does not open; undefined altogether when nothing came.
   */
  async nextMsg(peer: string, sess: SessionBase, ms = this.ctx.waitMs): Promise<{ body: Uint8Array; inner: ReturnType<SessionBase['open']> } | undefined> {
    for (let i = 0; i < 16; i++) {
      const body = await this.sendTo(peer, 'MSG', ms);
      if (body === undefined) return undefined;
      const inner = sess.open(body);
      if (inner?.type !== 'ROSTER') return { body, inner };
      this.record(peer, inner);
    }
    return undefined;
  }

  /**
   * Reads the client's MSGs to `peer` (opened in `sess`) until a ROSTER for `epoch` is recorded in
   * `rosters`: undefined then, else what came instead (a MSG that is not a ROSTER, or nothing). A ROSTER
   * and an ACK are both due at the end of a read batch (§8.6 "Sending" 2, §8.3 step 6) in no fixed order,
   * so a case that needs the ROSTER of a membership event waits for it before it makes an ACK due.
   */
  async untilRoster(peer: string, sess: SessionBase, epoch: number, ms = this.ctx.waitMs): Promise<string | undefined> {
    const deadline = Date.now() + ms;
    for (let i = 0; i < 16; i++) {
      if ((this.rosters.get(peer) ?? []).some((r) => r.epoch === epoch)) return undefined;
      const left = deadline - Date.now();
      const body = left > 0 ? await this.sendTo(peer, 'MSG', left) : undefined;
      if (body === undefined) return `nothing more within ${ms} ms`;
      const inner = sess.open(body);
      if (inner?.type !== 'ROSTER') return inner ? `a MSG with ${inner.type}` : 'a MSG that does not open';
      this.record(peer, inner);
    }
    return 'only ROSTERs for other epochs';
  }

  private record(peer: string, r: { epoch: number; hash: Uint8Array }): void {
    const list = this.rosters.get(peer) ?? [];
    list.push({ epoch: r.epoch, hash: r.hash });
    this.rosters.set(peer, list);
  }

  /** Delivers TEXT `text` from `peer` in `sess` and requires the client to show it (`when` goes into the report). */
  async shows(peer: string, sess: SessionBase, text: string, when = ''): Promise<void> {
    this.deliver(peer, sess.text(text));
    if ((await this.proc.waitLine(shown(peer, text), this.ctx.waitMs)) === undefined) throw new CaseFailure(`"${peer}: ${text}"${when === '' ? '' : ` ${when}`}`, this.proc.tail());
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

export async function open(ctx: ClientCtx, peers: readonly KitPeer[], welcome: { idle_ms?: number; max_frame?: number } = {}): Promise<Session> {
  const s = await connected(ctx);
  await s.admit(peers, welcome);
  return s;
}

/** The client in a room with one kit peer (ctx.peer(0)), their session established (§8.2). */
export async function withPeer(ctx: ClientCtx): Promise<{ bob: KitPeer; s: Session; sess: ResponderSession }> {
  const bob = ctx.peer(0);
  const s = await open(ctx, [bob]);
  return { bob, s, sess: await s.established(bob) };
}

/** Starts the client and accepts its connection, before HELLO. */
export async function connected(ctx: ClientCtx): Promise<Session> {
  if (ctx.port === 0) await ctx.listen();
  const proc = ctx.start();
  let conn: Conn;
  try {
    conn = await ctx.accept(proc);
  } catch (e) {
    if (e instanceof CaseFailure) throw new CaseFailure(e.expected, `${e.arrived}; client output: ${proc.tail()}`);
    throw e;
  }
  return new Session(conn, ctx, proc);
}

export const shown = (nick: string, text: string) => (l: string) => l === `${nick}: ${text}`;
export const marker = (what: string) => `${what}-${randomBytes(4).toString('hex')}`;

/** Requires the client to exit with status `want`; `expected` names it in the failure. */
export async function exitsWith(s: Session, want: number, expected: string): Promise<void> {
  const code = await s.proc.exitStatus(s.ctx.waitMs);
  if (code !== want) throw new CaseFailure(expected, `exit status ${String(code)}; output: ${s.proc.tail()}`);
}

/** Ends input, serves the LEAVE, and requires exit status `want`. */
export async function endsWith(s: Session, want: number): Promise<void> {
  s.proc.child.stdin!.end();
  await s.serveUntilClosed(s.ctx.waitMs);
  await exitsWith(s, want, `exit status ${want} at end of input`);
}

/**
 * The client closes the connection on its own within `reads` arrivals, sending nothing before the close
 * but ERROR `code` (its §9 SHOULD) and what `tolerated` lets through, then exits with status 7.
 */
export async function closesOnProtocolError(
  s: Session,
  code: ErrorName,
  expected: string,
  { reads = 3, tolerated = () => false }: { reads?: number; tolerated?: (frame: RelayFrame) => boolean } = {},
): Promise<void> {
  for (let i = 0; i < reads; i++) {
    const a = await s.conn.next();
    if (a.kind === 'closed') break;
    if (a.kind === 'frame' && a.frame.type === 'ERROR' && a.frame.code === ERROR_CODES[code].code) continue;
    if (a.kind === 'frame' && tolerated(a.frame)) continue;
    throw new CaseFailure(expected, describe(a));
  }
  await exitsWith(s, 7, 'exit status 7 (protocol error)');
}

/**
 * The refusal checks of one rejected MSG: `bad` was never shown, a `* ` event was printed after `from`
 * (index into stdout lines) up to the marker, and if that event names a §9 code it is `code`.
 */
export function refused(s: Session, badText: string | undefined, from: number, markerLine: string, code: ErrorName): void {
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

