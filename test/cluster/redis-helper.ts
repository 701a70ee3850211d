/**
 * A real redis-server for the cluster tests: a free loopback port, a temporary folder, AOF with
 * appendfsync always (the durability spec/CLUSTER.md promises for a crash of Redis) or everysec (the
 * least it promises a restart with), stopped afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export class TestRedis {
  private proc: ChildProcess | undefined;
  private constructor(
    readonly port: number,
    readonly dir: string,
    readonly fsync: 'always' | 'everysec',
  ) {}

  /** The redis-server process id (the benchmark reads its CPU time), or undefined when not running. */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  static async start(fsync: 'always' | 'everysec' = 'always'): Promise<TestRedis> {
    const r = new TestRedis(await freePort(), mkdtempSync(join(tmpdir(), 'e2ee-redis-')), fsync);
    await r.run();
    return r;
  }

  /** Starts redis-server on this port and folder and waits until it answers PING (bounded: 100 tries). */
  async run(): Promise<void> {
    this.proc = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--appendfsync', this.fsync, '--save', '', '--daemonize', 'no'],
      { stdio: 'ignore' },
    );
    for (let i = 0; i < 100; i++) {
      const c = new Redis({ host: '127.0.0.1', port: this.port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      c.on('error', () => {});
      try {
        await c.connect();
        if ((await c.ping()) === 'PONG') {
          c.disconnect();
          return;
        }
      } catch {
        // not up yet
      }
      c.disconnect();
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('redis-server did not start');
  }

  /** kill -9 and wait for the exit. */
  async kill9(): Promise<void> {
    await this.signal('SIGKILL');
  }

  /** SIGTERM (Redis shuts down: it writes and syncs the AOF) and wait for the exit. */
  async terminate(): Promise<void> {
    await this.signal('SIGTERM');
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const p = this.proc;
    if (p === undefined || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(sig);
    await exited;
  }

  async stop(): Promise<void> {
    await this.kill9();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
