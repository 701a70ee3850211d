/**
 * Test certificates made with Debian's `openssl` into a temp folder: a CA, a relay certificate it
 * signed for `localhost` and 127.0.0.1, a second CA that signed nothing of ours, a relay certificate
 * for another name only, and a self-signed certificate made with the README's one command.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestCerts {
  dir: string;
  /** CA certificate (PEM file) that signed relayCert and wrongNameCert. */
  caFile: string;
  ca: Buffer;
  /** A CA that signed nothing the relay serves. */
  otherCaFile: string;
  otherCa: Buffer;
  /** The relay's certificate (DNS:localhost, IP:127.0.0.1) and key, PEM files. */
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
  /** Signed by the CA, for DNS:other.example only. */
  wrongNameCertFile: string;
  wrongNameKeyFile: string;
  /** Self-signed for localhost and 127.0.0.1, as README "Operating a relay" makes it. */
  selfSignedCertFile: string;
  selfSignedKeyFile: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function makeCa(dir: string, name: string): void {
  openssl(dir, ['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`]);
}

function makeLeaf(dir: string, ca: string, name: string, san: string): void {
  openssl(dir, ['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n`);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`]);
}

/** Makes every certificate of TestCerts in `dir` (about a second of openssl). */
export function makeCerts(dir: string): TestCerts {
  makeCa(dir, 'ca');
  makeCa(dir, 'other-ca');
  makeLeaf(dir, 'ca', 'relay', 'DNS:localhost,IP:127.0.0.1');
  makeLeaf(dir, 'ca', 'wrong-name', 'DNS:other.example');
  // README "Operating a relay", the test certificate command, as written there.
  openssl(dir, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '30',
    '-keyout', 'self.key', '-out', 'self.crt', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ]);
  const f = (n: string) => join(dir, n);
  return {
    dir,
    caFile: f('ca.crt'),
    ca: readFileSync(f('ca.crt')),
    otherCaFile: f('other-ca.crt'),
    otherCa: readFileSync(f('other-ca.crt')),
    certFile: f('relay.crt'),
    keyFile: f('relay.key'),
    cert: readFileSync(f('relay.crt')),
    key: readFileSync(f('relay.key')),
    wrongNameCertFile: f('wrong-name.crt'),
    wrongNameKeyFile: f('wrong-name.key'),
    selfSignedCertFile: f('self.crt'),
    selfSignedKeyFile: f('self.key'),
  };
}
