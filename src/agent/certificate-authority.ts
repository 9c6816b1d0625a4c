// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata API
// before it loads: this import must stay above the library's.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, generateKeyPair as generateKeyPairCallback, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CofferError } from '../common/index.js';
import type { Logger } from '../common/index.js';
import type { TlsMaterial } from '../guest/index.js';

// Coffer's CA: the certificate and key that sign every instance's server certificate. The
// agent holds it because it is the role that lives on the instance's host: it knows the
// instance's address and hands the key file to the instance's OS user, and no certificate or
// key ever crosses the bus. The API never needs the key: guests report the CA certificate in
// their heartbeats. Generated into the data directory on first start unless the operator
// brings one (their own CA, or the same one on every agent host of a deployment).
//
// Certificates are built in the agent's own process with @peculiar/x509 and signed by Node's
// WebCrypto: no process is spawned on an instance's create. Instance keys (and a generated CA's)
// are ECDSA P-256, made by Node's crypto, which every engine's OpenSSL serves; an operator's CA
// key may be EC (P-256, P-384, P-521) or RSA (2048 bits or more).

const generateKeyPair = promisify(generateKeyPairCallback);
const crypto = webcrypto;
const caValidityDays = 3650;
const dayMs = 86_400_000;

export interface CaFiles {
  certFile: string;
  keyFile: string;
}

export interface IssueRequest {
  /** the instance's address, the certificate's subject and IP subjectAltName */
  address: string;
  /** further DNS subjectAltNames, where a deployment names its instances */
  dnsNames?: readonly string[];
  validityDays: number;
}

/** The CA key as WebCrypto signs with it, and the signature algorithm that goes with it. */
interface Signer {
  key: webcrypto.CryptoKey;
  algorithm: webcrypto.EcdsaParams | webcrypto.Algorithm;
}

const curves: Record<string, { namedCurve: string; hash: string }> = {
  prime256v1: { namedCurve: 'P-256', hash: 'SHA-256' },
  secp384r1: { namedCurve: 'P-384', hash: 'SHA-384' },
  secp521r1: { namedCurve: 'P-521', hash: 'SHA-512' },
};

/** The key's signer, or a refusal naming what it is when Coffer cannot sign with it. */
async function signerFor(key: KeyObject, keyFile: string): Promise<Signer> {
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  if (key.asymmetricKeyType === 'ec') {
    const curve = curves[key.asymmetricKeyDetails?.namedCurve ?? ''];
    if (curve === undefined) {
      throw new CofferError('BadRequest', `The CA key ${keyFile} is on the curve ${key.asymmetricKeyDetails?.namedCurve ?? '(unknown)'}; Coffer signs with EC keys on P-256, P-384 or P-521, or RSA keys.`);
    }
    const imported = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'ECDSA', namedCurve: curve.namedCurve }, false, ['sign']);
    return { key: imported, algorithm: { name: 'ECDSA', hash: curve.hash } };
  }
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw new CofferError('BadRequest', `The CA key ${keyFile} is a ${bits}-bit RSA key; Coffer signs with RSA keys of 2048 bits or more.`);
    const algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    return { key: await crypto.subtle.importKey('pkcs8', pkcs8, algorithm, false, ['sign']), algorithm };
  }
  throw new CofferError('BadRequest', `The CA key ${keyFile} is a ${key.asymmetricKeyType ?? 'secret'} key; Coffer signs with EC (P-256, P-384, P-521) or RSA keys.`);
}

function keyPair() {
  return generateKeyPair('ec', { namedCurve: 'P-256' });
}

function publicKeyOf(key: KeyObject): x509.PublicKey {
  return new x509.PublicKey(key.export({ type: 'spki', format: 'der' }));
}

/** A server certificate's own key, with what the certificate says of it. */
interface ServerKey {
  privateKey: KeyObject;
  publicKey: x509.PublicKey;
  keyId: x509.SubjectKeyIdentifierExtension;
}

async function serverKey(): Promise<ServerKey> {
  const { publicKey, privateKey } = await keyPair();
  const spki = publicKeyOf(publicKey);
  return { privateKey, publicKey: spki, keyId: await x509.SubjectKeyIdentifierExtension.create(spki, false, crypto) };
}

/**
 * How long after an issue the next server key is made: a create's certificate is signed on its
 * path, beside its guest's start, and the key's making and its identifier (three round trips
 * through the thread pool while the event loop is at its busiest) came first. Made once the
 * create is over (a Redis create takes 50 to 100 ms here), the next issue finds it ready; creates
 * closer together than that make their own keys, as before.
 */
const keyAheadDelayMs = 100;

/** A single-CN name, from characters that need no escaping anywhere a client prints it. */
function commonName(value: string): x509.Name {
  if (!/^[A-Za-z0-9 .:_-]+$/.test(value)) throw new CofferError('BadRequest', `Invalid certificate name "${value}".`);
  return new x509.Name([{ CN: [{ utf8String: value }] }]); // UTF8String, as openssl wrote it
}

function dnsName(name: string): x509.JsonGeneralName {
  if (!/^(?=.{1,253}$)[A-Za-z0-9*]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(name)) {
    throw new CofferError('BadRequest', `Invalid DNS name "${name}" for a certificate.`);
  }
  return { type: 'dns', value: name };
}

/** From `now`, to the second (the resolution of a certificate's times), for `days`. */
function validity(days: number): { notBefore: Date; notAfter: Date } {
  const notBefore = new Date(Math.floor(Date.now() / 1000) * 1000);
  return { notBefore, notAfter: new Date(notBefore.getTime() + days * dayMs) };
}

/** PEM with 64-column lines and a final newline, as openssl writes it. */
function pem(cert: x509.X509Certificate): string {
  return `${cert.toString('pem')}\n`;
}

export class CertificateAuthority {
  private constructor(
    /** the CA certificate in PEM, as clients get it */
    readonly certificate: string,
    private readonly signer: Signer,
    /** the CA certificate's subject, as encoded there: every issued certificate's issuer */
    private readonly issuer: x509.Name,
    /** the extensions every server certificate carries alike */
    private readonly serverExtensions: readonly x509.Extension[],
  ) {
    this.makeKeyAhead();
  }

  /** the next server certificate's key, made ahead; each is taken by one issue only */
  private keyAhead: Promise<ServerKey> | undefined;
  private keyAheadTimer: NodeJS.Timeout | undefined;

  /** The key made ahead if there is one (the next one made a moment later), else one made now. */
  private takeKey(): Promise<ServerKey> {
    const key = this.keyAhead ?? serverKey();
    this.keyAhead = undefined;
    this.makeKeyAhead();
    return key;
  }

  private makeKeyAhead(): void {
    clearTimeout(this.keyAheadTimer);
    this.keyAheadTimer = setTimeout(() => {
      const made = serverKey();
      // a key that could not be made is made again by the issue that needs it
      made.catch(() => {
        if (this.keyAhead === made) this.keyAhead = undefined;
      });
      this.keyAhead = made;
    }, keyAheadDelayMs);
    // never keeps the agent's process alive
    this.keyAheadTimer.unref();
  }

  /**
   * The operator's CA when `given` names its files, else the one in `dir`, made there on first
   * use (key 0600, directory 0700: no engine user can read it). Refuses a CA it could not sign
   * with: not a CA, expired, a key that is not its certificate's or of a kind it does not sign with.
   */
  static async open(options: { dir: string; given?: CaFiles; logger: Logger }): Promise<CertificateAuthority> {
    const { dir, given, logger } = options;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    const files = given ?? { certFile: join(dir, 'ca.crt'), keyFile: join(dir, 'ca.key') };
    let certificate = await readFile(files.certFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' && given === undefined) return undefined;
      throw new CofferError('BadRequest', `Cannot read the CA certificate ${files.certFile}: ${err.message}`);
    });
    if (certificate === undefined) {
      certificate = await CertificateAuthority.generate(files);
      logger.info({ certFile: files.certFile }, "generated Coffer's CA");
    }
    return CertificateAuthority.load(certificate, files);
  }

  private static async generate(files: CaFiles): Promise<string> {
    const { publicKey, privateKey } = await keyPair();
    const signer = await signerFor(privateKey, files.keyFile);
    const name = commonName(`Coffer CA ${randomBytes(4).toString('hex')}`);
    const caKey = publicKeyOf(publicKey);
    const keyId = Buffer.from(await caKey.getKeyIdentifier(crypto)).toString('hex');
    const cert = await x509.X509CertificateGenerator.create(
      {
        serialNumber: randomBytes(16).toString('hex'),
        subject: name,
        issuer: name,
        ...validity(caValidityDays),
        publicKey: caKey,
        signingKey: signer.key,
        signingAlgorithm: signer.algorithm,
        extensions: [
          new x509.SubjectKeyIdentifierExtension(keyId),
          new x509.AuthorityKeyIdentifierExtension(keyId),
          new x509.BasicConstraintsExtension(true, 0, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        ],
      },
      crypto,
    );
    // written under temporary names and renamed: a crash never leaves a key without its certificate
    const keyTemp = `${files.keyFile}.new`;
    const certTemp = `${files.certFile}.new`;
    await writeFile(keyTemp, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await writeFile(certTemp, pem(cert), { mode: 0o644 });
    await rename(keyTemp, files.keyFile);
    await rename(certTemp, files.certFile);
    return readFile(files.certFile, 'utf8');
  }

  private static async load(certificate: string, files: CaFiles): Promise<CertificateAuthority> {
    let cert: X509Certificate;
    let parsed: x509.X509Certificate;
    try {
      cert = new X509Certificate(certificate);
      parsed = new x509.X509Certificate(cert.raw);
    } catch (err) {
      throw new CofferError('BadRequest', `${files.certFile} is not a PEM certificate.`, { cause: err });
    }
    if (!cert.ca) throw new CofferError('BadRequest', `${files.certFile} is not a CA certificate (basicConstraints CA:TRUE).`);
    if (Date.parse(cert.validTo) <= Date.now()) throw new CofferError('BadRequest', `The CA certificate ${files.certFile} has expired.`);
    const keyText = await readFile(files.keyFile, 'utf8').catch((err: Error) => {
      throw new CofferError('BadRequest', `Cannot read the CA key ${files.keyFile}: ${err.message}`);
    });
    let key: KeyObject;
    try {
      key = createPrivateKey(keyText);
    } catch (err) {
      throw new CofferError('BadRequest', `The CA key ${files.keyFile} is not an unencrypted PEM private key.`, { cause: err });
    }
    if (!cert.checkPrivateKey(key)) {
      throw new CofferError('BadRequest', `The CA key ${files.keyFile} does not belong to the certificate ${files.certFile}.`);
    }
    const signer = await signerFor(key, files.keyFile);
    // Clients find the CA by the issued certificates' issuer: the subject must go there as the
    // very bytes the CA certificate holds, which the library writes back from what it parsed.
    const issuer = parsed.subjectName;
    if (!Buffer.from(cert.raw).includes(Buffer.from(issuer.toArrayBuffer()))) {
      throw new CofferError('BadRequest', `The subject of the CA certificate ${files.certFile} is encoded in a way Coffer cannot copy exactly into the certificates it issues.`);
    }
    // the CA's own key identifier when its certificate has one, else the SHA-1 of its key that
    // openssl would have put there
    const caKeyId = parsed.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId
      ?? Buffer.from(await parsed.publicKey.getKeyIdentifier(crypto)).toString('hex');
    const serverExtensions = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.AuthorityKeyIdentifierExtension(caKeyId),
    ];
    return new CertificateAuthority(certificate, signer, issuer, serverExtensions);
  }

  /** A server certificate for one instance, with a key made for it alone. */
  async issue(request: IssueRequest): Promise<TlsMaterial> {
    if (isIP(request.address) === 0) throw new CofferError('BadRequest', `Invalid instance address "${request.address}".`);
    const subject = commonName(request.address);
    const names: x509.JsonGeneralName[] = [{ type: 'ip', value: request.address }, ...(request.dnsNames ?? []).map(dnsName)];
    const { privateKey, publicKey: serverKey, keyId } = await this.takeKey();
    const cert = await x509.X509CertificateGenerator.create(
      {
        serialNumber: randomBytes(16).toString('hex'),
        subject,
        issuer: this.issuer,
        ...validity(request.validityDays),
        publicKey: serverKey,
        signingKey: this.signer.key,
        signingAlgorithm: this.signer.algorithm,
        extensions: [
          ...this.serverExtensions,
          new x509.SubjectAlternativeNameExtension(names),
          keyId,
        ],
      },
      crypto,
    );
    return {
      certificate: pem(cert),
      privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      caCertificate: this.certificate,
    };
  }
}
