import type { ErrorCode } from '../common/index.js';

// The one place where an error code becomes an HTTP status. Trove maps exact exception classes,
// not message text, and its defaults surprise (reference 1.4): an unknown datastore version or
// flavor is 400, an admin-only call by a non-admin is 401. The Record type makes a code without
// an entry fail to compile; test/api/error-status.test.ts checks the same at run time.

export interface HttpFault {
  status: number;
  /** the key of Trove's error body: `{"<fault>": {"code": status, "message": ...}}` */
  fault: string;
}

const badRequest: HttpFault = { status: 400, fault: 'badRequest' };
const unauthorized: HttpFault = { status: 401, fault: 'unauthorized' };
const forbidden: HttpFault = { status: 403, fault: 'forbidden' };
const itemNotFound: HttpFault = { status: 404, fault: 'itemNotFound' };
const unprocessableEntity: HttpFault = { status: 422, fault: 'unprocessableEntity' };
const overLimit: HttpFault = { status: 413, fault: 'overLimit' };
const instanceFault: HttpFault = { status: 500, fault: 'instanceFault' };
const serviceUnavailable: HttpFault = { status: 503, fault: 'serviceUnavailable' };

export const errorStatus: Readonly<Record<ErrorCode, HttpFault>> = Object.freeze({
  BadRequest: badRequest,
  ValidationError: badRequest,
  Unauthorized: unauthorized,
  AdminRequired: unauthorized,
  PolicyNotAuthorized: forbidden,
  TenantMismatch: forbidden,
  NotFound: itemNotFound,
  InstanceNotFound: itemNotFound,
  DatastoreNotFound: itemNotFound,
  DatastoreVersionNotFound: badRequest,
  DatastoreVersionInactive: badRequest,
  FlavorNotFound: badRequest,
  UnprocessableEntity: unprocessableEntity,
  OperationNotSupported: unprocessableEntity,
  DatabaseNotFound: itemNotFound,
  UserNotFound: itemNotFound,
  DatabaseAlreadyExists: badRequest,
  UserAlreadyExists: badRequest,
  RootHistoryNotFound: itemNotFound,
  QuotaExceeded: overLimit,
  Conflict: { status: 409, fault: 'conflict' },
  OverLimit: overLimit,
  NotImplemented: { status: 501, fault: 'notImplemented' },
  // Trove answers guest failures and guest timeouts with 400; the API's only calls go to guests.
  GuestError: badRequest,
  GuestTimeout: badRequest,
  BusTimeout: badRequest,
  EngineError: badRequest,
  BusUnavailable: serviceUnavailable,
  // roles with different bus keys: the deployment is misconfigured, not the request
  BusMessageRefused: instanceFault,
  IdentityUnavailable: serviceUnavailable,
  // roles of different Coffer versions: the deployment is mismatched, not the request
  ContractVersionUnsupported: instanceFault,
  NoHostAvailable: serviceUnavailable,
  TaskFailed: instanceFault,
  BackupStorageUnavailable: serviceUnavailable,
  // Trove's RestoreBackupIntegrityError
  ChecksumMismatch: { status: 409, fault: 'conflict' },
  BackupDecryptionFailed: { status: 409, fault: 'conflict' },
  BackupTooLarge: forbidden,
  ReplicaSourceDeleteForbidden: forbidden,
  Internal: instanceFault,
});

/** Trove's fault names by status, for errors that come from the HTTP layer rather than our code. */
export const faultByStatus: Readonly<Record<number, string>> = Object.freeze({
  400: 'badRequest',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'itemNotFound',
  405: 'badMethod',
  409: 'conflict',
  413: 'overLimit',
  415: 'badMediaType',
  422: 'unprocessableEntity',
  500: 'instanceFault',
  501: 'notImplemented',
  503: 'serviceUnavailable',
});
