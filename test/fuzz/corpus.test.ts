// Replays every saved crasher in fuzz/corpus/ against the relay as a child process (the built CLI in
// dist/, with its web listener, so entries found over WebSocket replay over WebSocket, spec §3.1): each
// case must now get exactly the answers the oracle computes from the reference decoder and the
// transition table (spec §3, §4, §7.1), and the relay must stay up without logging an internal error.
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { caseOf, loadCorpus } from '../../fuzz/corpus.js';
import { IdentityBook, runCase } from '../../fuzz/harness.js';
import { ServerProcess } from '../../fuzz/server-process.js';

const DIR = fileURLToPath(new URL('../../fuzz/corpus', import.meta.url));
const entries = loadCorpus(DIR);

t.test('every saved crasher is answered as the spec says', async (t) => {
  t.ok(entries.length > 0, `${entries.length} corpus files`);
  t.ok(entries.some((e) => e.transport === 'ws'), 'WebSocket entries among them');
  const server = await ServerProcess.start(['--web-port', '0']);
  t.teardown(() => server.stop());
  const book = new IdentityBook();
  const registry = new Map<string, Buffer>();
  for (const e of entries) {
    const c = caseOf(e, book);
    const r = await runCase(server, c, book, registry, { replyMs: 15_000 });
    t.ok(r.ok, `${e.id} (${c.transport}): ${r.ok ? 'answered as the oracle says' : r.failure}`);
  }
  t.ok(server.alive, 'the relay is still running');
  t.same(server.problems, [], 'no internal error, no unhandled exception in the relay log');
});
