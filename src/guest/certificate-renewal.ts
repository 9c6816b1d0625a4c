import { CofferError, type Logger } from '../common/index.js';
import type { InstanceTlsReport } from '../bus/index.js';
import type { TlsMaterial } from './engines/engine.js';
import { readInstalledCertificate } from './engines/tls-files.js';

// Keeps an instance's server certificate issued by the host's CA and current, and holds what the
// API shows of it (reported with heartbeats until the conductor has it: guest-heartbeats.ts).

/**
 * The host's CA as a guest sees it: it issues the instance's server certificate. The guest
 * decides when (none installed, expiring, or signed by another CA than the host's current one).
 */
export interface CertificateIssuer {
  /** the CA certificate (PEM) that signs what `issue` returns */
  readonly caCertificate: string;
  /** a new certificate and key for the instance's address */
  issue(): Promise<TlsMaterial>;
  /** a certificate with less than this left (ms) is renewed */
  readonly renewBeforeMs: number;
}

export interface CertificateRenewalOptions {
  issuer: CertificateIssuer;
  /** the instance's directory, where the engine keeps its certificate */
  dir: string;
  /** installs a certificate in the engine, served without a restart */
  install(material: TlsMaterial): Promise<void>;
  /** the port the engine serves TLS on */
  tlsPort: number;
  /** how often a prepared instance's certificate is checked for renewal */
  checkIntervalMs: number;
}

export class CertificateRenewal {
  private checkedAt = 0;
  /** what the API shows of the installed certificate: a new object only when it changes */
  report: InstanceTlsReport | undefined;

  constructor(private readonly options: CertificateRenewalOptions) {}

  /** whether a periodic check should look at the certificate again */
  due(now = Date.now()): boolean {
    return now - this.checkedAt >= this.options.checkIntervalMs;
  }

  /**
   * Installs a certificate from the host's CA when the instance has none, when it expires within
   * the renewal window, when another CA signed it (the operator changed the CA), or when `force`d.
   */
  async renew(force: boolean, log: Logger): Promise<void> {
    const { issuer, dir } = this.options;
    const installed = await readInstalledCertificate(dir);
    const why = force
      ? 'rotation asked for'
      : installed === undefined
        ? 'none installed'
        : installed.caCertificate !== issuer.caCertificate
          ? 'signed by another CA'
          : Date.parse(installed.certificate.validTo) - Date.now() < issuer.renewBeforeMs
            ? 'expires soon'
            : undefined;
    let current = installed;
    if (why !== undefined) {
      await this.options.install(await issuer.issue());
      current = await readInstalledCertificate(dir);
      if (current === undefined) throw new CofferError('EngineError', 'The certificate just installed cannot be read back.');
      log.info({ serial: current.certificate.serialNumber, expires: current.certificate.validTo, why }, 'certificate installed');
    }
    this.checkedAt = Date.now();
    if (current === undefined) return;
    const expiresAt = new Date(current.certificate.validTo).toISOString();
    if (this.report?.expiresAt !== expiresAt || this.report.caCertificate !== current.caCertificate) {
      this.report = { caCertificate: current.caCertificate, expiresAt, port: this.options.tlsPort };
    }
  }
}
