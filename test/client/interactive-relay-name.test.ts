// The interactive client reaching a relay through a TCP proxy (a tunnel): --relay-name names the relay
// behind it (spec §7.3), and it is remembered in --home/client.json with the address, so the next run
// with no flags reaches the same relay instead of stopping with WRONG_RELAY. Real relay, proxy and tmux.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, RecordingProxy, startServerProc, tempDir } from './procs.js';
import { Term } from './tmux.js';

t.test('--relay-name through a proxy is remembered with the address: the next run without flags joins again', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const proxy = new RecordingProxy(port);
  const via = await proxy.listen();
  t.teardown(() => proxy.close());
  const home = join(dir, 'alice');
  const base = [process.execPath, CLI, 'client', '--home', home, '--no-passphrase'];
  const first = new Term(t, tempDir(t), [...base, '--port', String(via), '--relay-name', `localhost:${port}`, '--nick', 'alice', '--room', 'den']);
  await first.waitFor(/alice@den>$/);
  first.type('/quit');
  first.keys('Enter');
  t.equal(await first.waitExit(), 0);
  t.same(JSON.parse(readFileSync(join(home, 'client.json'), 'utf8')), { nick: 'alice', host: '127.0.0.1', port: via, relayName: `localhost:${port}`, room: 'den' });
  const second = new Term(t, tempDir(t), base);
  await second.waitFor(/alice@den>$/);
  second.type('/quit');
  second.keys('Enter');
  t.equal(await second.waitExit(), 0, 'joined through the proxy again, under the remembered relay name');
});
