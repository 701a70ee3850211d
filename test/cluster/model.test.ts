/**
 * The spin model of the cluster membership protocol (model/cluster.pml): its constants and step names
 * equal the code's tables, a small configuration of it holds, and each seeded bug is found, so the
 * model cannot pass vacuously. The full configurations run in `npm run model`.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { LIMITS } from '../../src/protocol/limits.js';
import { CLUSTER_SCRIPTS, CLUSTER_TIMINGS } from '../../src/cluster/tables.js';
import { checkModel, MODEL_FILE, MODEL_RUNS, parsePan, SEEDED_BUG_DEFINES, SEEDED_BUGS } from '../../src/cluster/model.js';

const MODEL = readFileSync(MODEL_FILE, 'utf8');

function define(name: string): number {
  const m = new RegExp(`^#define ${name} (\\d+)`, 'm').exec(MODEL);
  if (m === null) throw new Error(`model has no #define ${name}`);
  return Number(m[1]);
}

t.test('the model uses the code\'s room limit and presence timing', async (t) => {
  t.equal(define('ROOM_LIMIT'), LIMITS.DEFAULT_ROOM_SIZE);
  t.equal(define('TTL_BEATS'), CLUSTER_TIMINGS.PRESENCE_TTL_MS / CLUSTER_TIMINGS.HEARTBEAT_MS);
  t.ok(Number.isInteger(CLUSTER_TIMINGS.PRESENCE_TTL_MS / CLUSTER_TIMINGS.HEARTBEAT_MS));
});

t.test('every Redis script is a step of the model under the same name, and no step is unnamed', async (t) => {
  const inlines = [...MODEL.matchAll(/^inline ([a-z_]+)\(/gm)].map((m) => m[1]!);
  const scripts = Object.keys(CLUSTER_SCRIPTS).map((s) => s.replaceAll('-', '_'));
  for (const s of scripts) t.ok(inlines.includes(s), `model has inline ${s}`);
  // Helpers of the scripts, the relays' own delivery steps (spec/CLUSTER.md §3: the SEND decided against
  // the sender's view, its PUBLISH, the addressee's check) and the client's view are the only other inlines.
  t.same(inlines.filter((i) => !scripts.includes(i)).sort(), ['announce_join', 'others_mask', 'publish_deliver', 'receive', 'remove_member', 'reply_tokens', 'route', 'send_from_view']);
});

t.test('pan reports are read back exactly', async (t) => {
  const ok = parsePan('State-vector 316 byte, depth reached 107, errors: 0\n   139669 states, stored (267830 visited)\n');
  t.same(ok, { states: 139669, errors: 0, violation: undefined, complete: true });
  const bad = parsePan('pan:1: assertion violated (members<=2) (at depth 70)\nState-vector 372 byte, depth reached 111, errors: 1\n   112615 states, stored\n');
  t.same(bad, { states: 112615, errors: 1, violation: 'assertion violated (members<=2)', complete: true });
  const cut = parsePan('pan: reached -DMEMLIM bound\nWarning: Search not completed\nerrors: 0\n 1e+06 states, stored\n');
  t.equal(cut.complete, false);
  t.equal(cut.states, 1e6);
});

t.test('a small configuration holds: 2 clients, 2 relays, a crash, no sends', async (t) => {
  const res = await checkModel({ name: 'small', defines: ['NC=2', 'SENDS=0', 'ROUNDS=1'], mode: 'safety' }, { memLimitMb: 512 });
  t.equal(res.errors, 0, res.violation ?? '');
  t.ok(res.complete);
  t.ok(res.states > 1000, `${res.states} states`);
});

t.test('the liveness claims hold on the small configuration', async (t) => {
  for (const r of MODEL_RUNS.filter((x) => x.mode === 'liveness')) {
    const res = await checkModel(r, { memLimitMb: 512 });
    t.equal(res.errors, 0, `${r.claim}: ${res.violation ?? ''}`);
    t.ok(res.complete && res.states > 1000, `${r.claim}: ${res.states} states`);
  }
});

for (const [bug, violation] of Object.entries(SEEDED_BUGS)) {
  t.test(`seeded bug ${bug} is found`, async (t) => {
    const defines = SEEDED_BUG_DEFINES[bug as keyof typeof SEEDED_BUGS];
    const res = await checkModel({ name: bug, defines: [...defines, bug], mode: 'safety' }, { memLimitMb: 512 });
    t.equal(res.errors, 1);
    t.equal(res.violation, violation);
  });
}
