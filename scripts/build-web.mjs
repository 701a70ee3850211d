// Builds the browser client (src/web/) into dist/web/, the folder `e2ee-chat server --web-port` serves:
// one ES module bundle made by esbuild (platform=browser, so a Node built-in in the client core fails the
// build) and the static page and style sheet, copied as they are. Deterministic: the same sources give
// the same bytes, so the SHA-256 manifest the relay prints can be compared with a build of one's own.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'web');
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
