import { CofferError } from '../common/index.js';

// The errors the adapters answer with, worded alike whatever the storage. `where` names the
// endpoint (scheme, host and port) or the directory, never a credential.

export function storageUnreachable(where: string, cause: unknown): CofferError {
  return new CofferError(
    'BackupStorageUnavailable',
    `Backup storage at ${where} cannot be reached (${describeCause(cause)}): check that it runs and that this host can reach it.`,
    { cause },
  );
}

export function transferBrokenOff(where: string, name: string, cause: unknown): CofferError {
  return new CofferError(
    'BackupStorageUnavailable',
    `Backup storage at ${where} broke off reading backup object ${name} (${describeCause(cause)}): the connection failed, or the storage found a damaged part of the object; check the storage's logs.`,
    { cause },
  );
}

export function storageFailed(where: string, what: string, status: number, cause?: unknown): CofferError {
  return new CofferError(
    'BackupStorageUnavailable',
    `Backup storage at ${where} failed to ${what} (HTTP ${status}): check the storage's health and logs.`,
    cause === undefined ? {} : { cause },
  );
}

export function storageRefusedCredentials(where: string, what: string, cause?: unknown): CofferError {
  return new CofferError(
    'Unauthorized',
    `Backup storage at ${where} refused to ${what} with the credentials given: check the storage credentials in Coffer's configuration.`,
    cause === undefined ? {} : { cause },
  );
}

export function containerMissing(container: string, where: string): CofferError {
  return new CofferError(
    'NotFound',
    `Backup container ${container} does not exist at ${where}: check the container name, or create it (a backup does so).`,
  );
}

export function objectMissing(container: string, name: string, where: string): CofferError {
  return new CofferError('NotFound', `Backup object ${name} does not exist in container ${container} at ${where}.`);
}

export function checksumMismatch(container: string, name: string, expected: string, actual: string): CofferError {
  return new CofferError(
    'ChecksumMismatch',
    `Backup object ${name} in container ${container} does not match its checksum (SHA-256 ${actual}, expected ${expected}): the stored bytes were altered or damaged.`,
  );
}

/** The system error code or name behind a failed request, e.g. ECONNREFUSED or TimeoutError. */
export function describeCause(cause: unknown): string {
  for (let current = cause, depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    if (typeof current === 'object') {
      const code = (current as { code?: unknown }).code;
      if (typeof code === 'string' && code !== '') return code;
      const name = (current as { name?: unknown }).name;
      if (name === 'TimeoutError') return 'timed out';
    }
    current = current instanceof Error ? current.cause : undefined;
  }
  return cause instanceof Error ? cause.message : String(cause);
}

/** Scheme, host and port of a URL: what error messages name. */
export function endpointOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid URL)';
  }
}
