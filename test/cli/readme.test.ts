// The README's commands write keys only under the user's home or a temp folder (issue 15 point 6: its
// scripted example wrote a private key into the repository): every --home in its sh blocks is under ~.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const README = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');

t.test("every --home in the README's shell examples is under ~ or a temp folder", async (t) => {
  const blocks = [...README.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const homes = blocks.flatMap((b) => [...b.matchAll(/--home[ =](\S+)/g)].map((m) => m[1]!));
  t.ok(homes.length >= 3, `the examples name --home (${homes.length} times)`);
  for (const h of homes) t.match(h, /^(~\/|\$HOME\/|"?\$\(mktemp|\/tmp\/|DIR$)/, `--home ${h}`);
});
