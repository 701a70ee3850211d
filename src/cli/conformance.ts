/**
 * `e2ee-chat conformance server --target HOST:PORT [--transport tcp|ws] [--only SECTION] [--json FILE]` and
 * `e2ee-chat conformance client --cmd "COMMAND"`: drive another implementation through the spec's cases
 * (spec/CONFORMANCE.md). Exit status: 0 every case passed (skips allowed), 1 a case failed or the kit
 * could not run it, 2 usage.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatTable, summarize, type CaseResult } from '../conformance/runner.js';

const USAGE = `usage:
  e2ee-chat conformance server --target HOST:PORT [--transport tcp|ws] [--only SECTION|CASE]
                               [--json FILE] [--wait-ms N] [--handshake-ms N] [--budget N] [--list]
  e2ee-chat conformance client --cmd "COMMAND" [--only CASE] [--json FILE] [--wait-ms N] [--list]

server: one case per server-side MUST of spec/PROTOCOL.md against a running relay.
  --target         HOST:PORT of the relay (with --transport ws: of its web listener, --web-port)
  --transport      tcp (default) or ws: the same cases over the WebSocket endpoint /v1/ws (§3.1)
  --only           run only cases of a spec section ("4", "7.1") or whose id starts with CASE
  --json           also write the results as JSON to FILE
  --wait-ms        how long to wait for each answer the spec requires (default 2000)
  --handshake-ms   the relay's handshake timeout as configured (default 10000); idle_ms is read from WELCOME
  --budget         most connections one case may open (default 48; larger rooms are skipped)
  --list           print the cases and exit
client: runs a scripted relay and starts COMMAND once per case; COMMAND gets the relay's address in
  E2EE_CONF_HOST / E2EE_CONF_PORT and in the placeholders {host} and {port}.

Exit status: 0 all cases passed, 1 a case failed, 2 usage.`;

function parseTarget(t: string): { host: string; port: number } | undefined {
  const m = /^(.+):(\d{1,5})$/.exec(t);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

function positiveInt(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new Error(`--${name} must be a positive integer`);
  return Number(v);
}

function finish(results: readonly CaseResult[], json: string | undefined, meta: Record<string, unknown>, t0: number): number {
  process.stdout.write(formatTable(results));
  const summary = summarize(results);
  if (json !== undefined) {
    writeFileSync(json, JSON.stringify({ ...meta, durationMs: Math.round(performance.now() - t0), summary, results }, null, 2) + '\n');
  }
  return summary.fail + summary.error > 0 ? 1 : 0;
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    process.stdout.write(USAGE + '\n');
    return sub === undefined ? 2 : 0;
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: rest,
      options: {
        target: { type: 'string' },
        transport: { type: 'string' },
        cmd: { type: 'string' },
        only: { type: 'string' },
        json: { type: 'string' },
        'wait-ms': { type: 'string' },
        'handshake-ms': { type: 'string' },
        budget: { type: 'string' },
        list: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    process.stderr.write(`e2ee-chat conformance: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values['help']) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const only = values['only'] as string | undefined;
  const json = values['json'] as string | undefined;
  let waitMs: number | undefined;
  let handshakeMs: number | undefined;
  let budget: number | undefined;
  try {
    waitMs = positiveInt(values['wait-ms'] as string | undefined, 'wait-ms');
    handshakeMs = positiveInt(values['handshake-ms'] as string | undefined, 'handshake-ms');
    budget = positiveInt(values['budget'] as string | undefined, 'budget');
  } catch (e) {
    process.stderr.write(`e2ee-chat conformance: ${(e as Error).message}\n`);
    return 2;
  }
  const t0 = performance.now();

  if (sub === 'server') {
    const { SERVER_CASES } = await import('../conformance/server-cases.js');
    const { selects } = await import('../conformance/runner.js');
    if (values['list']) {
      for (const c of SERVER_CASES.filter((c) => selects(only, c))) process.stdout.write(`${c.id}\t${c.section}\t${c.title}\n`);
      return 0;
    }
    const target = parseTarget((values['target'] as string | undefined) ?? '');
    if (!target) {
      process.stderr.write(`e2ee-chat conformance server: --target HOST:PORT is required\n${USAGE}\n`);
      return 2;
    }
    const transport = (values['transport'] as string | undefined) ?? 'tcp';
    if (transport !== 'tcp' && transport !== 'ws') {
      process.stderr.write(`e2ee-chat conformance server: --transport must be tcp or ws, got '${transport}'\n`);
      return 2;
    }
    const { runServerKit } = await import('../conformance/server-kit.js');
    const results = await runServerKit({
      ...target,
      transport,
      only,
      ...(waitMs !== undefined ? { waitMs } : {}),
      ...(handshakeMs !== undefined ? { handshakeMs } : {}),
      ...(budget !== undefined ? { connectionBudget: budget } : {}),
    });
    if (results.length === 0) {
      process.stderr.write(`e2ee-chat conformance server: no case matches --only ${only ?? ''}\n`);
      return 2;
    }
    return finish(results, json, { kind: 'server', target: `${target.host}:${target.port}`, transport, only: only ?? null }, t0);
  }

  if (sub === 'client') {
    const { CLIENT_CASES, runClientKit } = await import('../conformance/client-kit.js');
    const { selects } = await import('../conformance/runner.js');
    if (values['list']) {
      for (const c of CLIENT_CASES.filter((c) => selects(only, c))) process.stdout.write(`${c.id}\t${c.section}\t${c.title}\n`);
      return 0;
    }
    const cmd = values['cmd'] as string | undefined;
    if (cmd === undefined || cmd.trim() === '') {
      process.stderr.write(`e2ee-chat conformance client: --cmd "COMMAND" is required\n${USAGE}\n`);
      return 2;
    }
    const results = await runClientKit({ cmd, only, ...(waitMs !== undefined ? { waitMs } : {}) });
    if (results.length === 0) {
      process.stderr.write(`e2ee-chat conformance client: no case matches --only ${only ?? ''}\n`);
      return 2;
    }
    return finish(results, json, { kind: 'client', cmd, only: only ?? null }, t0);
  }

  process.stderr.write(`e2ee-chat conformance: unknown subcommand '${sub}'\n${USAGE}\n`);
  return 2;
}
