import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CertificateAuthority, LocalProcessRunner } from '../../src/agent/index.js';
import { silentLogger } from '../../src/common/index.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { tempDataDir } from '../support/temp-dir.js';

// Coffer's CA with Debian's real openssl: made once and kept, brought by the operator, and
// issuing server certificates that a TLS client would accept for the instance's address.

const runner = new LocalProcessRunner(undefined);
const open = (dir: string, given?: { certFile: string; keyFile: string }) =>
  CertificateAuthority.open({ dir, runner, logger: silentLogger(), ...(given === undefined ? {} : { given }) });

const scratchDirs: string[] = [];
async function scratch(): Promise<string> {
  const dir = await tempDataDir('coffer-ca-t-');
  scratchDirs.push(dir);
  return dir;
}
after(async () => {
  for (const dir of scratchDirs) await rm(dir, { recursive: true, force: true });
});

describe('CertificateAuthority', () => {
  test('is made on first use with a private key, and the same one is opened again', async () => {
    const dir = join(await scratch(), 'ca');
    const first = await open(dir);
    const cert = new X509Certificate(first.certificate);
    assert.ok(cert.ca, 'a CA certificate');
    assert.equal((await stat(join(dir, 'ca.key'))).mode & 0o777, 0o600);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    const again = await open(dir);
    assert.equal(again.certificate, first.certificate);
  });

  test('issues a server certificate for the address (and DNS names), signed by the CA, with its own key', async () => {
    const ca = await open(join(await scratch(), 'ca'));
    const material = await ca.issue({ address: '127.77.1.2', dnsNames: ['db1.example.test'], validityDays: 30 });
    const cert = new X509Certificate(material.certificate);
    const caCert = new X509Certificate(material.caCertificate);
    assert.equal(material.caCertificate, ca.certificate);
    assert.ok(cert.checkIssued(caCert) && cert.verify(caCert.publicKey), 'signed by the CA');
    assert.ok(!cert.ca, 'not a CA itself');
    assert.equal(cert.checkIP('127.77.1.2'), '127.77.1.2');
    assert.equal(cert.checkIP('127.77.1.3'), undefined, 'no other address');
    assert.equal(cert.checkHost('db1.example.test'), 'db1.example.test');
    assert.ok(cert.checkPrivateKey(createPrivateKey(material.privateKey)), 'the key is the certificate’s');
    const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
    assert.ok(days > 29 && days <= 30, `valid 30 days, not ${days}`);
    const other = await ca.issue({ address: '127.77.1.2', validityDays: 30 });
    assert.notEqual(new X509Certificate(other.certificate).serialNumber, cert.serialNumber, 'a serial of its own');
    assert.notEqual(other.privateKey, material.privateKey, 'a key of its own');
  });

  test("an operator's CA is used as given; a key of another CA or a non-CA certificate is refused", async () => {
    const root = await scratch();
    const theirs = await open(join(root, 'theirs'));
    const given = { certFile: join(root, 'theirs', 'ca.crt'), keyFile: join(root, 'theirs', 'ca.key') };
    const used = await open(join(root, 'agent'), given);
    assert.equal(used.certificate, theirs.certificate);

    const other = await open(join(root, 'other'));
    assert.notEqual(other.certificate, theirs.certificate);
    await rejectsWithCode(open(join(root, 'agent'), { ...given, keyFile: join(root, 'other', 'ca.key') }), 'BadRequest');

    const leaf = await theirs.issue({ address: '127.0.0.1', validityDays: 1 });
    await writeFile(join(root, 'leaf.crt'), leaf.certificate);
    await writeFile(join(root, 'leaf.key'), leaf.privateKey);
    await rejectsWithCode(open(join(root, 'agent'), { certFile: join(root, 'leaf.crt'), keyFile: join(root, 'leaf.key') }), 'BadRequest');
    await rejectsWithCode(open(join(root, 'agent'), { certFile: join(root, 'missing.crt'), keyFile: given.keyFile }), 'BadRequest');
  });

  test('refuses an address that is not an IP address and a DNS name with odd characters', async () => {
    const ca = await open(join(await scratch(), 'ca'));
    await rejectsWithCode(ca.issue({ address: 'db.example', validityDays: 1 }), 'BadRequest');
    await rejectsWithCode(ca.issue({ address: '127.0.0.1', dnsNames: ['a,IP:10.0.0.1'], validityDays: 1 }), 'BadRequest');
  });
});
