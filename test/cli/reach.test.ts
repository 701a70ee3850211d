// The interactive client reaches the relay's address before it asks for anything (src/cli/reach.ts):
// real TCP on 127.0.0.1. The client-level behaviour (no prompt, status 6) is in test/client/interactive.test.ts.
import t from 'tap';
import { createServer } from 'node:net';
import { reachRelay } from '../../src/cli/reach.js';
import { freePort } from '../client/procs.js';

t.test('a listening address is reached; a closed port is named by its error code', async (t) => {
  let accepted = 0;
  const srv = createServer((s) => {
    accepted++;
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => srv.close());
  t.equal(await reachRelay('127.0.0.1', (srv.address() as { port: number }).port), null, 'reached');
  t.equal(await reachRelay('127.0.0.1', await freePort()), 'ECONNREFUSED', 'nothing listening');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(accepted, 1, 'one connection, closed again');
});
