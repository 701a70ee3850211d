/**
 * The conformance kit against the reference relay (every case passes) and against relays that each break
 * one rule (each fails exactly the cases that rule governs). Real TCP on 127.0.0.1, port 0; the whole kit
 * also over the relay's WebSocket endpoint (§3.1), where a wrong close code fails it.
 */
import t from 'tap';
import { startServer } from '../../src/server/index.js';
import { runServerKit } from '../../src/conformance/server-kit.js';
import { SERVER_CASES } from '../../src/conformance/server-cases.js';
import type { CaseResult } from '../../src/conformance/runner.js';
import { startBroken, type BrokenKind } from './fixtures/broken.js';
import { startWrongCloseCode } from './fixtures/broken-ws.js';
import { startWeb } from '../../src/server/web.js';
import { endpoint, failures, LONG, runSplit, SHORT, WAIT_MS, type Target, type Timeouts } from './fixtures/split.js';

// Each run is split over two relays (fixtures/split.ts): the timing cases against short timeouts, the
// rest against timeouts no case reaches. The subtests are independent (each its own relays, fresh
// nicknames and rooms) and run concurrently.
t.jobs = 4;

async function reference(maxRoomSize = 2, maxFrameBytes?: number, timeouts: Timeouts = SHORT) {
  return startServer({
    port: 0,
    registry: ':memory:',
    maxRoomSize,
    handshakeTimeoutMs: timeouts.handshakeMs,
    idleTimeoutMs: timeouts.idleMs,
    ...(maxFrameBytes !== undefined ? { maxFrameBytes } : {}),
  });
}

/** A target of one relay, closed with it. */
function relayTarget(maxRoomSize = 2, maxFrameBytes?: number) {
  return async (timeouts: Timeouts): Promise<Target> => {
    const srv = await reference(maxRoomSize, maxFrameBytes, timeouts);
    return srv;
  };
}

function ids(results: readonly CaseResult[], status: CaseResult['status']): string[] {
  return results.filter((r) => r.status === status).map((r) => r.id).sort();
}

t.test('case ids are unique and every case names a spec section', async (t) => {
  t.equal(new Set(SERVER_CASES.map((c) => c.id)).size, SERVER_CASES.length);
  for (const c of SERVER_CASES) t.match(c.section, /§\d/, c.id);
  // Every out-of-table (state, relay frame) pair of §7.1 has its case: 4 states x 18 frames - 13 in the table.
  t.equal(SERVER_CASES.filter((c) => /^transition_.*(?<!_error_closes)$/.test(c.id)).length, 4 * 18 - 13);
});

t.test('the reference relay passes every case (room_size 2)', async (t) => {
  const results = await runSplit(t, relayTarget());
  t.equal(results.length, SERVER_CASES.length);
  t.same(ids(results, 'fail'), [], failures(results));
  t.same(ids(results, 'error'), [], failures(results));
  // Only the three-member case cannot run with room_size 2.
  t.same(ids(results, 'skip'), ['relay_to_no_one_else']);
});

t.test('the reference relay passes the §7.1 and §6 cases with room_size 3 and a 1024-byte max_frame', async (t) => {
  let srv: { host: string; port: number } | undefined;
  const results = await runSplit(t, async (timeouts) => {
    const s = await reference(3, 1024, timeouts);
    if (timeouts === LONG) srv = s;
    return s;
  }, { only: '7.1' });
  t.ok(results.length > 80);
  t.same(ids(results, 'fail'), [], failures(results));
  t.same(ids(results, 'error'), [], failures(results));
  t.same(ids(results, 'skip'), []);
  // Neither set holds a timing case: both run against the relay with the long timeouts.
  const target = { host: srv!.host, port: srv!.port, handshakeMs: LONG.handshakeMs, waitMs: WAIT_MS };
  const frames = await runServerKit({ ...target, only: 'framing_' });
  t.same(ids(frames, 'fail'), [], failures(frames));
  // A 49152-byte body cannot fit a 1024-byte frame: those two cases are skipped, not failed.
  const sends = await runServerKit({ ...target, only: 'relay_body_' });
  t.same(ids(sends, 'skip'), ['relay_body_at_max', 'relay_body_too_long']);
});

t.test('over WebSocket (§3.1) the reference relay passes every case too', async (t) => {
  const root = t.testdir({ 'index.html': '<!doctype html>' });
  const results = await runSplit(
    t,
    async (timeouts) => {
      const srv = await reference(2, undefined, timeouts);
      const web = await startWeb(srv, { host: '127.0.0.1', port: 0, root });
      return endpoint(web, srv);
    },
    { transport: 'ws' },
  );
  t.equal(results.length, SERVER_CASES.length);
  t.same(ids(results, 'fail'), [], failures(results));
  t.same(ids(results, 'error'), [], failures(results));
  t.same(ids(results, 'skip'), ['relay_to_no_one_else']);
});

t.test('over WebSocket the kit checks the close code: an endpoint that always closes with 1000 fails the closing-ERROR cases', async (t) => {
  const srv = await reference(2, undefined, LONG);
  const fx = await startWrongCloseCode(srv);
  t.teardown(async () => {
    await fx.close();
    await srv.close();
  });
  const results = await runServerKit({ host: fx.host, port: fx.port, transport: 'ws', handshakeMs: LONG.handshakeMs, waitMs: WAIT_MS, only: 'framing_' });
  const failed = results.filter((r) => r.status === 'fail');
  // framing_zero_length and framing_first_error_final end in ERROR MALFORMED_FRAME; the coalesced PINGs end in nothing.
  t.ok(ids(results, 'fail').includes('framing_zero_length') && ids(results, 'fail').includes('framing_first_error_final'), failures(results));
  t.ok(ids(results, 'pass').includes('framing_coalesced_frames') && ids(results, 'pass').includes('framing_split_segments'), failures(results));
  for (const r of failed) t.match(r.arrived, /close code 1000/, `${r.id}: ${r.expected ?? ''}`);
  t.same(ids(results, 'error'), []);
});

const EXPECTED: Record<Exclude<BrokenKind, 'silent' | 'echo' | 'frozen-epoch' | 'epoch-kept' | 'lax-auth'>, string[]> = {
  'no-room-limit': ['epoch_refused_join_unchanged', 'join_race_exactly_k', 'join_room_full', 'join_room_full_nobody_notified'],
  'no-stamp': ['relay_forged_from_field'],
  'no-peer-left': [
    'disconnect_nick_can_rejoin',
    'disconnect_peer_left',
    'disconnect_truncated_frame',
    'epoch_join_leave_numbering',
    'epoch_refused_join_unchanged',
    'join_place_freed_by_disconnect',
    'leave_left_and_peer_left',
    'relay_nothing_after_leave',
    'timeout_idle_in_room_peer_left',
  ],
};

for (const kind of Object.keys(EXPECTED) as Array<keyof typeof EXPECTED>) {
  t.test(`a relay that breaks one rule (${kind}) fails exactly the cases of that rule`, async (t) => {
    const results = await runSplit(t, async (timeouts) => {
      const srv = await reference(kind === 'no-room-limit' ? 8 : 2, undefined, timeouts);
      return endpoint(await startBroken(kind, srv), srv);
    });
    t.equal(results.length, SERVER_CASES.length);
    t.same(ids(results, 'fail'), EXPECTED[kind], failures(results));
    t.same(ids(results, 'error'), []);
  });
}

for (const kind of ['silent', 'echo'] as const) {
  t.test(`a relay that ${kind === 'silent' ? 'never answers' : 'echoes what it receives'} fails every case`, async (t) => {
    const fx = await startBroken(kind);
    t.teardown(() => fx.close());
    const results = await runServerKit({ host: fx.host, port: fx.port, handshakeMs: SHORT.handshakeMs, waitMs: 400, concurrency: 24 });
    t.equal(results.length, SERVER_CASES.length);
    t.same(
      results.filter((r) => r.status !== 'fail').map((r) => `${r.id}: ${r.status}`),
      [],
    );
  });
}
