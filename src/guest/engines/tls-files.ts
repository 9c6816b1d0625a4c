import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CofferError } from '../../common/index.js';
import type { ProcessRunner } from '../process-runner.js';
import type { TlsMaterial } from './engine.js';
import { fileExists, writeEngineFile } from './engine-files.js';

// Where an instance's TLS files live and how they get there, the same for every engine: in the
// instance directory (the host's), the certificate and key handed to the engine's user with
// mode 0600, so that no other instance's user can read the key. Which engine setting names them,
// and how a running engine reloads them, is each engine's `tls.ts`.

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
}

export function tlsFiles(dir: string): TlsFiles {
  return { certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key'), caFile: join(dir, 'ca.crt') };
}

/** whether plaintext clients are refused: kept by the host, read when a configuration is rendered again */
function requiredMarker(dir: string): string {
  return join(dir, 'tls-required');
}

/** The files when the instance has its certificate; undefined before its host installed one. */
export async function installedTlsFiles(dir: string): Promise<TlsFiles | undefined> {
  const files = tlsFiles(dir);
  return (await fileExists(files.certFile)) && (await fileExists(files.keyFile)) ? files : undefined;
}

export async function writeTlsFiles(runner: ProcessRunner, dir: string, material: TlsMaterial): Promise<TlsFiles> {
  const files = tlsFiles(dir);
  // the key before its certificate: an engine that reads both between two writes fails its
  // reload (and keeps the old pair) rather than pairing the new certificate with the old key;
  // the CA's beside the certificate
  await writeEngineFile(runner, files.keyFile, material.privateKey);
  await Promise.all([writeEngineFile(runner, files.certFile, material.certificate), writeEngineFile(runner, files.caFile, material.caCertificate)]);
  return files;
}

/** The certificate the instance serves and the CA that signed it, as installed. */
export async function readInstalledCertificate(dir: string): Promise<{ certificate: X509Certificate; caCertificate: string } | undefined> {
  const files = tlsFiles(dir);
  try {
    const [certificate, caCertificate] = await Promise.all([readFile(files.certFile, 'utf8'), readFile(files.caFile, 'utf8')]);
    return { certificate: new X509Certificate(certificate), caCertificate };
  } catch {
    return undefined;
  }
}

export async function saveTlsRequired(dir: string, required: boolean): Promise<void> {
  await writeFile(requiredMarker(dir), required ? 'required\n' : 'optional\n', { mode: 0o600 });
}

export async function readTlsRequired(dir: string): Promise<boolean> {
  return (await readFile(requiredMarker(dir), 'utf8').catch(() => '')).trim() === 'required';
}

/**
 * Whether `access` asks to refuse plaintext clients; refused before an engine renders a
 * configuration that no client could connect to (TLS required without a certificate).
 */
export function checkTlsRequirement(access: { requireTls?: boolean } | null, files: TlsFiles | undefined): boolean {
  const required = access?.requireTls === true;
  if (required && files === undefined) {
    throw new CofferError('EngineError', 'TLS cannot be required: the instance has no certificate installed yet.');
  }
  return required;
}
