import type { CertificateIssuer, TlsMaterial } from '../guest/index.js';
import type { CertificateAuthority } from './certificate-authority.js';

/** how long after its create a guest's first certificate may still be the one signed then (a prepare resent late) */
export const firstCertificateUseMs = 3_600_000;

export interface InstanceCertificatesOptions {
  ca: Pick<CertificateAuthority, 'certificate' | 'issue'>;
  address: string;
  validityDays: number;
  /** one already being signed for a new instance, beside its create: what its guest's first issue takes */
  first?: Promise<TlsMaterial>;
  now?: () => number;
}

/**
 * The issuer a guest renews its instance's certificate with. Only the first issue takes `first`,
 * and only within firstCertificateUseMs: a guest that had a certificate already renews months
 * later, and then with one signed then.
 */
export function instanceCertificates({ ca, address, validityDays, first, now = Date.now }: InstanceCertificatesOptions): CertificateIssuer {
  let early = first;
  const earlyUntil = now() + firstCertificateUseMs;
  return {
    caCertificate: ca.certificate,
    issue: () => {
      const taken = now() < earlyUntil ? early : undefined;
      early = undefined;
      return taken ?? ca.issue({ address, validityDays });
    },
    renewBeforeMs: (validityDays * 86_400_000) / 3,
  };
}
