/**
 * The attacker of test/hardening/relay-attacks.test.ts, in a process of its own so that its RSA signing
 * does not run on the bystander's event loop. argv[2]: the relay's port. One identity key; IPC commands:
 * - `burn`: sign fresh nonces in a loop (the CPU a flood costs its sender) without touching the relay;
 * - `flood`: CONNS connections, each binding one fresh nickname after another (HELLO, AUTH, WELCOME);
 * - `idle`: stop either. Every 10 binds, and on every command, it reports `{ binds, signs }`.
 * Both counts are bounded (MAX_BINDS); the process exits when its parent disconnects. Not a test file.
 */
import { randomBytes } from 'node:crypto';
import { authMessage, generateIdentity, pssSign } from '../../src/crypto/rsa.js';
import { frame } from '../../src/codec/index.js';
import { TestClient } from '../server/helpers.js';

const port = Number(process.argv[2]);
const CONNS = 8;
const MAX_BINDS = 20_000;
const id = generateIdentity();
let mode: 'idle' | 'burn' | 'flood' = 'idle';
let binds = 0;
let signs = 0;
let nick = 0;
const report = () => process.send!({ binds, signs, mode });

function burn(): void {
  if (mode !== 'burn') return;
  for (let i = 0; i < 4; i++) {
    pssSign(id.privateKey, authMessage(randomBytes(32), `burn${i}`, id.spki, 'localhost:1', new Uint8Array(0)));
    signs++;
  }
  setImmediate(burn);
}

async function floodLoop(): Promise<void> {
  while (mode === 'flood' && binds < MAX_BINDS) {
    const c = await TestClient.connect(port).catch(() => undefined);
    if (c === undefined) continue;
    const name = `flood${process.pid}x${(nick++).toString(36)}`;
    c.send(frame('HELLO', { version: 2, nick: name, key: id.spki }));
    const ch = await c.next();
    if (ch !== 'closed' && ch.type === 'CHALLENGE') {
      c.send(frame('AUTH', { sig: pssSign(id.privateKey, authMessage(ch.nonce, name, id.spki, ch.relay, new Uint8Array(0))) }));
      signs++;
      const w = await c.next();
      if (w !== 'closed' && w.type === 'WELCOME') {
        binds++;
        if (binds % 10 === 0) report();
      }
    }
    c.destroy();
  }
}

process.on('message', (m: { op: 'burn' | 'flood' | 'idle' }) => {
  const was = mode;
  mode = m.op;
  if (mode === 'burn' && was !== 'burn') setImmediate(burn);
  if (mode === 'flood' && was !== 'flood') for (let i = 0; i < CONNS; i++) void floodLoop();
  report();
});
process.on('disconnect', () => process.exit(0));
report();
