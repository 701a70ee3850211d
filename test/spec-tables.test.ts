/**
 * The spec's tables equal the tables in src/ (STYLE.md rule 2), row by row and cell by cell: the frame
 * catalogue (§5), every frame's field table (§6), the error codes (§9), the limits (§10) and the three
 * transition tables (§7.1, §7.2, §7.4). The spec is parsed as Markdown tables, independently of how it was
 * written; any extra, missing or different row or cell fails. Also: every (state x input) pair of the
 * machines is either in its table or rejected, and the hex examples of §6 decode to their frame type.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES, type ErrorName } from '../src/protocol/errors.js';
import { LIMITS } from '../src/protocol/limits.js';
import { FRAMES, type FieldSpec, type FrameName } from '../src/protocol/frames.js';
import { decodeFrame, encodeFrame, encodeWire, frame } from '../src/codec/frame.js';
import { minimumMaxFrame } from '../src/client/relay-connection.js';
import { SERVER_INPUTS, SERVER_STATES, SERVER_TRANSITIONS, serverTransition } from '../src/protocol/relay-machine.js';
import { SESSION_INPUTS, SESSION_STATES, SESSION_TRANSITIONS, sessionTransition } from '../src/protocol/session-machine.js';
import {
  ANY_BUT_CLOSED,
  CLIENT_INPUTS,
  CLIENT_STATES,
  CLIENT_TRANSITIONS,
  clientTransition,
  errorInput,
  inputCell,
  rowStates,
} from '../src/protocol/client-machine.js';

const SPEC = readFileSync(fileURLToPath(new URL('../spec/PROTOCOL.md', import.meta.url)), 'utf8');

type Table = { header: string[]; rows: string[][] };

function cells(line: string): string[] {
  const inner = line.trim().replace(/^\|/, '').replace(/\|$/, '');
  return inner.split('|').map((c) => c.trim());
}

/** Every Markdown table in `text`, in order. */
function tables(text: string): Table[] {
  const lines = text.split('\n');
  const out: Table[] = [];
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!lines[i]!.trim().startsWith('|') || !/^\s*\|(\s*:?-+:?\s*\|)+\s*$/.test(lines[i + 1]!)) continue;
    const header = cells(lines[i]!);
    const rows: string[][] = [];
    let j = i + 2;
    for (; j < lines.length && lines[j]!.trim().startsWith('|'); j++) rows.push(cells(lines[j]!));
    out.push({ header, rows });
    i = j - 1;
  }
  return out;
}

/** The text of the section whose heading starts with `heading` (up to the next heading of the same or higher level). */
function section(heading: string): string {
  const lines = SPEC.split('\n');
  const start = lines.findIndex((l) => /^#{2,4} /.test(l) && l.replace(/^#+ /, '').startsWith(heading));
  if (start < 0) throw new Error(`spec has no section ${heading}`);
  const level = lines[start]!.match(/^#+/)![0].length;
  let end = start + 1;
  while (end < lines.length && !(lines[end]!.match(/^#+ /) && lines[end]!.match(/^#+/)![0].length <= level)) end++;
  return lines.slice(start + 1, end).join('\n');
}

/** The one table of a section whose header is exactly `header`. */
function tableWith(text: string, header: string[]): Table {
  const found = tables(text).filter((tb) => tb.header.join('|') === header.join('|'));
  if (found.length !== 1) throw new Error(`expected one table with header ${header.join(' | ')}, found ${found.length}`);
  return found[0]!;
}

const hex2 = (n: number) => `0x${n.toString(16).padStart(2, '0')}`;

t.test('§5 frame catalogue equals FRAMES, row for row', async (t) => {
  const tb = tableWith(section('5. '), ['code', 'frame', 'layer', 'direction']);
  const expected = (Object.keys(FRAMES) as FrameName[]).map((n) => [hex2(FRAMES[n].code), n, FRAMES[n].layer, FRAMES[n].dir]);
  t.same(tb.rows, expected);
});

/** The bounds cell of §6 for one field, as the spec writes it. */
function boundsCell(f: FieldSpec): string {
  if (f.kind === 'uint') return f.min === f.max ? String(f.min) : `${f.min}..${f.max}`;
  if (f.kind === 'members') return `${f.min}..${f.max} entries`;
  const range = f.min === f.max ? `${f.min} bytes` : `${f.min}..${f.max} bytes`;
  return f.kind === 'str' && f.alphabet !== undefined ? `${range}, ${f.alphabet} alphabet` : range;
}

t.test('§6 has one field table per frame type, equal to the catalogue', async (t) => {
  const text = section('6. ');
  const headings = [...text.matchAll(/^#### (\S+) \((0x[0-9a-f]{2})\)$/gm)].map((m) => [m[1], m[2]]);
  t.same(headings, (Object.keys(FRAMES) as FrameName[]).map((n) => [n, hex2(FRAMES[n].code)]), 'one heading per frame, in catalogue order');
  for (const name of Object.keys(FRAMES) as FrameName[]) {
    const sub = section(`${name} (`);
    const tb = tableWith(sub, ['field', 'type', 'bounds']);
    const spec = FRAMES[name];
    const expected = [['t', 'uint', String(spec.code)], ...(spec.fields as readonly FieldSpec[]).map((f) => [f.name, f.kind, boundsCell(f)])];
    t.same(tb.rows, expected, `${name} field table`);
  }
});

t.test('§9 error codes equal ERROR_CODES, row for row', async (t) => {
  const tb = tableWith(section('9. '), ['code', 'name', 'scope', 'closes', 'meaning']);
  const expected = (Object.keys(ERROR_CODES) as ErrorName[]).map((n) => [
    String(ERROR_CODES[n].code),
    n,
    ERROR_CODES[n].scope,
    ERROR_CODES[n].close ? 'yes' : 'no',
  ]);
  t.same(tb.rows.map((r) => r.slice(0, 4)), expected);
  t.ok(tb.rows.every((r) => r.length === 5 && r[4]!.length > 0), 'every code says what it means');
  // §9: wire codes are the ones below 32, end-to-end codes 32 and up; no end-to-end code closes.
  for (const n of Object.keys(ERROR_CODES) as ErrorName[]) {
    const e = ERROR_CODES[n];
    t.equal(e.scope, e.code < 32 ? 'wire' : 'end-to-end', `${n} scope follows the 1-31 / 32+ split`);
    if (e.scope === 'end-to-end') t.notOk(e.close, `${n} is end-to-end and does not close`);
  }
});

t.test('§10 limits equal LIMITS, row for row', async (t) => {
  const tb = tableWith(section('10. '), ['limit', 'value', 'meaning']);
  t.same(tb.rows.map((r) => [r[0], r[1]]), Object.entries(LIMITS).map(([k, v]) => [k, String(v)]));
  t.ok(tb.rows.every((r) => r.length === 3 && r[2]!.length > 0), 'every limit says what it bounds');
});


t.test('§6 WELCOME: MIN_MAX_FRAME_BYTES is the largest SEND a session needs, and the client refuses exactly below it', async (t) => {
  // The spec's own definition, encoded: SEND to a 32-byte nickname carrying an HS_RESP, or a MSG of the
  // smallest bucket (PAD_MIN_BYTES plus the 16-byte GCM tag) with seq MAX_UINT.
  const to = 'n'.repeat(LIMITS.NICK_MAX_BYTES);
  const r = (n: number) => new Uint8Array(n);
  const hsResp = encodeFrame(frame('HS_RESP', { eph: r(LIMITS.X25519_BYTES), ct: r(LIMITS.RSA_BYTES), sig: r(LIMITS.RSA_BYTES), mac: r(LIMITS.MAC_BYTES) }));
  const msg = encodeFrame(frame('MSG', { seq: LIMITS.MAX_UINT, ct: r(LIMITS.PAD_MIN_BYTES + 16) }));
  const largest = Math.max(...[hsResp, msg].map((body) => encodeFrame(frame('SEND', { to, body })).length));
  t.equal(LIMITS.MIN_MAX_FRAME_BYTES, largest);
  t.equal(minimumMaxFrame(), LIMITS.MIN_MAX_FRAME_BYTES);
  t.match(SPEC, new RegExp(`below MIN_MAX_FRAME_BYTES \\(${LIMITS.MIN_MAX_FRAME_BYTES}\\)`));
});
const listCell = (xs: readonly string[]) => (xs.length === 0 ? '-' : xs.join(', '));

t.test('§7.1 relay transition table equals SERVER_TRANSITIONS, row for row', async (t) => {
  const tb = tableWith(section('7.1 '), ['state', 'input', 'next', 'action', 'refusals']);
  t.same(tb.rows, SERVER_TRANSITIONS.map((r) => [r.state, r.on, r.next, r.action, listCell(r.errors)]));
});

t.test('§7.2 session transition table equals SESSION_TRANSITIONS, row for row', async (t) => {
  const tb = tableWith(section('7.2 '), ['state', 'input', 'next', 'action', 'refusals']);
  t.same(tb.rows, SESSION_TRANSITIONS.map((r) => [r.state, r.on, r.next, r.action, listCell(r.errors)]));
});

t.test('§7.4 client transition table equals CLIENT_TRANSITIONS, row for row', async (t) => {
  const tb = tableWith(section('7.4 '), ['state', 'input', 'next', 'action', 'refusals']);
  const states = (r: (typeof CLIENT_TRANSITIONS)[number]) => (r.states === ANY_BUT_CLOSED ? ANY_BUT_CLOSED : r.states.join(', '));
  t.same(tb.rows, CLIENT_TRANSITIONS.map((r) => [states(r), r.on.map(inputCell).join(', '), r.next, r.action, listCell(r.errors)]));
  // The prose names the same states, in the same order.
  const m = section('7.4 ').match(/States: ([^.]*)\./);
  t.ok(m, '§7.4 lists its states');
  t.same(m![1]!.split(/,\s*/).map((s) => s.replace(/\s*\(.*$/s, '').trim()), [...CLIENT_STATES]);
});

t.test('every (state x input) pair of the client machine is in the table once or rejected', async (t) => {
  let pairs = 0;
  for (const s of CLIENT_STATES) {
    for (const i of CLIENT_INPUTS) {
      const rows = CLIENT_TRANSITIONS.filter((r) => rowStates(r).includes(s) && r.on.includes(i));
      t.ok(rows.length <= 1, `${s} x ${i} has at most one row`);
      const tr = clientTransition(s, i);
      if (rows.length === 1) {
        t.equal(tr?.row, rows[0], `${s} x ${i} is the table row`);
        pairs++;
      } else t.equal(tr, undefined, `${s} x ${i} is not in the table`);
    }
  }
  t.equal(pairs, CLIENT_TRANSITIONS.reduce((n, r) => n + rowStates(r).length * r.on.length, 0), 'every pair a row names is reachable');
  t.notOk(CLIENT_TRANSITIONS.some((r) => rowStates(r).includes('CLOSED')), 'no transition leaves CLOSED');
  // Frames the client sends (c2s) are never input it accepts (§7.4: UNEXPECTED_FRAME).
  for (const r of CLIENT_TRANSITIONS) for (const i of r.on) if (i in FRAMES) t.not(FRAMES[i as FrameName].dir, 'c2s', `${i} is not client-bound`);
  // Every relay frame except ERROR is an input by name; ERROR is three inputs.
  const relayFrames = (Object.keys(FRAMES) as FrameName[]).filter((n) => FRAMES[n].layer === 'relay' && n !== 'ERROR');
  t.same(CLIENT_INPUTS.filter((i) => i in FRAMES), relayFrames);
});

t.test('§7.4 ERROR inputs: join refusals answer a JOIN only in AWAIT_JOINED; unknown and end-to-end codes close', async (t) => {
  for (const s of CLIENT_STATES) {
    t.equal(errorInput(s, ERROR_CODES.ROOM_FULL.code), s === 'AWAIT_JOINED' ? 'ERROR:join-refused' : 'ERROR:non-closing', `ROOM_FULL in ${s}`);
    t.equal(errorInput(s, ERROR_CODES.NICK_IN_ROOM.code), s === 'AWAIT_JOINED' ? 'ERROR:join-refused' : 'ERROR:non-closing', `NICK_IN_ROOM in ${s}`);
    t.equal(errorInput(s, ERROR_CODES.NO_SUCH_PEER.code), 'ERROR:non-closing', `NO_SUCH_PEER in ${s}`);
    t.equal(errorInput(s, ERROR_CODES.TIMEOUT.code), 'ERROR:closing', `TIMEOUT in ${s}`);
    t.equal(errorInput(s, ERROR_CODES.DECRYPT_FAILED.code), 'ERROR:closing', `an end-to-end code in ${s}`);
    t.equal(errorInput(s, 200), 'ERROR:closing', `an unknown code in ${s}`);
  }
});

t.test('every (state x input) pair of the relay machine is in the table once or rejected', async (t) => {
  let inTable = 0;
  let rejected = 0;
  for (const s of SERVER_STATES) {
    for (const i of SERVER_INPUTS) {
      const rows = SERVER_TRANSITIONS.filter((r) => r.state === s && r.on === i);
      t.ok(rows.length <= 1, `${s} x ${i} has at most one row`);
      const tr = serverTransition(s, i);
      if (rows.length === 1) {
        t.equal(tr, rows[0], `${s} x ${i} is the table row`);
        inTable++;
      } else {
        t.equal(tr, undefined, `${s} x ${i} is rejected`);
        rejected++;
      }
    }
  }
  t.equal(inTable, SERVER_TRANSITIONS.length, 'every row is reachable as a (state, input) pair');
  t.equal(inTable + rejected, SERVER_STATES.length * SERVER_INPUTS.length);
  // Frames a relay sends (s2c) are never valid input to it; CLOSED accepts nothing.
  for (const r of SERVER_TRANSITIONS) {
    t.not(r.state, 'CLOSED', 'no transition leaves CLOSED');
    if ((SERVER_INPUTS as readonly string[]).includes(r.on) && r.on in FRAMES) t.not(FRAMES[r.on as FrameName].dir, 's2c', `${r.on} is not relay-bound`);
  }
  // Every input is a relay frame name or an event, and every relay frame is an input.
  const relayFrames = (Object.keys(FRAMES) as FrameName[]).filter((n) => FRAMES[n].layer === 'relay');
  t.same(SERVER_INPUTS.filter((i) => i in FRAMES), relayFrames);
});

t.test('every (state x input) pair of the session machine is in the table once or rejected', async (t) => {
  let inTable = 0;
  for (const s of SESSION_STATES) {
    for (const i of SESSION_INPUTS) {
      const rows = SESSION_TRANSITIONS.filter((r) => r.state === s && r.on === i);
      t.ok(rows.length <= 1, `${s} x ${i} has at most one row`);
      const tr = sessionTransition(s, i);
      if (rows.length === 1) {
        t.equal(tr, rows[0], `${s} x ${i} is the table row`);
        inTable++;
      } else t.equal(tr, undefined, `${s} x ${i} is rejected`);
    }
  }
  t.equal(inTable, SESSION_TRANSITIONS.length);
  t.notOk(SESSION_TRANSITIONS.some((r) => r.state === 'CLOSED'), 'no transition leaves CLOSED');
  const e2eFrames = (Object.keys(FRAMES) as FrameName[]).filter((n) => FRAMES[n].layer === 'e2e');
  t.same(SESSION_INPUTS.filter((i) => i in FRAMES), e2eFrames, 'every e2e frame is an input');
});

t.test('the tables checked here are parsed, not assumed: a changed cell is noticed', async (t) => {
  // Guards the parser itself: corrupting one cell of a copy of the spec must change the parsed rows.
  const corrupt = (header: string[], from: string, to: string) => {
    const original = tableWith(SPEC, header);
    t.ok(SPEC.includes(from), `the row to corrupt is present: ${from}`);
    const corrupted = tables(SPEC.replace(from, to)).find((tb) => tb.header.join('|') === header.join('|'));
    t.ok(corrupted);
    t.notSame(corrupted!.rows, original.rows, `changing ${from} to ${to} is seen`);
  };
  corrupt(['code', 'name', 'scope', 'closes', 'meaning'], '| 10 | ROOM_FULL | wire | no |', '| 10 | ROOM_FULL | wire | yes |');
  corrupt(['code', 'name', 'scope', 'closes', 'meaning'], '| 32 | OAEP_FAILED | end-to-end |', '| 32 | OAEP_FAILED | wire |');
});

/**
 * The hex of an example block: each line is hex (bytes may be grouped by single spaces), then optionally
 * two or more spaces and a comment.
 */
function exampleBytes(block: string): Buffer {
  const hex = block
    .split('\n')
    .map((l) => l.split(/\s{2,}/)[0]!.replace(/\s+/g, ''))
    .join('');
  if (!/^([0-9a-f]{2})*$/.test(hex)) throw new Error(`example is not hex: ${hex.slice(0, 40)}`);
  return Buffer.from(hex, 'hex');
}

t.test('§6 hex examples decode to a frame of the type they illustrate, and re-encode to the same bytes', async (t) => {
  let count = 0;
  for (const name of Object.keys(FRAMES) as FrameName[]) {
    const sub = section(`${name} (`);
    const m = sub.match(/^Example[^\n]*\n+```\n([\s\S]*?)```/m);
    t.ok(m, `${name} has a hex example`);
    if (!m) continue;
    const bytes = exampleBytes(m[1]!);
    const layer = FRAMES[name].layer;
    // Relay examples are wire frames (length prefix + body); e2e and inner examples are bodies.
    if (layer === 'relay') {
      t.equal(bytes.readUInt32BE(0), bytes.length - 4, `${name}: length prefix counts the body`);
      const f = decodeFrame(bytes.subarray(4), layer);
      t.equal(f.type, name, `${name} example decodes to ${name}`);
      t.same(encodeWire(f), bytes, `${name} example is canonical`);
    } else {
      const f = decodeFrame(bytes, layer);
      t.equal(f.type, name, `${name} example decodes to ${name}`);
      t.same(Buffer.from(encodeFrame(f)), bytes, `${name} example is canonical`);
    }
    count++;
  }
  t.equal(count, Object.keys(FRAMES).length, 'one example per frame type');
});
