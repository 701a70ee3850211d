// Builds the browser client (src/web/) into dist/web/, the folder `e2ee-chat server --web-port` serves:
// one ES module bundle made by esbuild (platform=browser, so a Node built-in in the client core fails the
// build) and the static page and style sheet, copied as they are. Deterministic: the same sources give
// the same bytes, so the SHA-256 manifest the relay prints can be compared with a build of one's own.
//
// With --if-stale (what `npm start` runs) nothing is built when dist/web/app.js is newer than every file
// under src/ (the bundle's sources are a part of them), so starting a relay does not rebuild the page.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'web');

/** The newest modification time of the files under `dir`, in ms. */
function newest(dir) {
  let m = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    m = Math.max(m, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return m;
}

if (process.argv.includes('--if-stale')) {
  let built = 0;
  try {
    built = statSync(join(out, 'app.js')).mtimeMs;
  } catch {
    // not built yet
  }
  if (built > newest(join(root, 'src'))) process.exit(0);
}
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(root, 'src', 'web', 'app.ts')],
  outfile: join(out, 'app.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'chrome120',
  legalComments: 'none',
  charset: 'utf8',
  logLevel: 'warning',
});
for (const f of ['index.html', 'style.css', 'favicon.svg']) copyFileSync(join(root, 'src', 'web', f), join(out, f));
