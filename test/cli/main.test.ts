// `e2ee-chat` itself (the built CLI in dist/, as the bin script runs it): --version, usage and unknown
// commands, each with its exit status.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'e2ee-chat.js');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });

t.test('--version and -V print the package version and exit 0', async (t) => {
  for (const flag of ['--version', '-V']) {
    const r = run(flag);
    t.equal(r.status, 0, `${flag}: exit 0`);
    t.equal(r.stdout, `e2ee-chat ${VERSION}\n`, `${flag}: the version from package.json`);
  }
});

t.test('no command prints the usage and exits 2; --help exits 0; an unknown command exits 2', async (t) => {
  const none = run();
  t.equal(none.status, 2);
  t.match(none.stdout, /server/);
  t.equal(run('--help').status, 0);
  const bad = run('frobnicate');
  t.equal(bad.status, 2);
  t.match(bad.stderr, /frobnicate/);
});
