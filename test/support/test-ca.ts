import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../../src/agent/certificate-authority.js';
import { LocalProcessRunner } from '../../src/agent/index.js';
import { silentLogger } from '../../src/common/index.js';
import type { CertificateIssuer } from '../../src/guest/index.js';

// A CA of the tests' own, made as an agent makes its own (openssl, as the test's user), in a
// private temporary directory; one per test process is enough.

let shared: Promise<CertificateAuthority> | undefined;

export function testCa(): Promise<CertificateAuthority> {
  shared ??= mkdtemp(join(tmpdir(), 'coffer-ca-')).then((dir) =>
    CertificateAuthority.open({ dir, runner: new LocalProcessRunner(undefined), logger: silentLogger() }),
  );
  return shared;
}

/** What an agent gives a guest: certificates for `address`, valid 90 days. */
export async function testCertificates(address: string): Promise<CertificateIssuer> {
  const ca = await testCa();
  return { caCertificate: ca.certificate, issue: () => ca.issue({ address, validityDays: 90 }), renewBeforeMs: 30 * 86_400_000 };
}
