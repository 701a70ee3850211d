/**
 * Runs spin over model/cluster.pml (spec/CLUSTER.md §"Model"): generate the verifier (`spin -a`),
 * compile it (`gcc`), run it, and read back states explored and the first violation. `npm run model`
 * runs MODEL_RUNS; test/cluster/model.test.ts runs a small configuration and the seeded bugs.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** model/cluster.pml of this checkout, found from this file whether it runs from src/ or dist/src/. */
export const MODEL_FILE: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4 && !existsSync(join(dir, 'model', 'cluster.pml')); i++) dir = dirname(dir);
  return join(dir, 'model', 'cluster.pml');
})();

export interface ModelRun {
  /** What the run establishes, printed with its result. */
  readonly name: string;
  /** Preprocessor definitions for the model (configuration, seeded bugs). */
  readonly defines: readonly string[];
  /** 'safety': assertions and invalid end states; 'liveness': one LTL claim under weak fairness. */
  readonly mode: 'safety' | 'liveness';
  readonly claim?: string;
}

export interface ModelResult {
  readonly run: ModelRun;
  readonly states: number;
  readonly errors: number;
  /** The first violation pan reported (`assertion violated ...`, `invalid end state`, `acceptance cycle`). */
  readonly violation: string | undefined;
  /** False when pan stopped early (memory bound, depth bound): the run then proves nothing. */
  readonly complete: boolean;
  readonly seconds: number;
}

/** What `npm run model` checks: every safety property on two configurations, both liveness claims. */
export const MODEL_RUNS: readonly ModelRun[] = [
  { name: 'safety, 3 clients race for a 2-member room through 2 relays, relay 0 may crash', defines: ['NC=3', 'SENDS=0', 'ROUNDS=1'], mode: 'safety' },
  { name: 'safety, 2 clients join and SEND through 2 relays, relay 0 may crash', defines: ['NC=2', 'SENDS=1', 'ROUNDS=1'], mode: 'safety' },
  { name: 'liveness: a JOIN is eventually answered', defines: ['NC=2', 'SENDS=0', 'ROUNDS=1'], mode: 'liveness', claim: 'join_answered' },
  { name: "liveness: a dead relay's members are eventually removed", defines: ['NC=2', 'SENDS=0', 'ROUNDS=1'], mode: 'liveness', claim: 'dead_relay_reaped' },
];

/** The bugs a test seeds into the model, each with the violation spin must report. */
export const SEEDED_BUGS = {
  BUG_NONATOMIC_JOIN: 'assertion violated (members<=2)',
  BUG_NONATOMIC_BIND: 'assertion violated  !((welcomed[0]&&welcomed[1]))',
  BUG_NO_TOKEN_CHECK: 'assertion violated inRoom[hTarget]',
  BUG_MOVE_WITHOUT_CODE: 'assertion violated  !((welcomed[0]&&welcomed[1]))',
  BUG_NONATOMIC_EPOCH: 'assertion violated (hSeq==(ep[hTarget]+1))',
  BUG_STALE_MEMBERS: 'assertion violated ((e>0)&&(g==(knows[c]|(1<<c))))',
  BUG_NO_SENDER_CHECK: 'assertion violated (knows[c]&(1<<hSubj))',
} as const;

/** The configuration each seeded bug is checked in (the smallest in which spin finds it). */
export const SEEDED_BUG_DEFINES: Record<keyof typeof SEEDED_BUGS, readonly string[]> = {
  BUG_NONATOMIC_JOIN: ['NC=3', 'SENDS=0', 'ROUNDS=1'],
  BUG_NONATOMIC_BIND: ['NC=3', 'SENDS=0', 'ROUNDS=1'],
  BUG_NO_TOKEN_CHECK: ['NC=2', 'SENDS=1', 'ROUNDS=2'],
  BUG_MOVE_WITHOUT_CODE: ['NC=3', 'SENDS=0', 'ROUNDS=1'],
  BUG_NONATOMIC_EPOCH: ['NC=3', 'SENDS=0', 'ROUNDS=1'],
  BUG_STALE_MEMBERS: ['NC=3', 'SENDS=0', 'ROUNDS=1'],
  // A SEND decided before relay 0 crashed, published after its member was reaped (spec/CLUSTER.md §3).
  BUG_NO_SENDER_CHECK: ['NC=2', 'SENDS=1', 'ROUNDS=1'],
};

function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      // pan exits 0 even when it finds an error; a non-zero exit is a tool failure.
      if (err !== null) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(stdout + stderr);
    });
  });
}

/** Parses pan's report. */
export function parsePan(output: string): { states: number; errors: number; violation: string | undefined; complete: boolean } {
  const states = /^\s*(\d+(?:\.\d+)?(?:e\+\d+)?) states, stored/m.exec(output);
  const errors = /errors: (\d+)/.exec(output);
  const violation = /^pan:1: (.*?)(?: \(at depth \d+\))?$/m.exec(output);
  const incomplete = /Search not completed|reached -DMEMLIM bound|max search depth too small/.test(output) && (errors === null || errors[1] === '0');
  return {
    states: states === null ? 0 : Number(states[1]),
    errors: errors === null ? -1 : Number(errors[1]),
    violation: violation?.[1]?.trim(),
    complete: !incomplete && errors !== null,
  };
}

/**
 * Checks one run of the model in a fresh temporary folder (removed afterwards). `memLimitMb` bounds
 * pan's memory (a run that reaches it is reported incomplete). Rejects only when spin, gcc or pan cannot run.
 */
export async function checkModel(r: ModelRun, opts: { modelFile?: string; memLimitMb?: number; timeoutMs?: number } = {}): Promise<ModelResult> {
  const dir = mkdtempSync(join(tmpdir(), 'e2ee-model-'));
  const t0 = performance.now();
  // An hour: the full configurations take about a minute on an idle core, many more on a shared one.
  const timeoutMs = opts.timeoutMs ?? 3_600_000;
  try {
    copyFileSync(opts.modelFile ?? MODEL_FILE, join(dir, 'cluster.pml'));
    await run('spin', ['-a', ...r.defines.map((d) => `-D${d}`), 'cluster.pml'], dir, timeoutMs);
    // REVERSE: explore the clients (the last processes started) last, which reaches the races soonest.
    const cc = ['-O2', '-w', '-DREVERSE', `-DMEMLIM=${opts.memLimitMb ?? 2048}`, '-DCOLLAPSE'];
    if (r.mode === 'safety') cc.push('-DSAFETY', '-DNOCLAIM');
    else cc.push('-DNFAIR=4');
    await run('gcc', [...cc, '-o', 'pan', 'pan.c'], dir, timeoutMs);
    const panArgs = ['-m200000'];
    if (r.mode === 'liveness') panArgs.push('-a', '-f', '-N', r.claim ?? '');
    const out = await run('./pan', panArgs, dir, timeoutMs);
    return { run: r, ...parsePan(out), seconds: (performance.now() - t0) / 1000 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `npm run model`: prints each run's states and result; exit status 1 on any violation or incomplete run. */
export async function main(write: (s: string) => void = (s) => process.stdout.write(s), runs: readonly ModelRun[] = MODEL_RUNS): Promise<number> {
  let failed = 0;
  for (const r of runs) {
    const res = await checkModel(r);
    const verdict = res.errors === 0 && res.complete ? 'holds' : res.violation !== undefined ? `VIOLATED: ${res.violation}` : 'INCOMPLETE';
    if (verdict !== 'holds') failed++;
    write(`${r.name}: ${verdict} (${res.states} states, ${res.seconds.toFixed(1)} s)\n`);
  }
  write(failed === 0 ? 'model: every property holds\n' : `model: ${failed} run(s) failed\n`);
  return failed === 0 ? 0 : 1;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`model: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(2);
    },
  );
}
