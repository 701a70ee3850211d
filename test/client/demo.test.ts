/** `npm run demo` (dist/src/cli/demo.js) runs a relay and two clients and exits 0 with its checks passed. */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const DEMO = join(resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..'), 'dist', 'src', 'cli', 'demo.js');

t.test('the demo shows the conversation and the relay view, finds no text on the wire, exits 0', async (t) => {
  const child = spawn(process.execPath, [DEMO], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, COLUMNS: '160' } });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  t.equal(code, 0, 'exit 0');
  t.match(out, /bob\s*\| alice: Hi Bob! Can you read this\?/, 'bob sees alice’s first message');
  t.match(out, /relay → bob\s+DELIVER from=alice \d+ B: MSG seq=0 ct=[0-9a-f]+/, 'the relay column shows ciphertext frames');
  t.match(out, /found in it: 0 of 3/, 'no message text in the relay traffic');
  t.match(out, /\(equal\)/, 'equal safety numbers');
});

t.test('a closed output pipe (npm run demo | head) ends the demo quietly and removes its temporary keys', async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'e2ee-demo-tmp-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const child = spawn(process.execPath, [DEMO], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: tmp } });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  // Read until both clients are talking (keys exist in the temp folder), then close our end of the pipe.
  await new Promise<void>((resolve) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString('utf8');
      if (/alice\s*\| /.test(out) && /bob\s*\| /.test(out)) {
        child.stdout.off('data', onData);
        resolve();
      }
    };
    child.stdout.on('data', onData);
  });
  t.ok(readdirSync(tmp).length > 0, 'the demo had made its temporary folder');
  child.stdout.destroy();
  const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  t.equal(code, 141, 'exit status 141, as after SIGPIPE');
  t.notMatch(err, /EPIPE|Error/, 'no stack trace or EPIPE error on stderr');
  t.same(readdirSync(tmp), [], 'no temporary keys left behind');
});
