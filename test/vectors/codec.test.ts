/**
 * vectors/codec.json (spec/VECTORS.md): the committed file is what the generator writes, every case
 * verifies with the runtime codec, the cases cover what issue 2 asks for, and the verifier notices a
 * change to any single case's expected outcome and names that case.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES } from '../../src/protocol/errors.js';
import { FRAMES, type FrameName } from '../../src/protocol/frames.js';
import { codecSuite } from '../../src/vectors/codec.js';
import { renderSuite } from '../../src/vectors/generate.js';
import type { VectorCase, VectorDocument } from '../../src/vectors/types.js';

const FILE = fileURLToPath(new URL('../../vectors/codec.json', import.meta.url));
const text = readFileSync(FILE, 'utf8');
const doc = JSON.parse(text) as VectorDocument;

t.test('the committed codec.json is exactly what the generator writes, and generation is deterministic', async (t) => {
  const a = await renderSuite(codecSuite);
  const b = await renderSuite(codecSuite);
  t.equal(a, b, 'two generations are byte-identical');
  t.ok(a === text, 'vectors/codec.json is up to date (run npm run vectors)');
});

t.test('every codec vector verifies', async (t) => {
  t.same(await codecSuite.verify(doc), []);
});

t.test('the cases cover every frame type, every decoder error code and the framing outcomes', async (t) => {
  const cases = doc.cases;
  t.ok(cases.length >= 60, `${cases.length} cases`);
  const ids = cases.map((c) => c.id);
  t.equal(new Set(ids).size, ids.length, 'ids are unique');
  for (const c of cases) {
    t.match(c.id, /^[a-z0-9]+_[a-z0-9_]+$/, `${c.id} is <area>_<defect>`);
    t.ok(typeof c.description === 'string' && c.description.length > 0 && typeof c.section === 'string' && c.section.startsWith('§'), `${c.id} has a description and section`);
    t.equal(['frame', 'error', 'incomplete'].filter((k) => c[k] !== undefined).length, 1, `${c.id} has exactly one expected outcome`);
  }
  const validTypes = new Set(cases.filter((c) => c['frame'] !== undefined).map((c) => (c['frame'] as { type: string }).type));
  for (const name of Object.keys(FRAMES) as FrameName[]) t.ok(validTypes.has(name), `a valid ${name} case`);
  const errors = new Set(cases.map((c) => c['error']).filter((e) => e !== undefined));
  for (const e of ['MALFORMED_FRAME', 'FRAME_TOO_LARGE', 'UNKNOWN_FRAME_TYPE', 'INVALID_FIELD']) t.ok(errors.has(e), `some case expects ${e}`);
  for (const e of errors) t.ok(Object.hasOwn(ERROR_CODES, e as string), `${String(e)} is a code of §9`);
  t.ok(cases.some((c) => c['incomplete'] === true), 'some stream waits for more bytes');
  for (const layer of ['relay', 'e2e', 'inner']) t.ok(cases.some((c) => c['layer'] === layer && c['error'] !== undefined), `invalid cases at the ${layer} layer`);
  for (const id of ['frame_zero_length', 'frame_length_one_past_limit', 'frame_length_at_limit', 'frame_trailing_bytes', 'frame_truncated_body',
    'map_duplicate_key', 'depth_at_limit', 'depth_one_past', 'map_entries_at_limit', 'map_entries_one_past', 'shape_proto_key',
    'shape_fields_out_of_order', 'layer_e2e_at_relay', 'utf8_overlong_2byte', 'utf8_surrogate_high', 'utf8_truncated_3byte', 'nonshortest_uint8', 'top_array']) {
    t.ok(ids.includes(id), id);
  }
});

/** A copy of `c` whose expected outcome differs in exactly one place. */
function mutate(c: VectorCase): VectorCase {
  const m = structuredClone(c);
  if (m['frame'] !== undefined) {
    // Change one byte of the expected encoding (the last byte of input).
    const hex = m['input'] as string;
    const last = parseInt(hex.slice(-2), 16);
    m['input'] = hex.slice(0, -2) + ((last ^ 0x01) & 0xff).toString(16).padStart(2, '0');
  } else if (m['error'] !== undefined) {
    m['error'] = m['error'] === 'MALFORMED_FRAME' ? 'INVALID_FIELD' : 'MALFORMED_FRAME';
  } else {
    delete m['incomplete'];
    m['error'] = 'MALFORMED_FRAME';
  }
  return m;
}

t.test('changing the expected outcome of any one case makes verify fail and name exactly that case', async (t) => {
  // Cases verify independently (the whole file passes above), so each mutated case is checked next to
  // one untouched neighbour rather than in a full copy of the file, which keeps this test small.
  for (let i = 0; i < doc.cases.length; i++) {
    const neighbour = doc.cases[(i + 1) % doc.cases.length]!;
    const failures = await codecSuite.verify({ ...doc, cases: [mutate(doc.cases[i]!), neighbour] });
    t.same(failures.map((f) => f.id), [doc.cases[i]!.id], doc.cases[i]!.id);
  }
});

t.test('changing one byte of an expected frame field is noticed too', async (t) => {
  const copy = structuredClone(doc);
  const c = copy.cases.find((x) => x.id === 'relay_auth')!;
  const f = c['frame'] as { sig: string };
  f.sig = (f.sig.startsWith('00') ? '01' : '00') + f.sig.slice(2);
  t.same((await codecSuite.verify(copy)).map((x) => x.id), ['relay_auth']);
});

t.test('a malformed document or case is reported, never thrown', async (t) => {
  t.same((await codecSuite.verify(null)).map((f) => f.id), ['(document)']);
  t.same((await codecSuite.verify({ cases: 'x' })).map((f) => f.id), ['(document)']);
  const bad = [
    { id: 'no_layer', description: 'x', section: '§4', framing: 'body', input: '80', error: 'MALFORMED_FRAME' },
    { id: 'bad_hex', description: 'x', section: '§4', layer: 'relay', framing: 'body', input: 'zz', error: 'MALFORMED_FRAME' },
    { id: 'two_outcomes', description: 'x', section: '§4', layer: 'relay', framing: 'body', input: '80', error: 'MALFORMED_FRAME', incomplete: true },
    { id: 'bad_frame', description: 'x', section: '§4', layer: 'relay', framing: 'body', input: '80', frame: { type: 'NOPE' } },
    { id: 'extra_field', description: 'x', section: '§4', layer: 'relay', framing: 'body', input: 'c0', error: 'MALFORMED_FRAME', note: 1 },
    { id: 'dup', description: 'x', section: '§4', layer: 'relay', framing: 'body', input: 'c0', error: 'MALFORMED_FRAME' },
    { id: 'dup', description: 'x', section: '§4', layer: 'relay', framing: 'body', input: 'c0', error: 'MALFORMED_FRAME' },
    42,
  ];
  const failures = await codecSuite.verify({ cases: bad });
  t.same(failures.map((f) => f.id), ['no_layer', 'bad_hex', 'two_outcomes', 'bad_frame', 'extra_field', 'dup', '(case 7)']);
});

t.test('spec/VECTORS.md lists the area of every codec case id', async (t) => {
  const md = readFileSync(fileURLToPath(new URL('../../spec/VECTORS.md', import.meta.url)), 'utf8');
  const areas = new Set([...md.matchAll(/\b([a-z0-9]+_)(?=[,| ])/g)].map((m) => m[1]!));
  for (const prefix of new Set(doc.cases.map((c) => c.id.slice(0, c.id.indexOf('_') + 1)))) t.ok(areas.has(prefix), `area ${prefix} is documented`);
});
