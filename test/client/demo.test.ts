/** `npm run demo` (dist/src/cli/demo.js) runs a relay and two clients and exits 0 with its checks passed. */
import t from 'tap';
import { spawn } from 'node:child_process';
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
