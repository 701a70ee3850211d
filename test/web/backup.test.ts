// One person, one key, across the page and the CLI (issue 18 point 2), in real Chromium and real CLI
// processes: a page makes a new key with its backup; `e2ee-chat key import` makes it a --home's identity
// (same fingerprint); `e2ee-chat key export --kdf pbkdf2` of that home imports into another browser
// (same fingerprint again); a scrypt export is refused by the page with code SCRYPT.
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Proc, tempDir } from '../client/procs.js';
import { launch, person, relayWithWeb } from './chromium.js';

const b = await launch(t);
const PASS = 'correct horse battery staple';

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Proc> {
  const p = new Proc(args, { E2EE_CHAT_BACKUP_PASSPHRASE: PASS, ...env });
  await p.exited;
  return p;
}

t.test('a backup made in the page imports into the CLI, and the CLI export imports into another browser', async (t) => {
  const { url } = await relayWithWeb(t);
  const dir = tempDir(t);
  const home = join(dir, 'home');

  const one = await person(t, b, url);
  const before = await one.page.getByTestId('own-fingerprint').textContent();
  await one.page.getByTestId('backup-toggle').click();
  await one.page.getByTestId('backup-pass').fill(PASS);
  await one.page.getByTestId('backup-new').click();
  await one.page.locator('[data-testid=backup-status][data-state=ok]').waitFor();
  const fp = await one.page.getByTestId('own-fingerprint').textContent();
  t.not(fp, before, 'the backup belongs to a new key (the old one cannot be read out)');
  const file = join(dir, 'page.backup');
  writeFileSync(file, await one.page.getByTestId('backup-text').inputValue(), { mode: 0o600 });

  const imported = await cli(['key', 'import', file, '--home', home, '--no-passphrase']);
  t.equal((await imported.exited).code, 0, imported.err.join('\n'));
  const shown = await cli(['key', 'show', '--home', home]);
  t.equal(shown.out[0], `fingerprint ${fp}`, "the CLI's home now holds the page's key");

  const back = join(dir, 'cli.backup');
  t.equal((await (await cli(['key', 'export', '--kdf', 'pbkdf2', '--out', back, '--home', home])).exited).code, 0);
  const scrypt = join(dir, 'cli-scrypt.backup');
  t.equal((await (await cli(['key', 'export', '--out', scrypt, '--home', home])).exited).code, 0);

  const two = await person(t, b, url);
  await two.page.getByTestId('backup-toggle').click();
  await two.page.getByTestId('import-text').fill(readFileSync(scrypt, 'utf8'));
  await two.page.getByTestId('import-pass').fill(PASS);
  await two.page.getByTestId('backup-import').click();
  await two.page.locator('[data-testid=backup-status][data-state=failed][data-code=SCRYPT]').waitFor();

  await two.page.getByTestId('import-text').fill(readFileSync(back, 'utf8'));
  await two.page.getByTestId('import-pass').fill('a wrong passphrase');
  await two.page.getByTestId('backup-import').click();
  await two.page.locator('[data-testid=backup-status][data-state=failed][data-code=BAD_PASSPHRASE]').waitFor();
  await two.page.getByTestId('import-pass').fill(PASS);
  await two.page.getByTestId('backup-import').click();
  await two.page.locator('[data-testid=backup-status][data-state=ok]').waitFor();
  t.equal(await two.page.getByTestId('own-fingerprint').textContent(), fp, 'the second browser holds the same key');
  await two.page.reload();
  await two.page.getByTestId('own-fingerprint').filter({ hasText: fp! }).waitFor();
  t.same([...one.errors, ...two.errors], [], 'no CSP violation, no script error');
});
