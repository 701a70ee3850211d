/**
 * The server kit against relays that each break one rule version 2 added (room epochs §7.1, the relay
 * binding and strict proofs of §7.3 and §8.1, the v1 refusal of §2.1, recovery §7.5): each fails exactly
 * the cases of its rule. Real TCP on 127.0.0.1, port 0; server-kit.test.ts has the reference relay and
 * the version 1 fixtures.
 *
 * The proxies (fixtures/broken.ts) run the whole kit. A broken registry (fixtures/lax-registry.ts) changes
 * only what RECOVER and SET_RECOVERY ask of the registry, which only the `recovery_` cases reach (every
 * other case that sends them is refused by the §7.1 table first), and `epoch-kept` changes only epoch
 * numbers, which only the `epoch_` cases read: those runs are the cases that can see the change.
 */
import t from 'tap';
import { startServer, type Registry } from '../../src/server/index.js';
import { runServerKit } from '../../src/conformance/server-kit.js';
import type { CaseResult } from '../../src/conformance/runner.js';
import { SERVER_CASES } from '../../src/conformance/server-cases.js';
import { KeyPool } from '../../src/wirekit/identity.js';
import { startBroken } from './fixtures/broken.js';
import { openLaxRegistry, type LaxRegistryKind } from './fixtures/lax-registry.js';
import { endpoint, failures, LONG, runSplit, WAIT_MS, type Timeouts } from './fixtures/split.js';

// The proxy runs are split over two relays (fixtures/split.ts): the timing cases against short
// timeouts, the rest against timeouts no case reaches; the other runs hold no timing case and use the
// long ones. The subtests are independent (each its own relays, fresh nicknames and rooms) and run
// concurrently.
t.jobs = 4;

function reference(registry: string | Registry = ':memory:', timeouts: Timeouts = LONG) {
  return startServer({ port: 0, registry, maxRoomSize: 2, handshakeTimeoutMs: timeouts.handshakeMs, idleTimeoutMs: timeouts.idleMs });
}

function failed(results: readonly CaseResult[]): string[] {
  return results.filter((r) => r.status !== 'pass' && r.status !== 'skip').map((r) => `${r.id}: ${r.status}`).sort();
}

const PROXIES = {
  'lax-auth': [
    'auth_pss_salt_0',
    'auth_pss_salt_20',
    'auth_pss_salt_64',
    'auth_v1_message',
    'auth_wrong_label',
    'hello_version_1',
    'recovery_signature_first',
  ],
  'frozen-epoch': ['epoch_join_leave_numbering', 'epoch_refused_join_unchanged'],
} as const;

for (const [kind, expected] of Object.entries(PROXIES) as Array<[keyof typeof PROXIES, readonly string[]]>) {
  t.test(`a relay that breaks one v2 rule (${kind}) fails exactly the cases of that rule`, async (t) => {
    const results = await runSplit(t, async (timeouts) => {
      const srv = await reference(':memory:', timeouts);
      return endpoint(await startBroken(kind, srv), srv);
    });
    t.equal(results.length, SERVER_CASES.length);
    t.same(failed(results), expected.map((id) => `${id}: fail`), failures(results));
    // No case used more keys than it reserved: none was generated on the event loop mid-run (which
    // stalls this process, the relay under test included, for seconds under load).
    t.equal(KeyPool.shared.madeBlocking, 0);
  });
}

t.test('a relay that keeps a removed room\'s epoch fails the restart case, and only it', async (t) => {
  const srv = await reference();
  const fx = await startBroken('epoch-kept', srv);
  t.teardown(async () => {
    await fx.close();
    await srv.close();
  });
  const results = await runServerKit({ host: fx.host, port: fx.port, handshakeMs: LONG.handshakeMs, waitMs: WAIT_MS, only: 'epoch_' });
  t.equal(results.length, 3);
  t.same(failed(results), ['epoch_empty_room_restarts: fail'], failures(results));
});

const REGISTRIES: Record<LaxRegistryKind, string[]> = {
  'recover-any-code': ['recovery_code_spent', 'recovery_no_commitment', 'recovery_wrong_code'],
  'recover-never-moves': ['recovery_code_spent', 'recovery_free_nick_binds', 'recovery_set_after_takeover', 'recovery_takeover_with_code'],
  'recover-keeps-code': ['recovery_code_spent', 'recovery_free_nick_binds'],
  'set-recovery-any-key': ['recovery_set_after_takeover'],
};

for (const kind of Object.keys(REGISTRIES) as LaxRegistryKind[]) {
  t.test(`a relay whose registry breaks one §7.5 rule (${kind}) fails exactly the recovery cases of that rule`, async (t) => {
    const registry = await openLaxRegistry(kind);
    const srv = await reference(registry);
    t.teardown(async () => {
      await srv.close();
      await registry.close();
    });
    const results = await runServerKit({ host: srv.host, port: srv.port, handshakeMs: LONG.handshakeMs, waitMs: WAIT_MS, only: 'recovery_' });
    t.equal(results.length, 7);
    t.same(failed(results), REGISTRIES[kind].map((id) => `${id}: fail`), failures(results));
  });
}
