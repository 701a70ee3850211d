/**
 * `npm run demo`: a relay, a recording proxy in front of it, and two scripted `e2ee-chat client`
 * processes (alice and bob) that talk through it. Prints, side by side, what the two people see
 * (decrypted, on their screens) and what the relay saw (every frame, decoded as a relay can decode it:
 * nicknames, public keys, sizes, sequence numbers; message bodies are ciphertext). At the end it checks
 * that no message text appeared in the relay's traffic and that both safety numbers agree; exits 0 when
 * both hold and both clients exited 0, 1 otherwise.
 *
 * Everything lives in a temp folder that is removed at the end, also when the output pipe closes early
 * (`npm run demo | head`: exit 141) or on Ctrl-C (130); keys are stored without passphrase there
 * (--no-passphrase) because nobody types one in a demo.
 *
 * `npm run demo -- --web [--port N] [--web-port N]`: a relay on 127.0.0.1 with its web listener (ports 0,
 * any free one, unless given) and an in-memory registry; prints the page's URL to open (in two browser
 * profiles, or one browser and a terminal with the printed client command) and runs until Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeFrame, FrameReader, type RelayFrame } from '../codec/index.js';
import { startServer } from '../server/index.js';
import { DEFAULT_WEB_ROOT, startWeb } from '../server/web.js';
import { exitOnClosedStdout } from './closed-pipe.js';

const CLI = fileURLToPath(new URL('./main.js', import.meta.url));
const WIDTH = Math.max(100, Math.min(process.stdout.columns ?? 140, 180));
const LEFT = Math.floor(WIDTH * 0.48);

const SCRIPT: { who: 'alice' | 'bob'; text: string }[] = [
  { who: 'alice', text: 'Hi Bob! Can you read this?' },
  { who: 'bob', text: 'Loud and clear, Alice. The relay only sees ciphertext. 🙂' },
  { who: 'alice', text: 'Great. Let us compare safety numbers next time we meet.' },
];

function fit(s: string, n: number): string {
  const cps = [...s];
  return cps.length <= n ? s + ' '.repeat(n - cps.length) : cps.slice(0, n - 1).join('') + '…';
}

function row(left: string, right: string): void {
  process.stdout.write(`${fit(left, LEFT)} │ ${fit(right, WIDTH - LEFT - 3).trimEnd()}\n`);
}

function hex(b: Uint8Array, n = 10): string {
  return Buffer.from(b.subarray(0, n)).toString('hex') + (b.length > n ? '…' : '');
}

/** How a relay sees one frame: everything outside the end-to-end layer is readable to it. */
function describe(f: RelayFrame): string {
  switch (f.type) {
    case 'HELLO':
      return `HELLO nick=${f.nick} key=${f.key.length} B`;
    case 'CHALLENGE':
      return `CHALLENGE nonce=${hex(f.nonce)}`;
    case 'AUTH':
      return `AUTH sig=${hex(f.sig)}`;
    case 'WELCOME':
      return `WELCOME room_size=${f.room_size} rate=${f.rate}`;
    case 'JOIN':
      return `JOIN room=${f.room}`;
    case 'JOINED':
      return `JOINED room=${f.room} members=[${f.members.map((m) => m.nick).join(',')}]`;
    case 'PEER_JOINED':
      return `PEER_JOINED ${f.nick}`;
    case 'PEER_LEFT':
      return `PEER_LEFT ${f.nick}`;
    case 'SEND':
      return `SEND to=${f.to} ${body(f.body)}`;
    case 'DELIVER':
      return `DELIVER from=${f.from} ${body(f.body)}`;
    case 'ERROR':
      return `ERROR code=${f.code}`;
    default:
      return f.type;
  }
}

function body(b: Uint8Array): string {
  try {
    const e = decodeFrame(b, 'e2e');
    if (e.type === 'MSG') return `${b.length} B: MSG seq=${e.seq} ct=${hex(e.ct, 8)}`;
    return `${b.length} B: ${e.type} eph=${'eph' in e ? hex(e.eph, 6) : '-'}`;
  } catch {
    return `${b.length} B: ${hex(b)}`;
  }
}

/** A TCP proxy that decodes (never alters) both directions and reports each frame. */
class Recorder {
  readonly raw: Buffer[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(target: number, report: (who: string, dir: '→' | '←', f: RelayFrame) => void) {
    this.server = createServer((client) => {
      const up = connect({ host: '127.0.0.1', port: target });
      this.sockets.add(client).add(up);
      let who = '?';
      const watch = (from: Socket, to: Socket, dir: '→' | '←') => {
        const reader = new FrameReader();
        let broken = false;
        from.on('data', (d: Buffer) => {
          this.raw.push(Buffer.from(d));
          to.write(d);
          if (broken) return;
          try {
            for (const b of reader.push(d)) {
              const f = decodeFrame(b, 'relay');
              if (f.type === 'HELLO') who = f.nick;
              report(who, dir, f);
            }
          } catch {
            broken = true;
          }
        });
      };
      watch(client, up, '→');
      watch(up, client, '←');
      const close = () => {
        client.destroy();
        up.destroy();
      };
      for (const s of [client, up]) s.on('close', close).on('error', close);
    });
  }

  listen(): Promise<number> {
    return new Promise((r) => this.server.listen(0, '127.0.0.1', () => r((this.server.address() as { port: number }).port)));
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}

class Client {
  readonly lines: string[] = [];
  private rest = '';
  private waiters: { re: RegExp; resolve: (l: string) => void; reject: (e: Error) => void }[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;

  constructor(
    readonly nick: string,
    port: number,
    relayName: string,
    home: string,
    onLine: (nick: string, line: string) => void,
  ) {
    // --relay-name: the clients dial the recording proxy but address the relay behind it (spec §7.3).
    const args = ['client', '--port', String(port), '--relay-name', relayName, '--nick', nick, '--room', 'demo', '--home', home, '--no-passphrase', '--wait', '5'];
    this.child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, NO_COLOR: '1', E2EE_CHAT_PASSPHRASE: '', E2EE_CHAT_ROOM_SECRET: '' },
    });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const parts = (this.rest + d).split('\n');
      this.rest = parts.pop()!;
      for (const l of parts) {
        this.lines.push(l);
        onLine(nick, l);
        for (const w of [...this.waiters]) {
          if (w.re.test(l)) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.resolve(l);
          }
        }
      }
    });
    this.exited = new Promise((r) =>
      this.child.on('close', (code) => {
        for (const w of this.waiters.splice(0)) w.reject(new Error(`${nick} exited before printing ${w.re}`));
        r(code);
      }),
    );
  }

  waitFor(re: RegExp): Promise<string> {
    const hit = this.lines.find((l) => re.test(l));
    if (hit !== undefined) return Promise.resolve(hit);
    return new Promise((resolve, reject) => this.waiters.push({ re, resolve, reject }));
  }

  say(text: string): void {
    this.child.stdin!.write(text + '\n');
  }
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'e2ee-chat-demo-'));
  const clients: Client[] = [];
  // The temporary keys must go on every way out: normal end, error, a closed output pipe, Ctrl-C.
  const cleanup = () => {
    for (const c of clients) if (c.child.exitCode === null) c.child.kill();
    rmSync(dir, { recursive: true, force: true });
  };
  const abort = (code: number) => {
    cleanup();
    process.exit(code);
  };
  // A closed output pipe (`npm run demo | head`): status 141, the checks did not finish.
  exitOnClosedStdout(cleanup);
  process.once('SIGINT', () => abort(130)).once('SIGTERM', () => abort(143));
  const relay = await startServer({ port: 0, registry: ':memory:' });
  const recorder = new Recorder(relay.port, (who, dir, f) => row('', `${dir === '→' ? `${who} → relay` : `relay → ${who}`}  ${describe(f)}`));
  const port = await recorder.listen();
  try {
    process.stdout.write(`e2ee-chat demo: relay on 127.0.0.1:${relay.port}, recording proxy on 127.0.0.1:${port}\n\n`);
    row('WHAT ALICE AND BOB SEE (decrypted on their machines)', 'WHAT THE RELAY SEES (every frame on the wire)');
    row('─'.repeat(LEFT), '─'.repeat(WIDTH - LEFT - 3));
    const show = (nick: string, line: string) => row(`${nick.padEnd(5)}| ${line}`, '');
    const alice = new Client('alice', port, relay.relayName, join(dir, 'alice'), show);
    clients.push(alice);
    await alice.waitFor(/^\* joined /);
    const bob = new Client('bob', port, relay.relayName, join(dir, 'bob'), show);
    clients.push(bob);
    const sa = (await alice.waitFor(/^\* secure session with bob/)).replace(/.*safety number /, '');
    const sb = (await bob.waitFor(/^\* secure session with alice/)).replace(/.*safety number /, '');
    const peers = { alice: bob, bob: alice };
    for (const step of SCRIPT) {
      const speaker = step.who === 'alice' ? alice : bob;
      speaker.say(step.text);
      await peers[step.who].waitFor(new RegExp(`^${step.who}: `));
      await speaker.waitFor(/^\* delivered to /);
      // One message at a time, so the two columns read as a conversation.
      peers[step.who].lines.length = 0;
      speaker.lines.length = 0;
    }
    alice.child.stdin!.end();
    bob.child.stdin!.end();
    const codes = await Promise.all(clients.map((c) => c.exited));

    const wire = Buffer.concat(recorder.raw);
    const leaked = SCRIPT.filter((s) => wire.includes(Buffer.from(s.text, 'utf8')) || s.text.split(' ').some((w) => w.length >= 6 && wire.includes(Buffer.from(w))));
    process.stdout.write('\n');
    process.stdout.write(`relay traffic recorded: ${wire.length} bytes in ${relay.stats().framesIn} frames from clients\n`);
    process.stdout.write(`message texts (or any word of 6+ letters) found in it: ${leaked.length} of ${SCRIPT.length}\n`);
    process.stdout.write(`safety numbers: alice ${sa}\n                bob   ${sb}  ${sa === sb ? '(equal)' : '(DIFFERENT)'}\n`);
    process.stdout.write(`client exit statuses: alice ${codes[0]}, bob ${codes[1]}\n`);
    return leaked.length === 0 && sa === sb && codes.every((c) => c === 0) ? 0 : 1;
  } finally {
    cleanup();
    await recorder.close();
    await relay.close();
  }
}

/** `--web`: a relay with the web listener for people to try, until SIGINT/SIGTERM. */
async function web(args: string[]): Promise<number> {
  const port = (name: string): number => {
    const i = args.indexOf(name);
    if (i < 0) return 0;
    const n = Number(args[i + 1]);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new RangeError(`${name} takes a port number (0-65535)`);
    return n;
  };
  const known = new Set(['--web', '--port', '--web-port']);
  for (let i = 0; i < args.length; i++) {
    if (!known.has(args[i]!)) throw new RangeError(`unknown argument ${args[i]}; usage: npm run demo -- --web [--port N] [--web-port N]`);
    if (args[i] !== '--web') i++;
  }
  const relay = await startServer({ port: port('--port'), registry: ':memory:' });
  const listener = await startWeb(relay, { host: '127.0.0.1', port: port('--web-port'), root: DEFAULT_WEB_ROOT });
  process.stdout.write(
    [
      `e2ee-chat demo: relay on 127.0.0.1:${relay.port}, web listener on ${listener.origin}/`,
      `open ${listener.origin}/ in two browser profiles (or a private window), or chat with a terminal user:`,
      `  node ${CLI} client --port ${relay.port} --nick bob --room lobby`,
      'Ctrl-C stops the relay (its registry is in memory: nothing is kept).',
      '',
    ].join('\n'),
  );
  await new Promise<void>((resolve) => process.once('SIGINT', resolve).once('SIGTERM', resolve));
  await relay.close();
  await listener.close();
  return 0;
}

(process.argv.includes('--web') ? web(process.argv.slice(2)) : main()).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
