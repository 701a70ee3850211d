/**
 * spec/CONFORMANCE.md lists every case with its section and requirement; this keeps the list equal to the
 * kit's case tables (spec and code share their tables), and checks the --only selector.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { CLIENT_CASES } from '../../src/conformance/client-kit.js';
import { selects } from '../../src/conformance/runner.js';
import { SERVER_CASES } from '../../src/conformance/server-cases.js';

const doc = readFileSync(new URL('../../spec/CONFORMANCE.md', import.meta.url), 'utf8');

function rows(heading: string): Array<[string, string, string]> {
  const start = doc.indexOf(heading);
  const body = doc.slice(start + heading.length);
  const end = body.search(/\n#{2,3} /);
  return (end < 0 ? body : body.slice(0, end))
    .split('\n')
    .filter((l) => l.startsWith('| `'))
    .map((l) => {
      const cells = l.slice(2, -2).split(' | ');
      return [cells[0]!.replace(/`/g, ''), cells[1]!, cells.slice(2).join(' | ')];
    });
}

t.test('the server case table in CONFORMANCE.md equals the kit', async (t) => {
  t.same(
    rows('### 6.1 Server cases'),
    SERVER_CASES.map((c) => [c.id, c.section, c.title]),
  );
});

t.test('the client case table in CONFORMANCE.md equals the kit', async (t) => {
  t.same(
    rows('### 6.2 Client cases'),
    CLIENT_CASES.map((c) => [c.id, c.section, c.title]),
  );
});

t.test('--only selects by section number or by case id prefix', async (t) => {
  const c = { id: 'join_room_full', section: '§7.1 Joining' };
  t.ok(selects(undefined, c));
  t.ok(selects('7', c));
  t.ok(selects('7.1', c));
  t.ok(selects('§7.1', c));
  t.notOk(selects('7.2', c));
  t.notOk(selects('7.10', { id: 'x', section: '§7.1' }));
  t.ok(selects('join_', c));
  t.notOk(selects('relay_', c));
  t.ok(selects('4', { id: 'encoding_x', section: '§4 rule 3' }));
  t.ok(selects('3', { id: 'disconnect_truncated_frame', section: '§3, §7.1 Leaving' }));
});
