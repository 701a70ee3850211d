// `npm run demo -- --web` (dist/src/cli/demo.js --web): a relay with its web listener that prints the URL
// to open and the command for a terminal user; a page opened at that URL chats with that command's client;
// SIGINT stops it with status 0.
import t from 'tap';
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startClient, tempDir } from '../client/procs.js';
import { join as joinRoom, launch, message, person, say } from './chromium.js';

const DEMO = join(resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..'), 'dist', 'src', 'cli', 'demo.js');
const b = await launch(t);

t.test('demo --web prints a URL whose page chats with the printed client command', async (t) => {
  const demo = spawn(process.execPath, [DEMO, '--web'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((r) => demo.on('close', (c) => r(c)));
  t.teardown(() => {
    demo.kill('SIGKILL');
  });
  let out = '';
  const printed = await new Promise<{ url: string; port: number }>((resolve, reject) => {
    demo.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const url = /^open (http:\/\/127\.0\.0\.1:\d+\/) /m.exec(out);
      const cmd = / client --port (\d+) --nick bob --room lobby$/m.exec(out);
      if (url !== null && cmd !== null) resolve({ url: url[1]!, port: Number(cmd[1]) });
    });
    demo.on('close', () => reject(new Error(`demo exited before printing its URL:\n${out}`)));
  });
  const alice = await person(t, b, printed.url);
  await joinRoom(alice.page, 'alice');
  const bob = startClient(t, { port: printed.port, nick: 'bob', home: tempDir(t) });
  bob.write('hello from the terminal');
  await message(alice.page, 'bob', 'hello from the terminal').waitFor();
  await say(alice.page, 'hello from the page');
  await bob.waitFor(/^alice: hello from the page$/);
  demo.kill('SIGINT');
  t.equal(await exited, 0, 'SIGINT stops the demo with status 0');
  t.same(alice.errors.filter((e) => !/^WebSocket connection to '\S+' failed/.test(e)), []);
});
