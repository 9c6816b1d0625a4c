import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../../src/agent/index.js';
import { silentLogger } from '../../src/common/index.js';
import type { CertificateIssuer } from '../../src/guest/index.js';

// A CA of the tests' own, made as an agent makes its own, in a private temporary directory;
// one per test process is enough.

let shared: Promise<CertificateAuthority> | undefined;
const made: string[] = [];
process.once('exit', () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** A CA of its own in a temporary directory, removed when the test process exits. */
export async function newTestCa(): Promise<CertificateAuthority> {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-ca-'));
  made.push(dir);
  return CertificateAuthority.open({ dir, logger: silentLogger() });
}

export function testCa(): Promise<CertificateAuthority> {
  shared ??= newTestCa();
  return shared;
}

/** What an agent gives a guest: certificates for `address`, valid 90 days. */
export async function testCertificates(address: string): Promise<CertificateIssuer> {
  const ca = await testCa();
  return { caCertificate: ca.certificate, issue: () => ca.issue({ address, validityDays: 90 }), renewBeforeMs: 30 * 86_400_000 };
}
