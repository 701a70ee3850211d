#!/usr/bin/env node
/**
 * `e2ee-chat <command>`: dispatches to one module per command. Each module exports
 * `run(argv: string[]): Promise<number>` returning the process exit status.
 */
import { readFileSync } from 'node:fs';
import { exitOnClosedStdout } from './closed-pipe.js';

const COMMANDS: Record<string, () => Promise<{ run(argv: string[]): Promise<number> }>> = {
  server: () => import('./server.js'),
  client: () => import('./client.js'),
  vectors: () => import('./vectors.js'),
  conformance: () => import('./conformance.js'),
  history: () => import('./history.js'),
  key: () => import('./key.js'),
  pins: () => import('./pins.js'),
  admin: () => import('./admin.js'),
};

const USAGE = `usage: e2ee-chat <command> [options]

commands:
  server         run the relay server
  client         run the chat client
  vectors verify check the test vectors in a folder (default: vectors/)
  conformance    drive another implementation through the spec's cases
  history        export or clear your encrypted message history
  key            show, export (encrypted backup), import or passwd (new passphrase) your identity key
  pins           list or forget the keys you pinned (trust on first use)
  admin          a relay operator's commands: admin bindings list|release NICK (nickname registry)

Run 'e2ee-chat <command> --help' for a command's options; 'e2ee-chat --version' prints the version.`;

/** The version in package.json, which sits three folders above dist/src/cli/main.js (and src/cli/main.ts). */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

async function main(): Promise<number> {
  const [cmd, ...rest] = process.argv.slice(2);
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(USAGE + '\n');
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === '--version' || cmd === '-V' || cmd === 'version') {
    process.stdout.write(`e2ee-chat ${version()}\n`);
    return 0;
  }
  const load = COMMANDS[cmd];
  if (load === undefined) {
    process.stderr.write(`e2ee-chat: unknown command '${cmd}'\n${USAGE}\n`);
    return 2;
  }
  // `e2ee-chat pins list | head -1`: a reader that went away ends the command quietly (status 141). The
  // client and the relay handle a closed stdout themselves.
  if (cmd !== 'client' && cmd !== 'server') exitOnClosedStdout();
  return (await load()).run(rest);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`e2ee-chat: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 70;
  },
);
