// The parts of Trove's JSON views the CLI reads (trove-reference.md §2.2, §2.6, §2.7, §2.8). Everything
// is optional beyond the ids: the CLI must show what it gets, not crash on what it doesn't.

export interface InstanceAddress {
  address: string;
  type?: string;
  network?: string;
  port?: number;
}

export interface InstanceView {
  id: string;
  name: string;
  status: string;
  operating_status?: string;
  datastore?: { type: string | null; version: string | null; version_number?: string };
  flavor?: { id: string };
  volume?: { size?: number; used?: number };
  local_storage?: { used?: number };
  ip?: string[];
  addresses?: InstanceAddress[];
  hostname?: string;
  /** Not in Trove's view; read when Coffer adds it (several instances may share a host). */
  port?: number;
  fault?: { message: string; created?: string; details?: string | null };
  /** Coffer's: the step a running task's guest operation is on, and how far along it is */
  progress?: { step: string; percent: number; updated?: string };
  created?: string;
  updated?: string;
  service_status_updated?: string;
  configuration?: { id: string; name?: string };
  replica_of?: { id: string };
  replicas?: Array<{ id: string }>;
  region?: string;
  access?: { is_public?: boolean; allowed_cidrs?: string[] };
  /** Coffer's: the CA to verify the instance with, its certificate's expiry, the TLS port */
  tls?: { required?: boolean; ca_certificate?: string | null; expires?: string | null; port?: number | null };
  /** Coffer's: the moments a point-in-time restore of the instance can reach (UTC) */
  recoverable_window?: { earliest: string; latest: string };
  awaiting_adoption?: boolean;
  /** The generated root password: only in the create response, and only with root_on_create. */
  password?: string;
}

export interface FlavorView {
  /** An int only when Nova's id is all digits; clients fall back to `str_id`. */
  id: number | string | null;
  str_id?: string;
  name: string;
  ram?: number;
  vcpus?: number;
  disk?: number;
}

export interface DatastoreVersionView {
  id: string;
  name: string;
  version?: string;
  active?: boolean | number;
  /** Coffer's, for admins: why the agents found the version unusable and what to install. */
  inactive_reason?: string;
}

/** GET /mgmt/datastore-versions (admins) */
export interface MgmtDatastoreVersionView {
  id: string;
  name: string;
  version: string;
  datastore_name: string | null;
  active: boolean;
  default: boolean;
  inactive_reason?: string | null;
}

export interface DatastoreView {
  id: string;
  name: string;
  default_version?: string;
  versions?: DatastoreVersionView[];
}

export type ConfigurationValue = string | number | boolean;
export type ConfigurationValues = Record<string, ConfigurationValue>;

/** A configuration group: the list item, plus `values` and `instance_count` in the detail. */
export interface ConfigurationGroupView {
  id: string;
  name: string;
  description?: string | null;
  created?: string;
  updated?: string;
  datastore_version_id?: string;
  datastore_name?: string;
  datastore_version_name?: string;
  datastore_version_number?: string;
  /** Values of keys holding "password" come back as `***`. */
  values?: ConfigurationValues;
  instance_count?: number;
}

/** A setting a group may set. Trove leaves out `min` and `max` when they are 0 or absent. */
export interface ConfigurationParameterView {
  name: string;
  datastore_version_id?: string;
  restart_required?: boolean;
  type: 'integer' | 'float' | 'boolean' | 'string';
  min?: number;
  max?: number;
}

export interface PageLinks {
  links?: Array<{ rel: string; href: string }>;
}

export function flavorId(flavor: FlavorView): string {
  return flavor.str_id ?? String(flavor.id);
}

/** A backup (reference 2.9): `size` in GB once stored; Coffer adds `fail_reason` to FAILED and DELETE_FAILED ones. */
export interface BackupView {
  id: string;
  name: string;
  status: string;
  description?: string | null;
  instance_id?: string | null;
  parent_id?: string | null;
  project_id?: string;
  locationRef?: string | null;
  size?: number | null;
  /** Coffer's, while it runs: bytes stored so far */
  stored_bytes?: number;
  created?: string;
  updated?: string;
  /** absent once the datastore version it was taken on is gone */
  datastore?: { type: string; version: string; version_id?: string };
  fail_reason?: string;
  /** Coffer's: the latest verification; null (or absent from an older Coffer) when never verified */
  verification?: BackupVerificationView | null;
}

export interface BackupVerificationView {
  status: 'RUNNING' | 'PASSED' | 'FAILED' | string;
  started: string;
  finished: string | null;
  /** while RUNNING, the step it is at; then what it found */
  message: string | null;
  checks: Record<string, number>;
}

/** Where a project's (instance_id '') or one instance's backups are stored. */
export interface BackupStrategyView {
  project_id?: string;
  instance_id: string;
  backend?: string;
  swift_container: string;
}

/** Coffer's backup schedule of an instance (GET/PUT /instances/{id}/backup_schedule). */
export interface BackupScheduleView {
  id: string;
  instance_id: string;
  project_id?: string;
  name: string | null;
  pattern: string;
  incremental: boolean;
  retain_count: number | null;
  retain_days: number | null;
  /** absent from a server older than schedule verification */
  verify?: boolean;
  last_verified_backup_id?: string | null;
  next_run: string;
  last_run: string | null;
  last_backup_id: string | null;
  last_error: string | null;
}

/** One replica as its source's replication view shows it: lag is null while it is not connected. */
export interface ReplicaStreamView {
  id: string;
  streaming: boolean;
  lag_bytes: number | null;
  lag_seconds: number | null;
}

/**
 * Coffer's GET/PATCH /instances/{id}/replication: the group's settings (failover, synchronous)
 * are shown on the primary and a standalone instance; `position` is the engine's own log position.
 */
export type ReplicationView =
  | { role: 'standalone'; failover?: boolean; synchronous?: boolean }
  | { role: 'source'; failover?: boolean; synchronous?: boolean; position?: number | null; replicas: ReplicaStreamView[] }
  | {
      role: 'replica';
      replica_of: string | null;
      streaming: boolean;
      position?: number | null;
      lag_bytes: number | null;
      lag_seconds: number | null;
    };
