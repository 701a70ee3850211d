// The WebCrypto backend passes vectors/ inside Chromium (issue 18 point 6), not only in Node: the
// primitives, handshake and passive-peer suites of src/vectors/ are bundled for the browser with esbuild
// and run in a page against Chromium's crypto.subtle through webCryptoBackend(). The suites' harness
// helpers that use Node built-ins get page stand-ins (test/web/shims/: SPKI-of-PKCS#8 and deep equality;
// every other node:crypto function throws), so every operation under test is the page's WebCrypto. One
// altered expected value must then be reported, so a run that checks nothing cannot pass.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { launch } from './chromium.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FILES = ['primitives.json', 'handshake.json', 'passive.json'] as const;
const SHIMS: Record<string, string> = { 'node:crypto': 'node-crypto.js', 'node:util': 'node-util.js' };

const bundle = await build({
  stdin: {
    contents: `import { SUITES } from './src/vectors/registry.ts';
import { webCryptoBackend } from './src/crypto/webcrypto.ts';
globalThis.runVectors = async (docs) => {
  const c = webCryptoBackend();
  const out = {};
  for (const s of SUITES) if (docs[s.file] !== undefined) out[s.file] = { backend: c.name, failures: await s.verify(docs[s.file], c) };
  return out;
};`,
    resolveDir: ROOT,
    loader: 'ts',
  },
  bundle: true,
  format: 'iife',
  platform: 'browser',
  write: false,
  logLevel: 'silent',
  inject: [`${ROOT}test/web/shims/buffer.js`],
  plugins: [
    {
      name: 'page-shims',
      setup(b) {
        b.onResolve({ filter: /^node:/ }, (a) => {
          const shim = SHIMS[a.path];
          return shim === undefined ? { errors: [{ text: `${a.importer} imports ${a.path}, which has no page stand-in` }] } : { path: `${ROOT}test/web/shims/${shim}` };
        });
      },
    },
  ],
});
const script = bundle.outputFiles[0]!.text;
const docs = Object.fromEntries(FILES.map((f) => [f, JSON.parse(readFileSync(`${ROOT}vectors/${f}`, 'utf8')) as { cases: { id: string; output?: Record<string, unknown> }[] }]));
const b = await launch(t);

type Result = Record<string, { backend: string; failures: { id: string }[] }>;

t.test('the WebCrypto backend passes the primitives, handshake and passive vectors in Chromium', async (t) => {
  const ctx = await b.newContext();
  t.teardown(() => ctx.close());
  const page = await ctx.newPage();
  // A page of its own on a loopback origin (a secure context), served by the test, never by the network.
  await page.route('http://127.0.0.1:9/**', (r) => r.fulfill({ contentType: 'text/html', body: '<!doctype html><title>vectors</title>' }));
  await page.goto('http://127.0.0.1:9/vectors');
  await page.addScriptTag({ content: script });
  t.equal(await page.evaluate('window.isSecureContext && typeof crypto.subtle'), 'object');

  const run = (d: unknown) => page.evaluate(`runVectors(${JSON.stringify(d)})`) as Promise<Result>;
  const got = await run(docs);
  for (const f of FILES) {
    t.ok(docs[f]!.cases.length > 0, `${f} has cases`);
    t.equal(got[f]?.backend, 'webcrypto', `${f} ran on the page's WebCrypto`);
    t.same(got[f]?.failures, [], `${f}: all ${docs[f]!.cases.length} cases pass`);
  }

  // One expected output altered: the page's run reports exactly that case.
  const prim = structuredClone(docs['primitives.json']!);
  const c = prim.cases.find((x) => x.output !== undefined && typeof Object.values(x.output)[0] === 'string')!;
  const k = Object.keys(c.output!)[0]!;
  const v = c.output![k] as string;
  c.output![k] = (v[0] === '0' ? '1' : '0') + v.slice(1);
  const bad = await run({ 'primitives.json': prim });
  t.same(bad['primitives.json']?.failures.map((f) => f.id), [c.id], 'an altered expectation fails');
});
