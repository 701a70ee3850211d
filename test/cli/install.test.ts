// Installing like a Node program (issue 15 point 6), replayed as the new user did it, without network:
// in a fresh copy of the sources (src/, bin/, scripts/, package.json, package-lock.json, tsconfig.json:
// no dist/), `node bin/e2ee-chat.js --help` first fails with ERR_MODULE_NOT_FOUND (what they saw: there was
// no `prepare` script); `npm install --offline` then builds it through `prepare`, and `npm install -g .`
// into a temp --prefix puts a working `e2ee-chat` on PATH (the README's own `e2ee-chat client --help`
// was "command not found"). The copy gets its own copy of node_modules (npm may write there: never the
// repository's), so npm has nothing to fetch; --offline makes any fetch fail instead of reaching out.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** The environment without the npm_* variables of an enclosing `npm test` (they would steer the inner npm). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, NO_COLOR: '1', ...extra };
}

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (killed at teardown if still running: tap's per-file timeout is the backstop). */
function run(t: { teardown(fn: () => unknown): void }, cmd: string, args: string[], cwd: string, env = cleanEnv()): Promise<Ran> {
  const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
}

t.test('a fresh copy: npm install builds it (prepare), npm install -g . puts e2ee-chat on PATH', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'e2ee-install-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const copy = join(dir, 'e2ee-chat');
  mkdirSync(copy);
  const parts = ['src', 'bin', 'scripts', 'package.json', 'package-lock.json', 'tsconfig.json'];
  t.equal((await run(t, 'cp', ['-a', ...parts.map((p) => join(ROOT, p)), copy], ROOT)).status, 0, 'sources copied');
  // -a keeps node_modules/.bin's relative links; realpath: the worktree's node_modules may be a link itself.
  t.equal((await run(t, 'cp', ['-a', realpathSync(join(ROOT, 'node_modules')), join(copy, 'node_modules')], ROOT)).status, 0, 'node_modules copied');
  t.notOk(existsSync(join(copy, 'dist')), 'no dist/ in the copy');

  const before = await run(t, process.execPath, ['bin/e2ee-chat.js', '--help'], copy);
  t.not(before.status, 0, 'not built yet: the command fails');
  t.match(before.stderr, /ERR_MODULE_NOT_FOUND/, 'as the new user saw it');

  const install = await run(t, 'npm', ['install', '--offline', '--no-audit', '--no-fund'], copy);
  t.equal(install.status, 0, 'npm install');
  if (install.status !== 0) t.comment(install.stderr.slice(-4000));
  t.ok(existsSync(join(copy, 'dist', 'src', 'cli', 'main.js')), 'prepare compiled the CLI');
  t.ok(existsSync(join(copy, 'dist', 'web', 'app.js')), 'and bundled the page');
  const help = await run(t, process.execPath, ['bin/e2ee-chat.js', '--help'], copy);
  t.equal(help.status, 0, help.stderr);
  t.match(help.stdout, /^usage: e2ee-chat /);

  // The copy is built (above); --ignore-scripts only spares a second run of the same prepare.
  const prefix = join(dir, 'prefix');
  const global = await run(t, 'npm', ['install', '-g', '.', '--prefix', prefix, '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], copy);
  t.equal(global.status, 0, 'npm install -g .');
  if (global.status !== 0) t.comment(global.stderr.slice(-4000));
  const onPath = join(prefix, 'bin', 'e2ee-chat');
  t.equal(realpathSync(onPath), realpathSync(join(copy, 'bin', 'e2ee-chat.js')), 'the command links to the installed package');

  const elsewhere = join(dir, 'elsewhere');
  mkdirSync(elsewhere);
  const env = cleanEnv({ PATH: `${join(prefix, 'bin')}:${process.env['PATH'] ?? ''}` });
  const version = await run(t, 'e2ee-chat', ['--version'], elsewhere, env);
  t.equal(version.status, 0, version.stderr);
  t.equal(version.stdout, `e2ee-chat ${VERSION}\n`);
  const clientHelp = await run(t, 'e2ee-chat', ['client', '--help'], elsewhere, env);
  t.equal(clientHelp.status, 0, clientHelp.stderr);
  t.match(clientHelp.stdout, /^usage: e2ee-chat client /, "the README's e2ee-chat client --help");
});
