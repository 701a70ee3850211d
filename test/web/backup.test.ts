// One person, one key, across the page and the CLI (issue 18 point 2), in real Chromium and real CLI
// processes: the key a page makes on its first visit is kept with its backup (sealed under a code shown
// once); exporting downloads that backup and `e2ee-chat key import` makes it a --home's identity (same
// fingerprint); a new key made with a backup imports the same way; `e2ee-chat key export --kdf pbkdf2`
// of that home imports into another browser (same fingerprint again), which then exports that file; a
// scrypt export is refused by the page with code SCRYPT. The backup code stays on screen until the user
// says it is written down or saves it; a code never confirmed is said on the next visit.
import t from 'tap';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Proc, tempDir } from '../client/procs.js';
import { join as joinRoom, launch, person, READ_STORED_IDENTITY, relayWithWeb } from './chromium.js';

const b = await launch(t);
const PASS = 'correct horse battery staple';

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Proc> {
  const p = new Proc(args, { E2EE_CHAT_BACKUP_PASSPHRASE: PASS, ...env });
  await p.exited;
  return p;
}

/** What IndexedDB holds for the page's identity: field names, the keys' extractability, the backup's header. */
const STORED = `(async () => {${READ_STORED_IDENTITY}
  const b = JSON.parse(v.backup);
  return { fields: Object.keys(v).sort(), extractable: [v.oaep.extractable, v.pss.extractable], backup: v.backup, format: b.format, kdf: b.kdf.name };
})()`;

t.test("the key the page made on the first visit exports as its backup, which the CLI imports with the code shown once", async (t) => {
  const { url } = await relayWithWeb(t);
  const dir = tempDir(t);
  const one = await person(t, b, url);
  const fp = await one.page.getByTestId('own-fingerprint').textContent();
  await one.page.getByTestId('backup-code-view').waitFor();
  const code = (await one.page.getByTestId('backup-code').textContent())!;
  t.match(code, /^[2-9a-kmnp-z]{4}(-[2-9a-kmnp-z]{4}){5}$/, 'a backup code of six groups of four');
  const stored = (await one.page.evaluate(STORED)) as { fields: string[]; extractable: boolean[]; backup: string; format: string; kdf: string };
  t.same(stored.fields, ['backup', 'oaep', 'pss', 'spki'], 'IndexedDB holds the two keys, the public key and the sealed backup, no key bytes');
  t.same(stored.extractable, [false, false], 'both private keys are non-extractable');
  t.same([stored.format, stored.kdf], ['e2ee-chat identity key v1', 'pbkdf2-sha256'], 'the backup is in the format `key import` reads');
  t.notOk(stored.backup.includes(code), 'the code is not in the backup');

  // A reload: the same key, its backup still kept, the code not shown again.
  await one.page.reload();
  await one.page.getByTestId('own-fingerprint').filter({ hasText: fp! }).waitFor();
  t.equal(await one.page.getByTestId('backup-code-view').isHidden(), true, 'the code is shown only when the key is made');
  t.notOk((await one.page.content()).includes(code), 'nor anywhere in the page');
  await one.page.getByTestId('backup-toggle').click();
  const download = one.page.waitForEvent('download');
  await one.page.getByTestId('backup-export').click();
  await one.page.locator('[data-testid=backup-status][data-state=ok]').waitFor();
  const file = join(dir, 'first-visit.backup');
  await (await download).saveAs(file);
  chmodSync(file, 0o600); // as Chromium's own downloads are; the CLI refuses a key file others can read
  t.equal(readFileSync(file, 'utf8'), stored.backup, 'the download is the backup kept since the key was made');
  t.equal(await one.page.getByTestId('own-fingerprint').textContent(), fp, 'exporting keeps the key (no new key)');

  const wrong = await cli(['key', 'import', file, '--home', join(dir, 'wrong'), '--no-passphrase'], { E2EE_CHAT_BACKUP_PASSPHRASE: 'not the code at all' });
  t.equal((await wrong.exited).code, 4, 'a wrong code: status 4');
  const home = join(dir, 'home');
  const imported = await cli(['key', 'import', file, '--home', home, '--no-passphrase'], { E2EE_CHAT_BACKUP_PASSPHRASE: code });
  t.equal((await imported.exited).code, 0, imported.err.join('\n'));
  const shown = await cli(['key', 'show', '--home', home]);
  t.equal(shown.out[0], `fingerprint ${fp}`, "the CLI's home holds the key the page made on its first visit");

  // A key stored before backups were kept with each key (no backup field): export says so, with its code.
  await one.page.evaluate(`(async () => {
    const db = await new Promise((resolve) => { const r = indexedDB.open('e2ee-chat'); r.onsuccess = () => resolve(r.result); });
    const store = () => db.transaction('identity', 'readwrite').objectStore('identity');
    const v = await new Promise((resolve) => { const r = store().get('self'); r.onsuccess = () => resolve(r.result); });
    delete v.backup;
    await new Promise((resolve) => { const r = store().put(v, 'self'); r.onsuccess = () => resolve(undefined); });
  })()`);
  await one.page.reload();
  await one.page.getByTestId('own-fingerprint').filter({ hasText: fp! }).waitFor();
  await one.page.getByTestId('backup-toggle').click();
  await one.page.getByTestId('backup-export').click();
  await one.page.locator('[data-testid=backup-status][data-state=failed][data-code=NO_BACKUP]').waitFor();
  t.pass('a key without a kept backup: export fails with NO_BACKUP');
  t.same(one.errors, [], 'no CSP violation, no script error');
});

t.test('the backup code stays shown through the join until written down or saved; never confirmed, a later visit says so', async (t) => {
  const { url } = await relayWithWeb(t);
  const one = await person(t, b, url);
  const view = one.page.getByTestId('backup-code-view');
  await view.waitFor();
  const code = (await one.page.getByTestId('backup-code').textContent())!;
  await joinRoom(one.page, 'alice');
  t.ok(await view.isVisible(), 'joining the room does not hide the code');
  t.equal(await one.page.getByTestId('backup-code').textContent(), code, 'the same code');
  // Left without confirming: the code is gone for good, and the next visit says so.
  await one.page.reload();
  await one.page.getByTestId('own-fingerprint').filter({ hasText: ':' }).waitFor();
  await one.page.getByTestId('backup-unconfirmed').waitFor();
  t.ok(await view.isHidden(), 'the code itself is never shown again');
  t.notOk((await one.page.content()).includes(code));
  await one.page.getByTestId('backup-unconfirmed-done').click();
  await one.page.getByTestId('backup-unconfirmed').waitFor({ state: 'hidden' });
  await one.page.reload();
  await one.page.getByTestId('own-fingerprint').filter({ hasText: ':' }).waitFor();
  t.ok(await one.page.getByTestId('backup-unconfirmed').isHidden(), 'confirmed: no warning on later visits');

  // Saved as a file, then "written down": the file holds the code, the page no longer does.
  const two = await person(t, b, url);
  const code2 = (await two.page.getByTestId('backup-code').textContent())!;
  const download = two.page.waitForEvent('download');
  await two.page.getByTestId('backup-code-save').click();
  const saved = join(tempDir(t), 'code.txt');
  await (await download).saveAs(saved);
  t.ok(readFileSync(saved, 'utf8').includes(code2), 'the saved file holds the code');
  await two.page.getByTestId('backup-code-done').click();
  await two.page.getByTestId('backup-code-view').waitFor({ state: 'hidden' });
  t.notOk((await two.page.content()).includes(code2), 'done erases the code from the page');
  await two.page.reload();
  await two.page.getByTestId('own-fingerprint').filter({ hasText: ':' }).waitFor();
  t.ok(await two.page.getByTestId('backup-unconfirmed').isHidden(), 'saved: no warning on later visits');

  // A new key with a backup under a passphrase replaces the key: the old key's code is moot.
  const three = await person(t, b, url);
  await three.page.getByTestId('backup-toggle').click();
  await three.page.getByTestId('backup-pass').fill(PASS);
  await three.page.getByTestId('backup-new').click();
  await three.page.locator('[data-testid=backup-status][data-state=ok]').waitFor();
  t.ok(await three.page.getByTestId('backup-code-view').isHidden(), "the replaced key's code is no longer shown");
  await three.page.reload();
  await three.page.getByTestId('own-fingerprint').filter({ hasText: ':' }).waitFor();
  t.ok(await three.page.getByTestId('backup-unconfirmed').isHidden(), 'and no warning about it later');
  t.same([...one.errors, ...two.errors, ...three.errors], [], 'no CSP violation, no script error');
});

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
  await two.page.getByTestId('backup-export').click();
  await two.page.locator('[data-testid=backup-status][data-state=ok]').filter({ hasText: 'downloaded' }).waitFor();
  t.equal(await two.page.getByTestId('backup-text').inputValue(), readFileSync(back, 'utf8'), 'an imported key exports as the backup it came from');
  await two.page.reload();
  await two.page.getByTestId('own-fingerprint').filter({ hasText: fp! }).waitFor();
  t.same([...one.errors, ...two.errors], [], 'no CSP violation, no script error');
});
