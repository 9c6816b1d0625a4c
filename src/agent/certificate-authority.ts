import { createPrivateKey, generateKeyPair as generateKeyPairCallback, randomBytes, X509Certificate } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CofferError } from '../common/index.js';
import type { Logger } from '../common/index.js';
import type { ProcessRunner, TlsMaterial } from '../guest/index.js';

// Coffer's CA: the certificate and key that sign every instance's server certificate. The
// agent holds it because it is the role that lives on the instance's host: it knows the
// instance's address and hands the key file to the instance's OS user, and no certificate or
// key ever crosses the bus. The API never needs the key: guests report the CA certificate in
// their heartbeats. Generated into the data directory on first start unless the operator
// brings one (their own CA, or the same one on every agent host of a deployment).
//
// The signing runs Debian's openssl (x509 -new, OpenSSL 3.0) as the agent's own user: Node
// can parse certificates but not issue them, and openssl is on every host an engine runs on.
// Keys are ECDSA P-256, made by Node's crypto, which every engine's OpenSSL serves.

const generateKeyPair = promisify(generateKeyPairCallback);
const opensslTimeoutMs = 30_000;
const caValidityDays = 3650;

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

function keyPair() {
  return generateKeyPair('ec', {
    namedCurve: 'P-256',
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
}

/** A subject value openssl takes verbatim between slashes. */
function subject(commonName: string): string {
  if (!/^[A-Za-z0-9 .:_-]+$/.test(commonName)) throw new CofferError('BadRequest', `Invalid certificate name "${commonName}".`);
  return `/CN=${commonName}`;
}

function dnsName(name: string): string {
  if (!/^(?=.{1,253}$)[A-Za-z0-9*]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(name)) {
    throw new CofferError('BadRequest', `Invalid DNS name "${name}" for a certificate.`);
  }
  return `DNS:${name}`;
}

export class CertificateAuthority {
  private constructor(
    /** the CA certificate in PEM, as clients get it */
    readonly certificate: string,
    private readonly files: CaFiles,
    private readonly workDir: string,
    private readonly runner: ProcessRunner,
  ) {}

  /**
   * The operator's CA when `given` names its files, else the one in `dir`, made there on first
   * use (key 0600, directory 0700: no engine user can read it).
   */
  static async open(options: { dir: string; given?: CaFiles; runner: ProcessRunner; logger: Logger }): Promise<CertificateAuthority> {
    const { dir, given, runner, logger } = options;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    const files = given ?? { certFile: join(dir, 'ca.crt'), keyFile: join(dir, 'ca.key') };
    let certificate = await readFile(files.certFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' && given === undefined) return undefined;
      throw new CofferError('BadRequest', `Cannot read the CA certificate ${files.certFile}: ${err.message}`);
    });
    if (certificate === undefined) {
      certificate = await CertificateAuthority.generate(files, dir, runner);
      logger.info({ certFile: files.certFile }, "generated Coffer's CA");
    }
    const ca = new CertificateAuthority(certificate, files, dir, runner);
    await ca.check();
    return ca;
  }

  private static async generate(files: CaFiles, dir: string, runner: ProcessRunner): Promise<string> {
    const { privateKey } = await keyPair();
    // written under temporary names and renamed: a crash never leaves a key without its certificate
    const keyTemp = `${files.keyFile}.new`;
    const certTemp = `${files.certFile}.new`;
    await writeFile(keyTemp, privateKey, { mode: 0o600 });
    await runner.run(
      'openssl',
      [
        'req', '-x509', '-new', '-key', keyTemp, '-subj', subject(`Coffer CA ${randomBytes(4).toString('hex')}`),
        '-days', String(caValidityDays), '-set_serial', `0x${randomBytes(16).toString('hex')}`,
        '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0',
        '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
        '-out', certTemp,
      ],
      { timeoutMs: opensslTimeoutMs, cwd: dir },
    );
    await rename(keyTemp, files.keyFile);
    await rename(certTemp, files.certFile);
    return readFile(files.certFile, 'utf8');
  }

  /** Refuses a CA that cannot sign: not a CA, expired, or a key that is not its certificate's. */
  private async check(): Promise<void> {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(this.certificate);
    } catch (err) {
      throw new CofferError('BadRequest', `${this.files.certFile} is not a PEM certificate.`, { cause: err });
    }
    if (!cert.ca) throw new CofferError('BadRequest', `${this.files.certFile} is not a CA certificate (basicConstraints CA:TRUE).`);
    if (Date.parse(cert.validTo) <= Date.now()) throw new CofferError('BadRequest', `The CA certificate ${this.files.certFile} has expired.`);
    const key = createPrivateKey(await readFile(this.files.keyFile, 'utf8').catch((err: Error) => {
      throw new CofferError('BadRequest', `Cannot read the CA key ${this.files.keyFile}: ${err.message}`);
    }));
    if (!cert.checkPrivateKey(key)) {
      throw new CofferError('BadRequest', `The CA key ${this.files.keyFile} does not belong to the certificate ${this.files.certFile}.`);
    }
  }

  /** A server certificate for one instance, with a key made for it alone. */
  async issue(request: IssueRequest): Promise<TlsMaterial> {
    if (isIP(request.address) === 0) throw new CofferError('BadRequest', `Invalid instance address "${request.address}".`);
    const names = [`IP:${request.address}`, ...(request.dnsNames ?? []).map(dnsName)];
    const { publicKey, privateKey } = await keyPair();
    const work = await mkdtemp(join(this.workDir, 'issue-'));
    try {
      const publicKeyFile = join(work, 'server.pub');
      const extFile = join(work, 'server.ext');
      const certFile = join(work, 'server.crt');
      await writeFile(publicKeyFile, publicKey, { mode: 0o600 });
      await writeFile(
        extFile,
        [
          'basicConstraints=critical,CA:FALSE',
          'keyUsage=critical,digitalSignature,keyEncipherment',
          'extendedKeyUsage=serverAuth',
          `subjectAltName=${names.join(',')}`,
          'subjectKeyIdentifier=hash',
          'authorityKeyIdentifier=keyid',
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      await this.runner.run(
        'openssl',
        [
          'x509', '-new', '-force_pubkey', publicKeyFile, '-subj', subject(request.address),
          '-CA', this.files.certFile, '-CAkey', this.files.keyFile,
          '-set_serial', `0x${randomBytes(16).toString('hex')}`, '-days', String(request.validityDays),
          '-extfile', extFile, '-out', certFile,
        ],
        { timeoutMs: opensslTimeoutMs, cwd: work },
      );
      return { certificate: await readFile(certFile, 'utf8'), privateKey, caCertificate: this.certificate };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
}
