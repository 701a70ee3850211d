// `npm start` on a built tree starts without rebuilding (issue 15 point 6: it re-ran tsc on every start,
// 5 s idle and 25 s under load): the compiled CLI and the page bundle are not written again. Run after
// the build, as `npm test` does. And `e2ee-chat` found on PATH through a link to bin/, as `npm link` and
// `npm install -g .` make it ("command not found" for the README's own `e2ee-chat client --help`).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const OUTPUTS = [join(ROOT, 'dist', 'src', 'cli', 'main.js'), join(ROOT, 'dist', 'web', 'app.js')];

t.test('npm start on a current dist/ writes nothing and runs the relay command', async (t) => {
  const before = OUTPUTS.map((f) => statSync(f).mtimeMs);
  const r = spawnSync('npm', ['start', '-s', '--', '--help'], { cwd: ROOT, encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^usage: e2ee-chat server/, 'it ran e2ee-chat server');
  t.same(OUTPUTS.map((f) => statSync(f).mtimeMs), before, 'dist/src and dist/web were not rebuilt');
});

t.test('e2ee-chat on PATH through a symbolic link to bin/e2ee-chat.js runs from any folder', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'e2ee-path-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
  symlinkSync(join(ROOT, pkg.bin['e2ee-chat']!), join(dir, 'e2ee-chat'));
  const r = spawnSync('e2ee-chat', ['--version'], { cwd: dir, encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env['PATH'] ?? ''}` } });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, `e2ee-chat ${pkg.version}\n`);
});
