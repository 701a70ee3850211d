/**
 * The client kit against the reference client (every case passes), against a lax client that breaks
 * eight rules on purpose (it fails exactly their cases), and against a command that never connects
 * (every case fails, so no case passes vacuously). Real child processes and real TCP on
 * 127.0.0.1; the reference client runs from dist/ (build first: `npx tsc`).
 */
import t from 'tap';
import { CLIENT_CASES, runClientKit } from '../../src/conformance/client-kit.js';
import type { CaseResult } from '../../src/conformance/runner.js';

// The subtests are independent (each run has its own scripted relays, ports, homes and client processes).
t.jobs = 3;

const CLIENT = `"${process.execPath}" dist/src/cli/main.js client --host {host} --port {port} --nick {nick} --room {room} --home {home} --no-passphrase --wait 1`;

function failures(results: readonly CaseResult[]): string {
  return results
    .filter((r) => r.status !== 'pass')
    .map((r) => `${r.id} (${r.status}): expected ${r.expected ?? ''}, arrived ${r.arrived ?? ''}`)
    .join('\n');
}

t.test('client case ids are unique and name a spec section', async (t) => {
  t.equal(new Set(CLIENT_CASES.map((c) => c.id)).size, CLIENT_CASES.length);
  for (const c of CLIENT_CASES) t.match(c.section, /§\d/, c.id);
});

t.test('the reference client passes every client case', async (t) => {
  const results = await runClientKit({ cmd: CLIENT, waitMs: 8000 });
  t.equal(results.length, CLIENT_CASES.length);
  t.same(
    results.filter((r) => r.status !== 'pass').map((r) => r.id),
    [],
    failures(results),
  );
});

t.test('a returning user (a recovery mark in --home) sends JOIN behind AUTH (§7.4) and still passes the cases that answer AUTH', async (t) => {
  const seed = `"${process.execPath}" dist/test/conformance/fixtures/seed-recovery-mark.js`;
  const results: CaseResult[] = [];
  for (const only of ['client_welcome_max_frame_', 'client_baseline_message']) results.push(...(await runClientKit({ cmd: `${seed} && ${CLIENT}`, waitMs: 8000, only })));
  t.same(results.map((r) => r.id).sort(), ['client_baseline_message', 'client_welcome_max_frame_at_min', 'client_welcome_max_frame_below_min'], 'the three cases ran');
  t.same(
    results.filter((r) => r.status !== 'pass').map((r) => r.id),
    [],
    failures(results),
  );
});

t.test('a lax client (any seq, no state machine, v1 ACKs, no pins, no rosters, any PSS salt, v1 peers, any relay name, any max_frame) fails exactly the cases of those rules', async (t) => {
  const lax = `"${process.execPath}" dist/test/conformance/fixtures/lax-client.js --host {host} --port {port} --nick {nick} --room {room}`;
  const results = await runClientKit({ cmd: lax, waitMs: 8000 });
  t.same(
    results.filter((r) => r.status !== 'pass').map((r) => `${r.id}: ${r.status}`).sort(),
    [
      'client_ack_batched: fail',
      'client_ack_cumulative: fail',
      'client_ack_unknown_seq: fail',
      'client_challenge_version: fail',
      'client_challenge_wrong_relay: fail',
      'client_handshake_bad_confirmation: fail',
      'client_handshake_frame_when_established: fail',
      'client_handshake_pss_salt_0: fail',
      'client_handshake_pss_salt_20: fail',
      'client_handshake_pss_salt_64: fail',
      'client_hs_init_to_initiator: fail',
      'client_key_changed: fail',
      'client_msg_before_established: fail',
      'client_msg_before_finish: fail',
      'client_reorder: fail',
      'client_replay: fail',
      'client_responder_hs_init_version: fail',
      'client_roster_commitment: fail',
      'client_roster_mismatch: fail',
      'client_welcome_max_frame_below_min: fail',
    ],
    failures(results),
  );
});

t.test('a client that never connects fails every client case', async (t) => {
  const results = await runClientKit({ cmd: 'exit 0', waitMs: 800 });
  t.equal(results.length, CLIENT_CASES.length);
  t.same(
    results.filter((r) => r.status !== 'fail').map((r) => `${r.id}: ${r.status}`),
    [],
  );
});
