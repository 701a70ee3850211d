/**
 * The passphrase floor of a new identity (src/client/home.ts, issue 14 point 5): at least 12 characters
 * and not one or two repeated, refused with WEAK_PASSPHRASE and a generated suggestion that passes it.
 */
import t from 'tap';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkNewPassphrase, IdentityError, MIN_PASSPHRASE_CHARS, openIdentity, SUGGESTION_WORDS, suggestPassphrase } from '../../src/client/home.js';

t.test('short or repetitive passphrases are refused with WEAK_PASSPHRASE; 12 varied characters pass', async (t) => {
  for (const weak of ['pw', 'x', 'hunter2', 'elevenchars', 'aaaaaaaaaaaaaaaa', 'abababababab', '\u00e9'.repeat(11) + 'e\u0301']) {
    t.throws(() => checkNewPassphrase(weak), { code: 'WEAK_PASSPHRASE' }, JSON.stringify(weak));
  }
  t.doesNotThrow(() => checkNewPassphrase('correct horse'), '13 characters');
  t.doesNotThrow(() => checkNewPassphrase('pässwörtchen'), '12 code points, non-ASCII');
  t.equal(MIN_PASSPHRASE_CHARS, 12);
});

t.test('a suggestion is six words from node:crypto randomness and passes the floor', async (t) => {
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const s = suggestPassphrase();
    t.equal(s.split('-').length, SUGGESTION_WORDS);
    t.doesNotThrow(() => checkNewPassphrase(s));
    seen.add(s);
  }
  t.equal(seen.size, 50, 'no two of 50 alike');
  try {
    checkNewPassphrase('pw');
  } catch (e) {
    t.type(e, IdentityError);
    const m = /for example: ([a-z]+(?:-[a-z]+){5})$/.exec((e as Error).message);
    t.ok(m, 'the refusal carries a suggestion');
  }
});

t.test('openIdentity refuses to create a key under a weak passphrase, and writes nothing', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'e2ee-home-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  await t.rejects(openIdentity(home, { given: 'pw', none: false }), { code: 'WEAK_PASSPHRASE' });
  t.notOk(existsSync(join(home, 'identity.key')));
});
