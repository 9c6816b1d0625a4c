import assert from 'node:assert/strict';
import { execFile as execFileCallback } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { CertificateAuthority } from '../../src/agent/index.js';
import { silentLogger } from '../../src/common/index.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { tempDataDir } from '../support/temp-dir.js';
import { until } from '../support/wait.js';

// Coffer's CA: made once and kept, brought by the operator, and issuing server certificates
// that a TLS client would accept for the instance's address. Debian's openssl is the
// independent judge of what it signs (verify, -text, asn1parse) and makes the operators' CAs.

const execFile = promisify(execFileCallback);
const openssl = async (...args: string[]) => (await execFile('openssl', args)).stdout;

const open = (dir: string, given?: { certFile: string; keyFile: string }) =>
  CertificateAuthority.open({ dir, logger: silentLogger(), ...(given === undefined ? {} : { given }) });

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

  test('a key made ahead of the next issue is that certificate’s alone: no two certificates share a key, each names its own', async () => {
    const ca = await open(join(await scratch(), 'ca'));
    const issued = [];
    for (let i = 0; i < 3; i++) {
      // the next key is made a moment after an issue (and after the CA opens)
      await until('a key made ahead', async () => (ca as unknown as { keyAhead?: Promise<unknown> }).keyAhead !== undefined, 10_000);
      issued.push(await ca.issue({ address: `127.77.1.${10 + i}`, validityDays: 30 }));
    }
    // and one asked for at once after another: made then
    issued.push(await ca.issue({ address: '127.77.1.20', validityDays: 30 }));
    const keys = issued.map((material) => createPrivateKey(material.privateKey));
    const publicKeys = keys.map((key) => sha1Hex(publicKeyBits(createPublicKey(key))));
    assert.equal(new Set(publicKeys).size, issued.length, 'no two share a key');
    for (const [i, material] of issued.entries()) {
      const cert = new X509Certificate(material.certificate);
      assert.ok(cert.checkPrivateKey(keys[i]!), 'the key is the certificate’s');
      const dir = await scratch();
      await writeFile(join(dir, 'server.crt'), material.certificate);
      const text = await openssl('x509', '-in', join(dir, 'server.crt'), '-noout', '-text');
      assert.equal(keyId(text, 'Subject'), publicKeys[i], 'its key identifier is its own key’s');
    }
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

  test('an issued certificate carries what the openssl-signed one did, and openssl verifies it against the CA', async () => {
    const dir = join(await scratch(), 'ca');
    const ca = await open(dir);
    const before = Math.floor(Date.now() / 1000) * 1000;
    const material = await ca.issue({ address: '127.77.1.2', dnsNames: ['db1.example.test', 'db1'], validityDays: 30 });
    const certFile = join(dir, '..', 'server.crt');
    await writeFile(certFile, material.certificate);
    await checkIssued(join(dir, 'ca.crt'), certFile, { address: '127.77.1.2', dnsNames: ['db1.example.test', 'db1'], signature: 'ecdsa-with-SHA256' });
    const cert = new X509Certificate(material.certificate);
    assert.ok(Date.parse(cert.validFrom) >= before && Date.parse(cert.validFrom) <= Date.now(), `valid from now, not ${cert.validFrom}`);
    assert.equal(Date.parse(cert.validTo) - Date.parse(cert.validFrom), 30 * 86_400_000, 'valid 30 days to the second');
    assert.equal(createPrivateKey(material.privateKey).asymmetricKeyDetails?.namedCurve, 'prime256v1', 'an EC P-256 key');

    // the CA it made: a P-256 key, basicConstraints critical CA:TRUE pathlen:0, keyUsage keyCertSign+cRLSign
    const caText = await openssl('x509', '-in', join(dir, 'ca.crt'), '-noout', '-text');
    assert.match(caText, /Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    assert.match(caText, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
    assert.match(caText, /Subject: CN = Coffer CA [0-9a-f]{8}\n/);
    assert.match(caText, /NIST CURVE: P-256/);
    const caCert = new X509Certificate(ca.certificate);
    assert.equal(Date.parse(caCert.validTo) - Date.parse(caCert.validFrom), 3650 * 86_400_000, 'a CA for ten years');
    assert.ok(caCert.verify(caCert.publicKey), 'self-signed');

    // an IPv6 address as the subjectAltName openssl reads back
    const v6 = await ca.issue({ address: '::1', validityDays: 1 });
    await writeFile(certFile, v6.certificate);
    await checkIssued(join(dir, 'ca.crt'), certFile, { address: '::1', dnsNames: [], signature: 'ecdsa-with-SHA256' });
  });

  test('serials are 16 random bytes, one of its own for every certificate', async () => {
    const ca = await open(join(await scratch(), 'ca'));
    const serials = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const serial = new X509Certificate((await ca.issue({ address: '127.0.0.1', validityDays: 1 })).certificate).serialNumber;
      // a positive INTEGER: a leading 00 where the first byte's top bit is set, fewer digits where it is 0
      assert.ok(/^(00[89A-F][0-9A-F]{31}|[0-9A-F]{1,32})$/.test(serial), `a 16-byte serial, not ${serial}`);
      serials.add(serial);
    }
    assert.equal(serials.size, 20);
  });

  test("an operator's RSA, EC P-384 and EC P-521 CAs sign as their keys do, and their subjects become the issuer byte for byte", async () => {
    const root = await scratch();
    const operatorCas = [
      // C as PrintableString, O and CN as UTF8String, and no subjectKeyIdentifier: the issued AKI is then its key's hash
      { name: 'rsa', keyArgs: ['-newkey', 'rsa:2048'], subject: '/C=DE/O=Example Ops/CN=Ops Root', extra: ['-addext', 'subjectKeyIdentifier=none', '-addext', 'authorityKeyIdentifier=none'], signature: 'sha256WithRSAEncryption' },
      { name: 'p384', keyArgs: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'], subject: '/O=Example Ops/OU=Databases/CN=Ops EC Root', extra: [], signature: 'ecdsa-with-SHA384' },
      { name: 'p521', keyArgs: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-521'], subject: '/CN=Ops P-521 Root', extra: [], signature: 'ecdsa-with-SHA512' },
    ];
    for (const given of operatorCas) {
      const dir = join(root, given.name);
      await mkdir(dir);
      const files = { certFile: join(dir, 'ca.crt'), keyFile: join(dir, 'ca.key') };
      await openssl('req', '-x509', ...given.keyArgs, '-nodes', '-keyout', files.keyFile, '-subj', given.subject, '-days', '30', ...given.extra, '-out', files.certFile);
      const ca = await open(join(root, `agent-${given.name}`), files);
      const material = await ca.issue({ address: '127.77.1.9', dnsNames: ['db9.example.test'], validityDays: 7 });
      const certFile = join(dir, 'server.crt');
      await writeFile(certFile, material.certificate);
      await checkIssued(files.certFile, certFile, { address: '127.77.1.9', dnsNames: ['db9.example.test'], signature: given.signature });
    }
  });

  test('a CA key of a kind it cannot sign with is refused when the CA is opened', async () => {
    const root = await scratch();
    const refused = [
      { name: 'ed25519', keyArgs: ['-newkey', 'ed25519'] },
      { name: 'rsa1024', keyArgs: ['-newkey', 'rsa:1024'] },
      { name: 'secp256k1', keyArgs: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1'] },
    ];
    for (const given of refused) {
      const files = { certFile: join(root, `${given.name}.crt`), keyFile: join(root, `${given.name}.key`) };
      await openssl('req', '-x509', ...given.keyArgs, '-nodes', '-keyout', files.keyFile, '-subj', `/CN=${given.name}`, '-days', '30', '-out', files.certFile);
      await assert.rejects(open(join(root, 'agent'), files), (err: Error) => {
        assert.equal((err as { code?: string }).code, 'BadRequest', err.message);
        assert.match(err.message, /Coffer signs with/);
        return true;
      }, given.name);
    }
    // a key under a passphrase, which the agent could not open unattended
    const files = { certFile: join(root, 'locked.crt'), keyFile: join(root, 'locked.key') };
    await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-passout', 'pass:secret', '-keyout', files.keyFile, '-subj', '/CN=locked', '-days', '30', '-out', files.certFile);
    await rejectsWithCode(open(join(root, 'agent'), files), 'BadRequest');
  });
});

/** The DER of each field of a certificate's tbsCertificate, as openssl's asn1parse finds them. */
async function tbsFields(certFile: string): Promise<Buffer[]> {
  const der = Buffer.from(new X509Certificate(await readFile(certFile)).raw);
  const fields: Buffer[] = [];
  for (const line of (await openssl('asn1parse', '-in', certFile)).split('\n')) {
    const m = /^\s*(\d+):d=2\s+hl=\s*(\d+)\s+l=\s*(\d+)/.exec(line);
    if (m !== null) fields.push(der.subarray(Number(m[1]), Number(m[1]) + Number(m[2]) + Number(m[3])));
  }
  return fields;
}

/**
 * What every issued certificate must carry, read by openssl: it verifies against the CA,
 * issuer = the CA's subject as encoded there, subject CN = the address, the extensions the
 * openssl-signed certificates had, SKI the hash of its key and AKI the CA's key id.
 */
async function checkIssued(caFile: string, certFile: string, expect: { address: string; dnsNames: string[]; signature: string }): Promise<void> {
  assert.equal((await openssl('verify', '-CAfile', caFile, certFile)).trim(), `${certFile}: OK`);
  const [caVersion, , , , , caSubject] = await tbsFields(caFile);
  const [version, , , issuer, , subject] = await tbsFields(certFile);
  assert.ok(caVersion !== undefined && version !== undefined && caSubject !== undefined && issuer !== undefined && subject !== undefined);
  assert.ok(issuer.equals(caSubject), `the issuer is the CA's subject byte for byte: ${issuer.toString('hex')} vs ${caSubject.toString('hex')}`);
  // subject: a single CN, the address as a UTF8String (as openssl wrote it)
  const der = (tag: number, content: Buffer) => Buffer.concat([Buffer.from([tag, content.length]), content]);
  const commonName = der(0x30, Buffer.concat([der(0x06, Buffer.from([0x55, 0x04, 0x03])), der(0x0c, Buffer.from(expect.address))]));
  assert.equal(subject.toString('hex'), der(0x30, der(0x31, commonName)).toString('hex'), 'subject CN=address, a UTF8String');

  const text = await openssl('x509', '-in', certFile, '-noout', '-text');
  assert.match(text, new RegExp(`Signature Algorithm: ${expect.signature}`));
  assert.match(text, /Version: 3 \(0x2\)/);
  assert.match(text, /Basic Constraints: critical\s+CA:FALSE\n/);
  assert.match(text, /Key Usage: critical\s+Digital Signature, Key Encipherment\n/);
  assert.match(text, /Extended Key Usage: \s+TLS Web Server Authentication\n/);
  const ip = expect.address === '::1' ? '0:0:0:0:0:0:0:1' : expect.address;
  assert.match(text, new RegExp(`Subject Alternative Name: \\s+${[`IP Address:${ip}`, ...expect.dnsNames.map((n) => `DNS:${n}`)].join(', ')}\n`));
  assert.equal((text.match(/^ +X509v3 (?!extensions:)/gm) ?? []).length, 6, 'those six extensions and no other');

  const cert = new X509Certificate(await readFile(certFile));
  const caCert = new X509Certificate(await readFile(caFile));
  assert.ok(cert.checkIssued(caCert) && cert.verify(caCert.publicKey), 'Node finds it signed by the CA');
  assert.equal(keyId(text, 'Subject'), sha1Hex(publicKeyBits(cert.publicKey)), 'SKI: the SHA-1 of its key');
  const caKeyId = keyId(await openssl('x509', '-in', caFile, '-noout', '-text'), 'Subject') ?? sha1Hex(publicKeyBits(caCert.publicKey));
  assert.equal(keyId(text, 'Authority'), caKeyId, "AKI: the CA's key id");
}

/** A key identifier extension's value in `openssl x509 -text` output, in lower-case hex. */
function keyId(text: string, which: 'Subject' | 'Authority'): string | undefined {
  return new RegExp(`X509v3 ${which} Key Identifier: \\s+(?:keyid:)?([0-9A-F:]+)\\n`).exec(text)?.[1]?.replace(/:/g, '').toLowerCase();
}

/** The subjectPublicKey BIT STRING's bits, which RFC 5280's key identifier hashes. */
function publicKeyBits(key: KeyObject): Buffer {
  if (key.asymmetricKeyType === 'rsa') return key.export({ type: 'pkcs1', format: 'der' });
  const { x, y } = key.export({ format: 'jwk' });
  return Buffer.concat([Buffer.from([4]), Buffer.from(x ?? '', 'base64url'), Buffer.from(y ?? '', 'base64url')]);
}

function sha1Hex(data: Buffer): string {
  return createHash('sha1').update(data).digest('hex');
}
