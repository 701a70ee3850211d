/**
 * A relay in a child process for tests that measure it (test/server/memory.test.ts): started with the
 * ServerOptions given as JSON in argv[2] (TLS as `tlsCertFile`/`tlsKeyFile` paths, a web listener with `webRoot`), it prints `port N`, then answers IPC requests. `measure` runs a
 * full garbage collection first (the process runs with --expose-gc), so resident memory and the heap reflect what the
 * relay holds rather than garbage not yet collected. Not a test file itself.
 */
import { getHeapSpaceStatistics } from 'node:v8';
import { startServer, type ServerOptions } from '../../src/server/index.js';
import { loadTlsCredentials } from '../../src/server/tls.js';
import { startWeb } from '../../src/server/web.js';

/** ServerOptions as JSON; TLS credentials (not JSON) are given as the paths of their PEM files. */
const { tlsCertFile, tlsKeyFile, webRoot, ...opts } = JSON.parse(process.argv[2] ?? '{}') as ServerOptions & { tlsCertFile?: string; tlsKeyFile?: string; webRoot?: string };
if (tlsCertFile !== undefined && tlsKeyFile !== undefined) opts.tls = loadTlsCredentials(tlsCertFile, tlsKeyFile);
const relay = await startServer(opts);
// With `webRoot` (a folder of static files) the WebSocket listener too: `web N` is printed before `port N`.
if (webRoot !== undefined) process.stdout.write(`web ${(await startWeb(relay, { host: '127.0.0.1', port: 0, root: webRoot })).port}\n`);
const gc = (globalThis as { gc?: () => void }).gc;
process.on('message', (m: { op: string }) => {
  if (m.op === 'measure') {
    gc?.();
    gc?.();
    const mem = process.memoryUsage();
    // V8's compiled code (and its metadata) lives in the code spaces: not memory held for any peer.
    const code = getHeapSpaceStatistics()
      .filter((sp) => sp.space_name.startsWith('code'))
      .reduce((n, sp) => n + sp.space_used_size, 0);
    process.send!({ rss: mem.rss, mem, code, cpu: process.cpuUsage(), stats: relay.stats() });
  } else if (m.op === 'cpu') {
    // No collection first: the CPU the relay itself spent, for tests that compare two kinds of traffic.
    process.send!({ cpu: process.cpuUsage() });
  } else if (m.op === 'close') {
    void relay.close().then(() => process.exit(0));
  }
});
process.stdout.write(`port ${relay.port}\n`);
