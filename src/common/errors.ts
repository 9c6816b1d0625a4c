// One error catalogue for every role. An error has a stable code, a message a user can act on,
// and optionally details and a cause. The API maps codes to HTTP statuses in one table
// (src/api/error-status.ts); the bus carries errors as WireError and rebuilds the same class.

export const errorCodes = [
  'BadRequest', // malformed or invalid input
  'ValidationError', // a request body failed its schema
  'Unauthorized', // missing, wrong or expired credentials
  'AdminRequired', // Trove's `Forbidden`: admin-only call by a non-admin (Trove answers 401)
  'PolicyNotAuthorized', // the policy forbids this action (403)
  'TenantMismatch', // the URL's project is not the token's project (403)
  'NotFound',
  'InstanceNotFound',
  'DatastoreNotFound',
  'DatastoreVersionNotFound', // Trove answers 400, not 404
  'DatastoreVersionInactive',
  'FlavorNotFound', // Trove answers 400
  'UnprocessableEntity', // the action gate: wrong state for this action (422)
  'OperationNotSupported', // the instance's datastore does not support this operation (Trove: 422)
  'DatabaseNotFound',
  'UserNotFound',
  'DatabaseAlreadyExists', // Trove answers 400
  'UserAlreadyExists', // Trove answers 400
  'RootHistoryNotFound', // root was never enabled on the instance (404)
  'QuotaExceeded', // 413
  'Conflict',
  'OverLimit', // quotas, sizes, rate limits (413)
  'NotImplemented', // an engine or driver does not support the operation (501)
  'GuestError', // the guest failed an operation (400, as Trove)
  'GuestTimeout', // the guest did not answer in time (400, as Trove)
  'BusTimeout', // an RPC call got no reply in time
  'BusUnavailable', // the transport is closed or cannot reach the broker
  'BusMessageRefused', // a receiver refused a bus message: unsigned, another key, misaimed, expired or replayed
  'IdentityUnavailable', // the external Keystone cannot be reached or refuses Coffer's service user (503)
  'ContractVersionUnsupported', // a receiver does not serve the contract version a message speaks
  'NoHostAvailable', // no agent is alive to place an instance
  'EngineError', // an engine command failed
  'TaskFailed',
  'BackupStorageUnavailable', // backup storage unreachable or failing (503)
  'ChecksumMismatch', // a backup object's bytes differ from the checksum recorded when it was stored (409)
  'BackupDecryptionFailed', // a backup object does not decrypt with the key given: wrong key or altered bytes (409)
  'BackupTooLarge', // the backup is larger than the volume asked for (403)
  'ReplicaSourceDeleteForbidden', // deleting an instance that has replicas (403, as Trove)
  'Internal',
] as const;

export type ErrorCode = (typeof errorCodes)[number];

export interface CofferErrorOptions {
  details?: string;
  cause?: unknown;
}

export class CofferError extends Error {
  readonly code: ErrorCode;
  readonly details: string | undefined;

  constructor(code: ErrorCode, message: string, options: CofferErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CofferError';
    this.code = code;
    this.details = options.details;
  }
}

export function isCofferError(err: unknown): err is CofferError {
  return err instanceof CofferError;
}

/** Convenience constructors for the codes used most. */
export const errors = {
  badRequest: (message: string) => new CofferError('BadRequest', message),
  notFound: (what: string) => new CofferError('NotFound', `Resource ${what} cannot be found.`),
  instanceNotFound: (id: string) =>
    new CofferError('InstanceNotFound', `Instance ${id} cannot be found.`),
  internal: (message: string, cause?: unknown) =>
    new CofferError('Internal', message, { cause }),
};

// Failures that may pass by themselves: the bus or a guest did not answer in time, the broker or
// a state database was briefly out of reach. A cast whose handler fails with one of them is
// offered again (a bounded number of times); any other failure would fail the same way again.
const transientCodes: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['BusTimeout', 'BusUnavailable', 'GuestTimeout']);
const transientSystemCodes: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN']);

export function isTransientError(err: unknown): boolean {
  for (let cause = err, depth = 0; cause !== undefined && cause !== null && depth < 5; depth++) {
    if (cause instanceof CofferError) {
      if (transientCodes.has(cause.code)) return true;
    } else if (typeof cause === 'object' && 'code' in cause && typeof cause.code === 'string' && transientSystemCodes.has(cause.code)) {
      return true;
    }
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return false;
}

/** The serialisable form of an error, as it crosses the bus. */
export interface WireError {
  code: ErrorCode;
  message: string;
  details?: string;
}

export function toWireError(err: unknown): WireError {
  if (err instanceof CofferError) {
    return err.details === undefined
      ? { code: err.code, message: err.message }
      : { code: err.code, message: err.message, details: err.details };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'Internal', message };
}

export function fromWireError(wire: WireError): CofferError {
  const code = (errorCodes as readonly string[]).includes(wire.code) ? wire.code : 'Internal';
  return new CofferError(code, wire.message, wire.details === undefined ? {} : { details: wire.details });
}
