/**
 * The wire kit's raw WebSocket client (RFC 6455) for the relay's WebSocket transport (spec/PROTOCOL.md
 * §3.1), for the fuzzer and the conformance kit. It writes the upgrade request and every frame byte by
 * byte, so a test can send what no WebSocket library would: unmasked or reserved-bit frames, unknown
 * opcodes, fragmented or oversized control frames, a header declaring more than will ever be sent,
 * hostile upgrade headers. What the relay sends back is parsed strictly: a server frame that breaks
 * RFC 6455 is recorded as a violation.
 *
 * `WsStreamAdapter` carries the §3 byte stream (length-prefixed frames, exactly what a TCP client
 * writes) over WebSocket as §3.1 says: one binary message per frame body, an empty message for n = 0,
 * and for a declared length over the limit either a message of that length (within the largest
 * `max_frame`) or a bare frame header declaring it, which the relay refuses on the header.
 */
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { LIMITS } from '../protocol/limits.js';

/** RFC 6455 §5.2 opcodes. */
export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;

/** The relay's endpoint and subprotocol (§3.1). */
export const WS_PATH = '/v1/ws';
export const WS_SUBPROTOCOL = 'e2ee-chat.v1';
/** RFC 6455 §1.3. */
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** Largest HTTP response head read from the relay. */
const MAX_RESPONSE_HEAD = 16 * 1024;
/** Largest server message accepted: a frame body of MAX_FRAME_BYTES. */
const MAX_SERVER_MESSAGE = LIMITS.MAX_FRAME_BYTES;

export interface WsFrameSpec {
  fin?: boolean;
  /** RSV1-3 as a 3-bit number (RFC 6455 §5.2: must be 0 without an extension). */
  rsv?: number;
  opcode: number;
  payload?: Uint8Array;
  /** Mask the payload (a client must, §5.3); default true. */
  masked?: boolean;
  /** Length written in the header when it differs from the payload (a lie, or a header sent alone). */
  declared?: number;
}

/** One client-to-server WebSocket frame. */
export function wsFrame(f: WsFrameSpec): Buffer {
  const payload = Buffer.from(f.payload ?? new Uint8Array(0));
  const len = f.declared ?? payload.length;
  const masked = f.masked !== false;
  const head: number[] = [((f.fin === false ? 0 : 1) << 7) | (((f.rsv ?? 0) & 7) << 4) | (f.opcode & 0xf)];
  const m = masked ? 0x80 : 0;
  let ext: Buffer;
  if (len < 126) {
    head.push(m | len);
    ext = Buffer.alloc(0);
  } else if (len < 0x10000) {
    head.push(m | 126);
    ext = Buffer.alloc(2);
    ext.writeUInt16BE(len);
  } else {
    head.push(m | 127);
    ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(BigInt(len));
  }
  if (!masked) return Buffer.concat([Buffer.from(head), ext, payload]);
  const key = randomBytes(4);
  const body = Buffer.allocUnsafe(payload.length);
  for (let i = 0; i < payload.length; i++) body[i] = payload[i]! ^ key[i & 3]!;
  return Buffer.concat([Buffer.from(head), ext, key, body]);
}

/** A close frame's payload: the code and an optional reason (RFC 6455 §5.5.1). */
export function closePayload(code: number, reason: Uint8Array = new Uint8Array(0)): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return Buffer.concat([b, reason]);
}

export interface UpgradeOptions {
  host: string;
  port: number;
  path?: string;
  /** Sec-WebSocket-Protocol values offered; undefined: the relay's one. An empty list sends no header. */
  protocols?: readonly string[];
  /** Origin header; undefined: none (a program, not a browser page). */
  origin?: string;
  /** Host header; default HOST:PORT. */
  hostHeader?: string;
  /** Further header lines, written as they are. */
  extraHeaders?: readonly string[];
  /** Replaces the whole request (for malformed request heads). */
  rawRequest?: Buffer;
}

/** The upgrade request and the Sec-WebSocket-Key it carries. */
export function upgradeRequest(o: UpgradeOptions): { request: Buffer; key: string } {
  const key = randomBytes(16).toString('base64');
  if (o.rawRequest !== undefined) return { request: o.rawRequest, key };
  const host = o.hostHeader ?? `${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}`;
  const lines = [
    `GET ${o.path ?? WS_PATH} HTTP/1.1`,
    `Host: ${host}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${key}`,
    'Sec-WebSocket-Version: 13',
  ];
  const protocols = o.protocols ?? [WS_SUBPROTOCOL];
  if (protocols.length > 0) lines.push(`Sec-WebSocket-Protocol: ${protocols.join(', ')}`);
  if (o.origin !== undefined) lines.push(`Origin: ${o.origin}`);
  lines.push(...(o.extraHeaders ?? []));
  return { request: Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), key };
}

/** The Sec-WebSocket-Accept value for a key (RFC 6455 §4.2.2). */
export function acceptFor(key: string): string {
  return createHash('sha1').update(key + WS_GUID).digest('base64');
}

/** What one server frame is. */
export interface ServerFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/**
 * Parses server-to-client frames (unmasked, RFC 6455 §5.1). Returns the frames complete so far; throws
 * a string naming the violation (a masked server frame, reserved bits, a length past the largest
 * message the relay may send).
 */
export class ServerFrameParser {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): ServerFrame[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: ServerFrame[] = [];
    for (;;) {
      if (this.buf.length < 2) return out;
      const b0 = this.buf[0]!;
      const b1 = this.buf[1]!;
      if ((b0 & 0x70) !== 0) throw 'server frame with reserved bits set';
      if ((b1 & 0x80) !== 0) throw 'masked server frame';
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return out;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return out;
        const big = this.buf.readBigUInt64BE(2);
        if (big > BigInt(MAX_SERVER_MESSAGE)) throw `server frame declares ${big} bytes`;
        len = Number(big);
        off = 10;
      }
      if (len > MAX_SERVER_MESSAGE) throw `server frame declares ${len} bytes`;
      if (this.buf.length < off + len) return out;
      out.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload: Buffer.from(this.buf.subarray(off, off + len)) });
      this.buf = this.buf.subarray(off + len);
    }
  }
}

/** The relay's answer to an upgrade: its status and, on 101, the socket carrying frames. */
export interface UpgradeResult {
  status: number;
  headers: Record<string, string>;
  socket: Socket;
  /** Bytes after the response head (the first server frames). */
  rest: Buffer;
}

/**
 * Connects and sends the upgrade request; resolves with the response status once the head arrived, or
 * status 0 when the relay closed without a response. Rejects when nothing arrives within `deadlineMs`.
 */
export function upgrade(o: UpgradeOptions & { localAddress?: string }, deadlineMs = 10_000): Promise<UpgradeResult & { key: string }> {
  const { request, key } = upgradeRequest(o);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: o.host, port: o.port, ...(o.localAddress !== undefined ? { localAddress: o.localAddress } : {}) });
    socket.setNoDelay(true);
    let head = Buffer.alloc(0);
    let done = false;
    const finish = (r: UpgradeResult | Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      if (r instanceof Error) {
        socket.destroy();
        reject(r);
      } else resolve({ ...r, key });
    };
    const timer = setTimeout(() => finish(new Error(`no upgrade response within ${deadlineMs} ms`)), deadlineMs);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_RESPONSE_HEAD) finish(new Error('upgrade response head too long'));
        return;
      }
      const lines = head.subarray(0, end).toString('latin1').split('\r\n');
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(lines[0] + ' ');
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      finish({ status: m ? Number(m[1]) : -1, headers, socket, rest: head.subarray(end + 4) });
    };
    let connected = false;
    const noResponse = (): UpgradeResult => ({ status: 0, headers: {}, socket, rest: Buffer.alloc(0) });
    socket.on('data', onData);
    socket.once('connect', () => {
      connected = true;
      socket.write(request);
    });
    // Refused or reset after connecting without a response: status 0 (the relay closed on the request).
    socket.on('error', (e) => finish(connected ? noResponse() : e));
    socket.once('close', () => finish(noResponse()));
  });
}

export interface WsEvents {
  /** A complete binary message from the relay (one frame body, §3.1). */
  binary(body: Buffer): void;
  /** The connection ended; `code` is the relay's close code when it sent a close frame. */
  closed(code: number | undefined): void;
  /** Something the relay sent that breaks RFC 6455 or §3.1 (a text message, a ping, a bad frame). */
  violation(what: string): void;
}

/**
 * An open WebSocket connection to the relay: reassembles its messages, answers nothing (a test decides
 * what to send), and reports a close frame's code. `write` sends raw frame bytes.
 */
export class WsLink {
  private readonly parser = new ServerFrameParser();
  private fragments: Buffer[] | undefined;
  private ended = false;
  /** The code of the relay's close frame, once one arrived. */
  closeCode: number | undefined;

  constructor(
    readonly socket: Socket,
    rest: Buffer,
    private readonly ev: WsEvents,
  ) {
    socket.on('data', (c: Buffer) => this.onData(c));
    const end = (): void => this.end();
    socket.on('close', end);
    socket.on('end', end);
    socket.on('error', end);
    if (rest.length > 0) queueMicrotask(() => this.onData(rest));
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.socket.destroy();
    this.ev.closed(this.closeCode);
  }

  private onData(chunk: Buffer): void {
    if (this.ended) return;
    let frames: ServerFrame[];
    try {
      frames = this.parser.push(chunk);
    } catch (e) {
      this.ev.violation(String(e));
      this.end();
      return;
    }
    for (const f of frames) {
      if (this.ended) return;
      if (f.opcode === OP.CLOSE) {
        this.closeCode = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005;
        // Echo the close (RFC 6455 §5.5.1) and end: the relay closes the TCP connection after it.
        if (this.socket.writable) this.socket.write(wsFrame({ opcode: OP.CLOSE, payload: f.payload.subarray(0, 2) }));
        this.end();
        return;
      }
      if (f.opcode === OP.PONG) continue;
      if (f.opcode === OP.PING) {
        this.ev.violation('the relay sent a ping (§3.1: it never does)');
        continue;
      }
      if (f.opcode === OP.TEXT) {
        this.ev.violation('the relay sent a text message (§3.1: binary only)');
        continue;
      }
      if (f.opcode === OP.BINARY && this.fragments === undefined) {
        if (f.fin) this.ev.binary(f.payload);
        else this.fragments = [f.payload];
        continue;
      }
      if (f.opcode === OP.CONT && this.fragments !== undefined) {
        this.fragments.push(f.payload);
        if (f.fin) {
          const body = Buffer.concat(this.fragments);
          this.fragments = undefined;
          this.ev.binary(body);
        }
        continue;
      }
      this.ev.violation(`unexpected server frame opcode ${f.opcode}${this.fragments ? ' inside a fragmented message' : ''}`);
    }
  }

  get closed(): boolean {
    return this.ended;
  }

  write(bytes: Uint8Array): void {
    if (!this.ended && this.socket.writable) this.socket.write(bytes);
  }

  /** Ends the TCP connection without a close frame. */
  destroy(): void {
    this.ended = true;
    this.socket.destroy();
  }
}

/** How the adapter cuts messages into frames: one frame, or fragments with pings between them. */
export interface Fragmenting {
  /** Offsets into a body where a fragment ends (sorted, inside the body). */
  cuts?: readonly number[];
  /** Send a ping control frame before fragment i (RFC 6455 §5.4: allowed between fragments). */
  pingsBefore?: ReadonlySet<number>;
}

/**
 * Carries a §3 byte stream over WebSocket as §3.1 does. `limit` is the largest body the relay reads now
 * (MAX_PRELOGIN_FRAME_BYTES before WELCOME, then the announced max_frame); a declared length over it is
 * sent as a message of that length when the relay's WebSocket layer would read one that large (it then
 * refuses the frame as a TCP relay refuses the prefix), and as a bare header otherwise (refused on the
 * header, close code 1009). Bytes after a refused length are dropped: the relay closes there.
 */
export class WsStreamAdapter {
  private pending: Buffer = Buffer.alloc(0);
  /** Set after a refused declared length: nothing more is sent. */
  private stopped = false;
  /** Messages sent so far. */
  messages = 0;
  /** Declared lengths sent as a bare header (the relay must refuse them with close code 1009). */
  readonly bareHeaders: number[] = [];

  constructor(
    private readonly out: (bytes: Buffer) => void,
    /** Current read limit of the relay (see the class comment). */
    public limit: number,
    /** Largest message the relay's WebSocket layer reads (its announced max_frame; MAX_FRAME_BYTES at most). */
    public wsMax: number = LIMITS.MAX_FRAME_BYTES,
    private readonly frag: (index: number, body: Buffer) => Fragmenting = () => ({}),
  ) {}

  /** Feeds stream bytes; sends every message that is complete. */
  write(bytes: Uint8Array): void {
    if (this.stopped) return;
    this.pending = this.pending.length === 0 ? Buffer.from(bytes) : Buffer.concat([this.pending, bytes]);
    const P = LIMITS.LENGTH_PREFIX_BYTES;
    while (!this.stopped && this.pending.length >= P) {
      const n = this.pending.readUInt32BE(0);
      if (n > this.limit) {
        this.stopped = true;
        if (n > this.wsMax) {
          this.bareHeaders.push(n);
          this.out(wsFrame({ opcode: OP.BINARY, declared: n }));
        } else {
          const body = Buffer.alloc(n);
          this.pending.copy(body, 0, P, Math.min(this.pending.length, P + n));
          this.message(body);
        }
        this.pending = Buffer.alloc(0);
        return;
      }
      if (this.pending.length < P + n) return;
      this.message(this.pending.subarray(P, P + n));
      this.pending = this.pending.subarray(P + n);
    }
  }

  /** The stream ends: an unfinished frame goes out as a fragment without FIN (a truncated message). */
  end(): void {
    const P = LIMITS.LENGTH_PREFIX_BYTES;
    if (this.stopped || this.pending.length <= P) return;
    this.out(wsFrame({ fin: false, opcode: OP.BINARY, payload: this.pending.subarray(P) }));
    this.pending = Buffer.alloc(0);
  }

  /** Bytes of an unfinished frame held back (none once the stream is at a frame boundary). */
  get held(): number {
    return this.pending.length;
  }

  private message(body: Buffer): void {
    const f = this.frag(this.messages++, body);
    const cuts = (f.cuts ?? []).filter((c) => c > 0 && c < body.length);
    const parts: Buffer[] = [];
    let prev = 0;
    for (const c of [...new Set(cuts)].sort((a, b) => a - b)) {
      parts.push(body.subarray(prev, c));
      prev = c;
    }
    parts.push(body.subarray(prev));
    const frames: Buffer[] = [];
    parts.forEach((p, i) => {
      if (f.pingsBefore?.has(i) === true) frames.push(wsFrame({ opcode: OP.PING, payload: Buffer.from('k') }));
      frames.push(wsFrame({ fin: i === parts.length - 1, opcode: i === 0 ? OP.BINARY : OP.CONT, payload: p }));
    });
    this.out(Buffer.concat(frames));
  }
}
