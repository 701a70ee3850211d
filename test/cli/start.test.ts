// `npm start` on a built tree starts without rebuilding (issue 15 point 6: it re-ran tsc on every start,
// 5 s idle and 25 s under load): the compiled CLI and the page bundle are not written again. Run after
// the build, as `npm test` does. And `e2ee-chat` found on PATH through a link to bin/, as `npm link` and
// `npm install -g .` make it ("command not found" for the README's own `e2ee-chat client --help`).
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
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

/** The processes below `pid` (children first), read with pgrep. */
function descendants(pid: number): number[] {
  const kids = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l !== '').map(Number);
  return kids.flatMap((k) => [k, ...descendants(k)]);
}

/** Whether something accepts a TCP connection on 127.0.0.1:port. */
const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

// A service manager or `kill <pid>` signals npm; npm passes the signal to its child, which must be the
// relay itself (the script's last step is `exec node ...`), not a sh -c that dies and leaves the relay running.
t.test('SIGTERM to npm start stops the relay', async (t) => {
  const npm = spawn('npm', ['start', '-s', '--', '--port', '0', '--registry', ':memory:'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let below: number[] = [];
  t.teardown(() => {
    for (const pid of below) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  });
  // 'exit', not 'close': a relay left running would hold npm's stdout open, and 'close' would never come.
  const exited = new Promise<number | null>((resolve) => npm.on('exit', (code) => resolve(code)));
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    npm.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /^listening on 127\.0\.0\.1:(\d+)$/m.exec(out);
      if (m) resolve(Number(m[1]));
    });
    void exited.then((code) => reject(new Error(`npm start ended (${code}) before listening`)));
  });
  below = descendants(npm.pid!);
  t.ok(await accepts(port), 'the relay accepts connections');
  npm.kill('SIGTERM');
  await exited;
  t.notOk(await accepts(port), 'once npm has ended, nothing listens on the relay port');
});
