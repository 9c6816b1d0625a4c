// The state store port: every role that owns state (api, taskmanager, conductor) talks to the
// state database only through these repositories. Rows are camelCase TypeScript objects; the
// adapter maps them to snake_case columns. Times are Date objects in UTC.

import type { ConfigurationParameter, ConfigurationValues, EngineCapabilities, EngineMetricsSample } from '../common/index.js';

export type TaskStatusName =
  | 'NONE'
  | 'BUILDING'
  | 'DELETING'
  | 'REBOOTING'
  | 'RESIZING'
  | 'RESTART_REQUIRED'
  | 'UPDATING'
  | 'UPDATING_ERROR_ACCESS'
  | 'BUILDING_ERROR_SERVER'
  | 'BUILDING_ERROR_TIMEOUT_GA'
  | 'DELETING_ERROR'
  // Coffer's stop and start (issue 13): STOPPED is where a stopped instance rests, as an instance
  // rests in RESTART_REQUIRED, until its owner starts it; the other two are the actions running.
  | 'STOPPING'
  | 'STOPPED'
  | 'STARTING'
  // a replica being detached from its primary (Trove's DETACHING)
  | 'DETACHING'
  // a replication group's switchover (promote_to_replica_source) and failover (eject_replica_source)
  | 'PROMOTING'
  | 'EJECTING'
  // Trove's upgrade to another datastore version (PATCH datastore_version)
  | 'UPGRADING';

/** Trove's service statuses (reference 3.1), stored by name. */
export type ServiceStatusName =
  | 'NEW'
  | 'BUILDING'
  | 'INSTANCE_READY'
  | 'HEALTHY'
  | 'RUNNING'
  | 'BLOCKED'
  | 'PAUSED'
  | 'SHUTDOWN'
  | 'CRASHED'
  | 'FAILED'
  | 'DELETED'
  | 'UNKNOWN'
  | 'FAILED_TIMEOUT_GUESTAGENT'
  | 'RESTART_REQUIRED'
  | 'RESTARTING';

export interface ProjectRow {
  id: string;
  name: string;
  domainId: string;
  description: string;
  enabled: boolean;
  createdAt: Date;
}

export interface UserRow {
  id: string;
  name: string;
  domainId: string;
  /** scrypt hash in the form `scrypt$N$r$p$salt$hash`; never the password itself */
  passwordHash: string;
  defaultProjectId: string | null;
  email: string | null;
  description: string;
  enabled: boolean;
  createdAt: Date;
}

export interface RoleRow {
  id: string;
  name: string;
}

export interface RoleAssignmentRow {
  userId: string;
  projectId: string;
  roleId: string;
}

export interface TokenRow {
  /** sha256 hex of the bearer token; the token itself is never stored */
  tokenHash: string;
  userId: string;
  projectId: string;
  methods: string[];
  auditId: string;
  issuedAt: Date;
  expiresAt: Date;
}

export interface FlavorRow {
  id: string;
  name: string;
  ramMb: number;
  vcpus: number;
  diskGb: number;
  ephemeralGb: number;
}

export interface DatastoreRow {
  id: string;
  name: string;
  defaultVersionId: string | null;
}

export interface DatastoreVersionRow {
  id: string;
  datastoreId: string;
  /** user-facing version name, e.g. "15" */
  name: string;
  /** full engine version, e.g. "15.19" */
  version: string;
  /** engine (datastore manager) name, e.g. "postgresql" */
  manager: string;
  /** an agent can run it and no administrator took it out of service */
  active: boolean;
  /** why the version is inactive (binary missing, deactivated ...), null when active */
  inactiveReason: string | null;
  /** an administrator took it out of service (PATCH /mgmt/datastore-versions/{id}) */
  disabledByAdmin: boolean;
  updatedAt: Date;
  /** what the engine can do, as its agents report it; nothing for versions no agent has described */
  capabilities: EngineCapabilities;
  /** the settings a configuration group may change */
  parameters: ConfigurationParameter[];
}

/** A version to upsert: without capabilities or parameters it can do nothing optional. */
export type NewDatastoreVersion = Omit<DatastoreVersionRow, 'capabilities' | 'parameters' | 'disabledByAdmin'> &
  Partial<Pick<DatastoreVersionRow, 'capabilities' | 'parameters'>>;

export interface InstanceAccess {
  isPublic?: boolean;
  allowedCidrs?: string[];
  /** Coffer's: plaintext clients are refused */
  requireTls?: boolean;
}

/** An instance's TLS as its guest reported it. */
export interface InstanceTls {
  /** PEM of the CA that signed the instance's certificate */
  caCertificate: string;
  /** when the instance's certificate expires (it is renewed before) */
  expiresAt: string;
  /** the port TLS clients connect to */
  port: number;
}

export interface InstanceRow {
  id: string;
  name: string;
  tenantId: string;
  flavorId: string;
  volumeSizeGb: number;
  datastoreVersionId: string;
  taskStatus: TaskStatusName;
  taskDescription: string;
  taskStartTime: Date | null;
  /** agent host the instance is placed on; null until placed */
  host: string | null;
  address: string | null;
  port: number | null;
  access: InstanceAccess | null;
  tls: InstanceTls | null;
  /** the attached configuration group; null: none */
  configurationId: string | null;
  /** the version of what the instance should be: raised by every change of it (create: 1) */
  desiredGeneration: number;
  /** the highest desired generation the guest reported applied; equal to desiredGeneration when every change is live */
  appliedGeneration: number;
  /** every change committed up to this time is in the instance's archived log (point in time); null: none archived */
  walArchivedUntil: Date | null;
  createdAt: Date;
  updatedAt: Date;
  deleted: boolean;
  deletedAt: Date | null;
  /**
   * Made by Coffer for itself (a backup verification's scratch instance): it belongs to its
   * project, but the project's lists, shows (404) and quotas leave it out. Absent: false.
   */
  internal?: boolean;
  /** the instance this one is a read replica of; absent or null: not a replica */
  replicaOfId?: string | null;
  /** its live read replicas (ids ordered), as read with it; absent: none */
  replicaIds?: string[];
  /** a primary's: whether a replica takes over when it is lost (absent: true, the default) */
  failover?: boolean;
  /** a primary's: whether its commits wait until a replica holds them (absent: false) */
  synchronousReplication?: boolean;
  /** a primary's: when its guest last renewed its lease (see renewLease); absent or null: never */
  leaseRenewedAt?: Date | null;
  /** when a failover replaced this former primary: its engine must not run as a primary again */
  fencedAt?: Date | null;
}

export type NewInstance = Omit<
  InstanceRow,
  'deleted' | 'deletedAt' | 'host' | 'address' | 'port' | 'tls' | 'configurationId' | 'desiredGeneration' | 'appliedGeneration' | 'walArchivedUntil'
> &
  Partial<Pick<InstanceRow, 'configurationId'>>;

export type InstancePatch = Partial<
  Pick<
    InstanceRow,
    | 'name'
    | 'flavorId'
    | 'datastoreVersionId'
    | 'volumeSizeGb'
    | 'taskStatus'
    | 'taskDescription'
    | 'taskStartTime'
    | 'host'
    | 'address'
    | 'port'
    | 'access'
    | 'tls'
    | 'configurationId'
    | 'replicaOfId'
    | 'failover'
    | 'synchronousReplication'
    | 'leaseRenewedAt'
    | 'fencedAt'
  >
>;

export interface ServiceStatusRow {
  instanceId: string;
  status: ServiceStatusName;
  updatedAt: Date;
  /** what the guest last measured of the instance's volume; absent until it first did */
  volumeUsage?: VolumeUsage;
  /** the engine's health as the guest last described it (a failure, a restart that keeps failing); absent when it said nothing */
  healthDetail?: string;
  /** what the guest last measured of its engine; absent until it first did */
  engineMetrics?: EngineMetricsSample;
  /** its host's agent restarted and has not taken it up again yet; absent otherwise */
  awaitingAdoption?: true;
}

/**
 * A status as a page of views shows it. The engine's metrics (checked against their schema on
 * every read) and the health detail are left out: no view shows them, and a list page read and
 * checked them for every instance (issue 14).
 */
export type ServiceStatusSummary = Omit<ServiceStatusRow, 'healthDetail' | 'engineMetrics'>;

export interface VolumeUsage {
  usedBytes: number;
  measuredAt: Date;
}

/** What a heartbeat carried besides its status: an absent field leaves the stored one, a null health detail clears it. */
export interface GuestReport {
  volumeUsage?: VolumeUsage;
  healthDetail?: string | null;
  engineMetrics?: EngineMetricsSample;
}

export interface InstanceFaultRow {
  id: string;
  instanceId: string;
  message: string;
  details: string;
  createdAt: Date;
}

export type TaskKind =
  | 'create_instance'
  | 'delete_instance'
  | 'restart'
  | 'resize_flavor'
  | 'resize_volume'
  | 'update_access'
  | 'apply_configuration'
  // Coffer's stop and start of an instance's engine
  | 'stop'
  | 'start'
  // a replica promoted to a standalone primary (PUT replica_of: null)
  | 'detach_replica'
  // a replica made its group's primary: the old one alive (switchover) or lost (failover)
  | 'promote_to_replica_source'
  | 'eject_replica_source'
  // a former primary a failover replaced, back again: made a replica of the new one
  | 'rejoin_replica'
  // the subject of a backup task is its instance; of a backup deletion, the backup
  | 'create_backup'
  | 'delete_backup'
  // the subject is the backup imported from an existing object (restore_from)
  | 'import_backup'
  // Coffer's: the subject is the backup; the scratch instance it restores has tasks of its own
  | 'verify_backup'
  // Trove's upgrade: the instance moved to another version of its datastore
  | 'upgrade';
export type TaskState = 'pending' | 'running' | 'done' | 'failed';

export interface TaskRow {
  id: string;
  instanceId: string;
  kind: TaskKind;
  /** the last step completed; flows resume after it */
  step: string;
  state: TaskState;
  /** worker id holding the lease, null when unclaimed */
  owner: string | null;
  leaseExpiresAt: Date | null;
  /** flow input; may hold secrets for a create, so flows clear it when they end */
  payload: unknown;
  attempts: number;
  createdAt: Date;
  updatedAt: Date;
  /** how far the guest's long operation got, as it last reported; null until it reports and once the task ends */
  progress?: TaskProgress | null;
}

/** a step of a long guest operation and how far along the whole operation is (0..100) */
export interface TaskProgress {
  step: string;
  percent: number;
  updatedAt: Date;
}

export interface AgentRow {
  host: string;
  lastSeenAt: Date;
  /** the engine versions the host can run, as `<manager>/<version name>` (e.g. `postgresql/15`) */
  engines: string[];
  /**
   * the bus contract versions the agent and the guests it hosts serve, by contract name (e.g.
   * `{ agent: '1.0', guest: '1.0' }`); empty for an agent that never reported them
   */
  contracts: Record<string, string>;
}

/**
 * One thing that happened to an instance: `status` (the service status its guest reported
 * changed to `name`; `message` is the fault's first line when it failed), `warning` (a healthy
 * guest reported a warning, e.g. its volume nearly full; `name` is its status), or `task.started`,
 * `task.done`, `task.failed` (`name` is the task's kind; a failure's message is the fault it left).
 */
/** `backup.*` events name the backup (its id) and say what it stored or why it failed */
export type InstanceEventType =
  | 'status'
  | 'warning'
  | 'task.started'
  | 'task.done'
  | 'task.failed'
  | 'backup.completed'
  | 'backup.failed'
  // a replication group's primary changed: by a switchover (promoted) or a failover; a former primary back as a replica (rejoined)
  | 'replication.promoted'
  | 'replication.failover'
  | 'replication.rejoined';

export interface InstanceEventRow {
  id: string;
  instanceId: string;
  type: InstanceEventType;
  name: string;
  message: string | null;
  createdAt: Date;
}

/** Trove's root_enabled_history: who first enabled root on an instance, and when. */
export interface RootHistoryRow {
  instanceId: string;
  userId: string;
  createdAt: Date;
}

/** Trove's quota resources: instances, RAM of their flavors (MB), volume size (GB), backups. */
export type QuotaResource = 'instances' | 'ram' | 'backups' | 'volumes';

/** A project's own hard limit for one resource; -1 is unlimited. */
export interface QuotaRow {
  tenantId: string;
  resource: QuotaResource;
  hardLimit: number;
}

/** Trove's configuration group: a project's values for one datastore version. */
export interface ConfigurationRow {
  id: string;
  tenantId: string;
  name: string;
  description: string | null;
  datastoreVersionId: string;
  /** checked against the version's parameters when saved, under each parameter's own name */
  values: ConfigurationValues;
  createdAt: Date;
  updatedAt: Date;
  deleted: boolean;
  deletedAt: Date | null;
}

export type NewConfiguration = Omit<ConfigurationRow, 'deleted' | 'deletedAt'>;

export type ConfigurationPatch = Partial<Pick<ConfigurationRow, 'name' | 'description' | 'values'>>;

/** Trove's backup states (reference 6); running = NEW, BUILDING, SAVING. */
export type BackupState = 'NEW' | 'BUILDING' | 'SAVING' | 'COMPLETED' | 'FAILED' | 'DELETE_FAILED' | 'RESTORED';
export const runningBackupStates: readonly BackupState[] = ['NEW', 'BUILDING', 'SAVING'];

export interface BackupRow {
  id: string;
  tenantId: string;
  name: string;
  description: string | null;
  /** '' for a backup imported from an existing object (restore_from): it has no instance */
  instanceId: string;
  parentId: string | null;
  datastoreVersionId: string | null;
  backupType: 'full' | 'incremental';
  state: BackupState;
  /** where the object lives in the backup storage */
  container: string;
  objectName: string;
  /** bytes stored; null until COMPLETED */
  sizeBytes: number | null;
  /** the instance's data when the backup started (what a restore needs room for) */
  dataBytes: number | null;
  /** SHA-256 of the stored object, recorded when it was stored whole */
  sha256: string | null;
  /** what the engine recorded about the backup (LSNs, WAL positions) */
  facts: Record<string, string> | null;
  failReason: string | null;
  createdAt: Date;
  updatedAt: Date;
  deleted: boolean;
  /** the backup schedule that made it; null for a backup a request asked for (retention never touches those) */
  scheduleId: string | null;
}

export type NewBackup = Omit<BackupRow, 'deleted' | 'sizeBytes' | 'dataBytes' | 'sha256' | 'facts' | 'failReason' | 'scheduleId'> & {
  scheduleId?: string | null;
};
export type BackupPatch = Partial<
  Pick<BackupRow, 'state' | 'sizeBytes' | 'dataBytes' | 'sha256' | 'facts' | 'failReason'>
>;

/** Coffer's backup schedule of one instance: when its backups are taken and how long they are kept. */
export interface BackupScheduleRow {
  /** stays the same when the schedule is changed, so that its earlier backups stay its own */
  id: string;
  tenantId: string;
  instanceId: string;
  /** what the names of its backups start with; null: `scheduled` */
  name: string | null;
  /** five-field cron pattern, in UTC */
  pattern: string;
  incremental: boolean;
  /** at most this many of its completed backups are kept; null: no limit by count */
  retainCount: number | null;
  /** none of its completed backups older than this many days is kept; null: no limit by age */
  retainDays: number | null;
  nextRunAt: Date;
  lastRunAt: Date | null;
  /** the backup the last run started, if it started one */
  lastBackupId: string | null;
  /** why the last run started no backup, or why its backup's verification did not start */
  lastError: string | null;
  createdAt: Date;
  updatedAt: Date;
  /** each backup it makes is verified once it completed (POST /backups/{id}/action verify's way) */
  verify: boolean;
  /** the newest of its backups whose verification was taken on (started, or failed to start) */
  lastVerifiedBackupId: string | null;
}

/** What PUT sets: the rest is the schedule's history, kept across changes. */
export type BackupScheduleSettings = Pick<BackupScheduleRow, 'tenantId' | 'instanceId' | 'name' | 'pattern' | 'incremental' | 'retainCount' | 'retainDays' | 'nextRunAt' | 'verify'>;

/** Coffer's backup verification: RUNNING until it PASSED or FAILED. */
export type VerificationStatus = 'RUNNING' | 'PASSED' | 'FAILED';

/** The latest verification of a backup (one row per backup; a new one replaces a finished one). */
export interface BackupVerificationRow {
  backupId: string;
  tenantId: string;
  status: VerificationStatus;
  /** while RUNNING, the step it is at; once finished, what it found (why it FAILED) */
  message: string | null;
  /** what the engine's own check counted (databases, tables, keys, errors) */
  checks: Record<string, number> | null;
  /** the instance the backup was restored into while the verification runs */
  scratchInstanceId: string | null;
  startedAt: Date;
  finishedAt: Date | null;
}

export type BackupVerificationPatch = Partial<Pick<BackupVerificationRow, 'message' | 'checks' | 'scratchInstanceId'>>;

export interface BackupVerificationRepository {
  get(backupId: string): Promise<BackupVerificationRow | undefined>;
  /** the verifications of those of `backupIds` that have one */
  getMany(backupIds: readonly string[]): Promise<Map<string, BackupVerificationRow>>;
  /**
   * Starts a verification (RUNNING, started now), replacing a finished one; false, and nothing
   * changed, while one is RUNNING, unless `replaceRunning` (one whose task is gone). Run it inside
   * a transaction holding the project's lock.
   */
  begin(row: Pick<BackupVerificationRow, 'backupId' | 'tenantId' | 'message' | 'startedAt'>, options?: { replaceRunning?: boolean }): Promise<boolean>;
  /** changes a RUNNING verification; false when none runs */
  update(backupId: string, patch: BackupVerificationPatch): Promise<boolean>;
  /** ends a RUNNING verification as PASSED or FAILED; false when none runs */
  finish(backupId: string, end: { status: 'PASSED' | 'FAILED'; message: string | null; checks?: Record<string, number> | null; finishedAt: Date }): Promise<boolean>;
}

export interface BackupStrategyRow {
  tenantId: string;
  /** '' for the project-wide strategy */
  instanceId: string;
  backend: string;
  container: string;
  createdAt: Date;
}

export interface Page<T> {
  items: T[];
  /** marker for the next page; null when this is the last page */
  nextMarker: string | null;
}

export interface ProjectRepository {
  create(row: ProjectRow): Promise<void>;
  get(id: string): Promise<ProjectRow | undefined>;
  getByName(name: string, domainId: string): Promise<ProjectRow | undefined>;
  list(filter?: { name?: string; domainId?: string }): Promise<ProjectRow[]>;
  update(id: string, patch: Partial<Pick<ProjectRow, 'name' | 'description' | 'enabled'>>): Promise<void>;
  delete(id: string): Promise<void>;
}

export interface UserRepository {
  create(row: UserRow): Promise<void>;
  get(id: string): Promise<UserRow | undefined>;
  getByName(name: string, domainId: string): Promise<UserRow | undefined>;
  list(filter?: { name?: string; domainId?: string }): Promise<UserRow[]>;
  update(
    id: string,
    patch: Partial<
      Pick<UserRow, 'name' | 'passwordHash' | 'defaultProjectId' | 'email' | 'description' | 'enabled'>
    >,
  ): Promise<void>;
  delete(id: string): Promise<void>;
}

export interface RoleRepository {
  /** returns the role with this name, creating it with `id` when missing */
  ensure(name: string, id: string): Promise<RoleRow>;
  get(id: string): Promise<RoleRow | undefined>;
  getByName(name: string): Promise<RoleRow | undefined>;
  list(): Promise<RoleRow[]>;
}

export interface RoleAssignmentRepository {
  /** idempotent */
  grant(row: RoleAssignmentRow): Promise<void>;
  revoke(row: RoleAssignmentRow): Promise<void>;
  /** the roles `userId` holds on `projectId` */
  rolesOf(userId: string, projectId: string): Promise<RoleRow[]>;
  list(filter?: { userId?: string; projectId?: string; roleId?: string }): Promise<RoleAssignmentRow[]>;
}

/** A stored token with its user, its project and the roles the user holds there. */
export interface TokenHolder {
  token: TokenRow;
  user: UserRow;
  project: ProjectRow;
  roles: RoleRow[];
}

export interface TokenRepository {
  create(row: TokenRow): Promise<void>;
  get(tokenHash: string): Promise<TokenRow | undefined>;
  /**
   * The token with its user, project and roles on that project, in one statement; undefined when
   * the token is not stored, its user or project is gone, or the user holds no role there.
   * Expiry and whether user and project are enabled are the caller's to check.
   */
  holder(tokenHash: string): Promise<TokenHolder | undefined>;
  delete(tokenHash: string): Promise<void>;
  /** revokes every token of a user (their password changed); returns how many */
  deleteForUser(userId: string): Promise<number>;
  /** revokes every token scoped to a project (it was disabled); returns how many */
  deleteForProject(projectId: string): Promise<number>;
  /** revokes a user's tokens on one project (a role assignment went); returns how many */
  deleteForUserOnProject(userId: string, projectId: string): Promise<number>;
  deleteExpired(now: Date): Promise<number>;
}

/** Failed logins of one subject (`user:<id>` or `address:<ip>`) in a row. */
export interface LoginFailureRow {
  subject: string;
  failures: number;
  lastFailureAt: Date;
}

export interface LoginFailureRepository {
  get(subject: string): Promise<LoginFailureRow | undefined>;
  /**
   * Counts one more failure at `now`, atomically (several API processes may count at once); a
   * row whose last failure is before `restartBefore` starts again at 1. Returns the new row.
   */
  recordFailure(subject: string, now: Date, restartBefore: Date): Promise<LoginFailureRow>;
  /** a successful login: the subject's count starts again from nothing */
  clear(subject: string): Promise<void>;
}

export interface FlavorRepository {
  upsert(row: FlavorRow): Promise<void>;
  get(id: string): Promise<FlavorRow | undefined>;
  /** ordered by ram, then id */
  list(): Promise<FlavorRow[]>;
}

export interface DatastoreRepository {
  /** returns the datastore named `name`, creating it with `id` when missing */
  ensureDatastore(name: string, id: string): Promise<DatastoreRow>;
  setDefaultVersion(datastoreId: string, versionId: string | null): Promise<void>;
  getDatastore(id: string): Promise<DatastoreRow | undefined>;
  /** those of `ids` that exist, by id, in one statement */
  getDatastores(ids: readonly string[]): Promise<Map<string, DatastoreRow>>;
  getDatastoreByName(name: string): Promise<DatastoreRow | undefined>;
  listDatastores(): Promise<DatastoreRow[]>;
  /** insert, or update every field but `id` of the version with the same datastore and name */
  upsertVersion(row: NewDatastoreVersion): Promise<DatastoreVersionRow>;
  getVersion(id: string): Promise<DatastoreVersionRow | undefined>;
  /** those of `ids` that exist, by id, in one statement */
  getVersions(ids: readonly string[]): Promise<Map<string, DatastoreVersionRow>>;
  getVersionByName(datastoreId: string, name: string): Promise<DatastoreVersionRow | undefined>;
  listVersions(datastoreId?: string): Promise<DatastoreVersionRow[]>;
  /** takes the version out of service, or gives it back to what its agents report */
  setDisabledByAdmin(id: string, disabled: boolean): Promise<void>;
}

/**
 * What a project's instance list (GET /instances, instanceSummaryView) shows of an instance and
 * orders it by: a list page reads only these columns of its rows, not the TLS certificate, the
 * generations or the lease (issue 14).
 */
export type InstanceSummaryRow = Pick<
  InstanceRow,
  'id' | 'name' | 'tenantId' | 'flavorId' | 'volumeSizeGb' | 'datastoreVersionId' | 'taskStatus' | 'address' | 'port' | 'access' | 'createdAt' | 'replicaOfId' | 'replicaIds'
>;

export interface InstanceRepository {
  create(row: NewInstance): Promise<void>;
  /** how many live instances (internal ones too: they use the host as much) each of `hosts` holds, in one statement */
  countLiveByHost(hosts: readonly string[]): Promise<Map<string, number>>;
  /**
   * undefined for unknown or deleted instances; with tenantId, also for another project's and for
   * internal ones (the project's own view of its instances)
   */
  get(id: string, scope?: { tenantId?: string; includeDeleted?: boolean }): Promise<InstanceRow | undefined>;
  /** not deleted, ordered by id ascending; marker = id of the last item of the previous page; internal ones left out */
  list(filter: { tenantId?: string; limit: number; marker?: string; host?: string }): Promise<Page<InstanceRow>>;
  /** list's page with only the columns of InstanceSummaryRow */
  listSummaries(filter: { tenantId?: string; limit: number; marker?: string; host?: string }): Promise<Page<InstanceSummaryRow>>;
  /** sets updatedAt too */
  update(id: string, patch: InstancePatch): Promise<void>;
  /**
   * Applies `patch` only while the instance's task status is one of `from`, in one conditional
   * UPDATE, so that of two racing changes of the task exactly one wins. False (and nothing
   * changed) when the task status was another, or the instance does not exist.
   */
  updateIfTask(id: string, from: readonly TaskStatusName[], patch: InstancePatch): Promise<boolean>;
  /** raises desiredGeneration by one, in SQL, so concurrent changes each count */
  bumpDesiredGeneration(id: string): Promise<void>;
  /** sets appliedGeneration to `generation` unless it is already that high: a late, older answer never lowers it */
  recordAppliedGeneration(id: string, generation: number): Promise<void>;
  /** sets walArchivedUntil to `through` unless it is already later: a late report never moves it back */
  recordWalArchived(id: string, through: Date): Promise<void>;
  /** soft delete: deleted = true, deletedAt = now */
  markDeleted(id: string, now: Date): Promise<void>;
  /** the project's live instances, internal ones left out */
  countActive(tenantId: string): Promise<number>;
  /** every project's, ordered by id; `deleted` true: only deleted ones, false: only live ones, absent: both */
  listAll(filter: { deleted?: boolean; tenantId?: string }): Promise<InstanceRow[]>;
  /** the live replicas of each of `sourceIds` (ids ordered), in one statement; a source without any is absent */
  replicasOf(sourceIds: readonly string[]): Promise<Map<string, string[]>>;
  /**
   * A primary's guest renews its lease: true (and `leaseRenewedAt` = now) only for a live
   * primary with failover on that no failover took (not fenced: a failover's claim fences the
   * primary it replaces). One conditional UPDATE: a claim (claimFailover) and a renewal of the
   * same row never both succeed.
   */
  renewLease(id: string, now: Date): Promise<boolean>;
  /**
   * Takes a lost primary for a failover: sets `patch` (task EJECTING, fencedAt) only if its task is NONE,
   * failover is on, it is not fenced, and its lease was last renewed before `renewedBefore`;
   * one conditional UPDATE, so of several taskmanagers exactly one wins.
   */
  claimFailover(id: string, renewedBefore: Date, patch: InstancePatch): Promise<boolean>;
  /** live primaries with failover on, task NONE, not fenced, whose lease was last renewed before `renewedBefore` */
  lapsedLeases(renewedBefore: Date): Promise<InstanceRow[]>;
  /** live former primaries a failover fenced that still name the primary they should follow */
  fencedReplicas(): Promise<InstanceRow[]>;
}

export interface ConfigurationRepository {
  create(row: NewConfiguration): Promise<void>;
  /** undefined for unknown or deleted groups, and for another project's when tenantId is given */
  get(id: string, scope?: { tenantId?: string }): Promise<ConfigurationRow | undefined>;
  /** those of `ids` that exist and are not deleted, by id, in one statement */
  getMany(ids: readonly string[]): Promise<Map<string, ConfigurationRow>>;
  /** not deleted, ordered by id ascending; marker = id of the last item of the previous page; every project's without tenantId */
  list(filter: { tenantId?: string; limit: number; marker?: string }): Promise<Page<ConfigurationRow>>;
  /** sets updatedAt too; InstanceNotFound-like NotFound for an unknown or deleted group */
  update(id: string, patch: ConfigurationPatch): Promise<void>;
  /** soft delete: deleted = true, deletedAt = now; idempotent */
  markDeleted(id: string, now: Date): Promise<void>;
  /** the live instances the group is attached to, ordered by id; of one project when tenantId is given */
  instances(id: string, filter: { tenantId?: string; limit: number; marker?: string }): Promise<Page<InstanceRow>>;
  /** how many live instances the group is attached to (of one project when tenantId is given) */
  countInstances(id: string, scope?: { tenantId?: string }): Promise<number>;
}

export interface BackupRepository {
  create(row: NewBackup): Promise<void>;
  /** undefined for unknown or deleted backups, and for another project's when tenantId is given */
  get(id: string, scope?: { tenantId?: string }): Promise<BackupRow | undefined>;
  /**
   * not deleted, newest `updatedAt` first (Trove's order); `offset` is Trove's integer marker.
   * Every project's without tenantId.
   */
  list(filter: { tenantId?: string; instanceId?: string; datastoreVersionIds?: string[]; limit: number; offset: number }): Promise<BackupRow[]>;
  /** sets updatedAt too */
  update(id: string, patch: BackupPatch): Promise<void>;
  /**
   * Applies `patch` only while the backup's state is one of `from`, in one conditional UPDATE;
   * false (and nothing changed) otherwise.
   */
  updateIfState(id: string, from: readonly BackupState[], patch: BackupPatch): Promise<boolean>;
  /** soft delete; idempotent */
  markDeleted(id: string, now: Date): Promise<void>;
  /** the live backups whose parent is `id` */
  children(id: string): Promise<BackupRow[]>;
  /** the instance's newest COMPLETED backup (the parent of `incremental: true` without parent_id) */
  latestCompleted(instanceId: string): Promise<BackupRow | undefined>;
  /** the instance's backups in a running state (NEW, BUILDING, SAVING) */
  running(instanceId: string): Promise<BackupRow[]>;
  /** which of `instanceIds` have a running backup */
  instancesWithRunning(instanceIds: readonly string[]): Promise<Set<string>>;
  /** the COMPLETED full backups of `instanceIds` (the bases a point-in-time restore can start from), in one statement */
  completedFullOf(instanceIds: readonly string[]): Promise<BackupRow[]>;
  /** live backups of the project (quota `backups`) */
  countLive(tenantId: string): Promise<number>;
  /** the live backups schedules made (of one schedule when scheduleId is given), newest first */
  listScheduled(filter?: { scheduleId?: string }): Promise<BackupRow[]>;
  /** every container a backup, live or deleted, was ever stored in */
  containers(): Promise<string[]>;
  /** the backups, deleted ones included, stored in `container` under one of `objectNames` */
  byObjectNames(container: string, objectNames: readonly string[]): Promise<BackupRow[]>;
}

export interface BackupScheduleRepository {
  /**
   * Creates the instance's schedule, or changes its settings (keeping its id, creation time and
   * last run); answers the stored row.
   */
  set(settings: BackupScheduleSettings, now: Date): Promise<BackupScheduleRow>;
  /** the instance's schedule; undefined for another project's when tenantId is given */
  get(instanceId: string, scope?: { tenantId?: string }): Promise<BackupScheduleRow | undefined>;
  /** every schedule, by instance id */
  list(): Promise<BackupScheduleRow[]>;
  /** removes the instance's schedule; false when it had none */
  delete(instanceId: string): Promise<boolean>;
  /** schedules whose next run is at or before `now`, the longest due first */
  listDue(now: Date, limit: number): Promise<BackupScheduleRow[]>;
  /**
   * Takes the run due at `due`: moves the next run to `next` and records `now` as the last run,
   * only while the next run is still `due`, in one conditional UPDATE. True for exactly one of
   * several claimers of one run.
   */
  claimRun(id: string, due: Date, next: Date, now: Date): Promise<boolean>;
  /**
   * What the run claimed at `runAt` did: the backup it started (clearing the last error), or why
   * it started none (keeping the last backup started). Nothing changes once a later run was
   * claimed: a slow run never overwrites a newer one's outcome.
   */
  recordRun(id: string, runAt: Date, outcome: { backupId: string } | { error: string }): Promise<boolean>;
  /**
   * Takes on the verification of `backupId`, the schedule's last backup: records it as the last
   * verified one, only while it is still the last backup and not recorded yet, in one conditional
   * UPDATE. True for exactly one of several claimers.
   */
  claimVerification(id: string, backupId: string): Promise<boolean>;
  /** why the verification of `backupId` did not start; nothing changes once a later backup was claimed */
  recordVerificationError(id: string, backupId: string, error: string): Promise<boolean>;
}

export interface BackupStrategyRepository {
  /** insert or replace the row for (tenant, instance or '') */
  set(row: BackupStrategyRow): Promise<void>;
  list(filter: { tenantId?: string; instanceId?: string }): Promise<BackupStrategyRow[]>;
  /** removes the row for (tenant, instance or ''); nothing when absent */
  delete(tenantId: string, instanceId: string): Promise<void>;
}

export interface ProjectKeyRepository {
  /** the project's wrapped data key, if it has one */
  get(tenantId: string): Promise<string | undefined>;
  /**
   * Stores `wrappedKey` unless the project has a key already, and answers the one that is
   * stored: of two racing first backups, both use the same key.
   */
  getOrCreate(tenantId: string, wrappedKey: string, now: Date): Promise<string>;
}

export interface ServiceStatusRepository {
  get(instanceId: string): Promise<ServiceStatusRow | undefined>;
  /**
   * the status rows of those of `instanceIds` that have one, by instance id, in one statement, as
   * a page of views shows them: without the engine's metrics and health detail (`get` reads those)
   */
  getMany(instanceIds: readonly string[]): Promise<Map<string, ServiceStatusSummary>>;
  /** writes the status and its time only: what the guest reported stays (see `report`); a status written is newer than any wait for adoption */
  set(row: Pick<ServiceStatusRow, 'instanceId' | 'status' | 'updatedAt'>): Promise<void>;
  /** those of `instanceIds` with a status row await their host agent's adoption, until their next status */
  markAwaitingAdoption(instanceIds: readonly string[]): Promise<void>;
  /** keeps what a heartbeat carried on the instance's status row; nothing when it has none */
  report(instanceId: string, report: GuestReport): Promise<void>;
  /** forgets what the guest reported (its instance is deleted); the status stays */
  clearReport(instanceId: string): Promise<void>;
}

export interface InstanceFaultRepository {
  record(row: InstanceFaultRow): Promise<void>;
  /** the newest fault of the instance */
  latest(instanceId: string): Promise<InstanceFaultRow | undefined>;
  /** the newest fault of each of `instanceIds` that has one, by instance id, in one statement */
  latestOf(instanceIds: readonly string[]): Promise<Map<string, InstanceFaultRow>>;
  clear(instanceId: string): Promise<void>;
}

export interface TaskRepository {
  create(row: TaskRow): Promise<void>;
  get(id: string): Promise<TaskRow | undefined>;
  /**
   * Atomically take the task when it is pending, or running with an expired lease (its worker
   * died). Increments attempts. Returns the claimed row, or undefined when another worker holds it.
   */
  claim(id: string, owner: string, leaseMs: number, now: Date): Promise<TaskRow | undefined>;
  /** tasks that are pending, or running with an expired lease, oldest first */
  listClaimable(now: Date, limit: number): Promise<TaskRow[]>;
  /** extend the lease; false when `owner` no longer holds the task */
  renewLease(id: string, owner: string, leaseMs: number, now: Date): Promise<boolean>;
  /** record a completed step (and optionally replace the payload); false when `owner` lost the lease */
  recordStep(id: string, owner: string, step: string, payload?: unknown): Promise<boolean>;
  /** end the task (done or failed), release the lease and clear the payload and progress */
  finish(id: string, owner: string, state: 'done' | 'failed'): Promise<boolean>;
  /** sets the progress of the instance's running task; false when it has none (nothing is stored then) */
  recordProgress(instanceId: string, progress: TaskProgress): Promise<boolean>;
  /** the unfinished task of an instance, if any */
  activeForInstance(instanceId: string): Promise<TaskRow | undefined>;
  /** the unfinished task of each of `instanceIds` that has one, by instance id, in one statement */
  activeForInstances(instanceIds: readonly string[]): Promise<Map<string, TaskRow>>;
}

export interface ConductorLastSeenRepository {
  /**
   * Records `sent` for (instance, method) when it is newer than the one stored and returns true;
   * returns false (and changes nothing) for a stale or duplicate message.
   */
  recordIfNewer(instanceId: string, method: string, sent: number): Promise<boolean>;
  /** every live (not deleted) instance that has heartbeated, with its last heartbeat's send time */
  listHeartbeats(): Promise<InstanceHeartbeat[]>;
}

/** An instance's last guest heartbeat, as the conductor recorded it (the role's /metrics). */
export interface InstanceHeartbeat {
  instanceId: string;
  tenantId: string;
  /** the datastore's name, e.g. postgresql */
  datastore: string;
  /** the guest's clock when it sent the heartbeat, epoch milliseconds */
  sentAt: number;
  /** the service status that heartbeat left */
  status?: ServiceStatusName;
  /** what the guest last measured of its engine */
  engineMetrics?: EngineMetricsSample;
}

export interface AgentRepository {
  heartbeat(host: string, now: Date, engines: string[], contracts?: Record<string, string>): Promise<void>;
  /** agents seen at or after `since`, ordered by host */
  listAlive(since: Date): Promise<AgentRow[]>;
}

export interface InstanceEventRepository {
  /**
   * appends an event (its id made here, sorting as recorded); the instance keeps its newest
   * `instanceEventsKept`. Each webhook of the instance's project that takes the event's type gets
   * a pending delivery of it.
   */
  record(row: Omit<InstanceEventRow, 'id'>): Promise<void>;
  /** newest first; `after` (an event's id) pages on past that event; an unknown one is BadRequest */
  list(instanceId: string, page: { limit: number; after?: string }): Promise<InstanceEventRow[]>;
}

/** A project's webhook: where its instances' events go, and the secret that signs them. */
export interface WebhookRow {
  id: string;
  tenantId: string;
  url: string;
  /** the HMAC key; shown to its owner once, at creation */
  secret: string;
  /** the CloudEvents types it receives (webhookEventTypes); null: every type */
  events: string[] | null;
  createdAt: Date;
}

/** pending: an attempt is due at nextAttemptAt; delivered: a 2xx answer; failed: the last attempt failed too */
export type WebhookDeliveryState = 'pending' | 'delivered' | 'failed';

/** One event on its way to one webhook, with what the event said and how the attempts went. */
export interface WebhookDeliveryRow {
  id: string;
  webhookId: string;
  eventId: string;
  /** the CloudEvents type */
  eventType: string;
  instanceId: string;
  instanceName: string;
  /** the status or the task kind, as the instance event names it */
  eventName: string;
  message: string | null;
  eventTime: Date;
  state: WebhookDeliveryState;
  attempts: number;
  nextAttemptAt: Date;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: Date;
  updatedAt: Date;
  deliveredAt: Date | null;
}

/** A due delivery with where it goes and how it is signed. */
export interface DueWebhookDelivery extends WebhookDeliveryRow {
  tenantId: string;
  url: string;
  secret: string;
}

/** What one attempt did: its answer's status code, or why it got none. */
export interface WebhookAttemptOutcome {
  state: WebhookDeliveryState;
  statusCode: number | null;
  error: string | null;
  /** when the next attempt is due (pending only) */
  nextAttemptAt: Date;
}

export interface WebhookRepository {
  create(row: WebhookRow): Promise<void>;
  /** undefined for another project's when tenantId is given */
  get(id: string, scope?: { tenantId?: string }): Promise<WebhookRow | undefined>;
  /** the project's webhooks, oldest first */
  list(tenantId: string): Promise<WebhookRow[]>;
  /** removes the webhook and its delivery log; false when there was none */
  delete(id: string): Promise<boolean>;
  /** the webhook's newest deliveries first */
  deliveries(webhookId: string, limit: number): Promise<WebhookDeliveryRow[]>;
  /** pending deliveries due at `now` that nobody holds a live lease on, the longest due first */
  listDue(now: Date, limit: number): Promise<DueWebhookDelivery[]>;
  /**
   * Takes a due delivery for `leaseMs`, in one conditional UPDATE: true for exactly one of
   * several claimers, and again after the holder's lease ran out.
   */
  claim(id: string, owner: string, leaseMs: number, now: Date): Promise<boolean>;
  /** records an attempt (counting it) and releases the lease; false when `owner` no longer held it */
  recordAttempt(id: string, owner: string, outcome: WebhookAttemptOutcome, now: Date): Promise<boolean>;
}

export interface RootHistoryRepository {
  /** records the first enable of root on an instance; later ones keep the first (as Trove) and return it */
  record(row: RootHistoryRow): Promise<RootHistoryRow>;
  get(instanceId: string): Promise<RootHistoryRow | undefined>;
}

export interface QuotaRepository {
  /** the project's overrides; a resource without one uses the configured default */
  list(tenantId: string): Promise<QuotaRow[]>;
  /** insert or replace */
  set(row: QuotaRow): Promise<void>;
  /**
   * Inside a transaction: another transaction's lockTenant for the same project waits until this
   * one ends, so a quota check and the write it allows cannot interleave with another's.
   */
  lockTenant(tenantId: string, now: Date): Promise<void>;
  /** what the project's live (not deleted) instances and backups use; internal instances count for nothing */
  usage(tenantId: string): Promise<Record<QuotaResource, number>>;
}

export interface Repositories {
  projects: ProjectRepository;
  users: UserRepository;
  roles: RoleRepository;
  roleAssignments: RoleAssignmentRepository;
  tokens: TokenRepository;
  flavors: FlavorRepository;
  datastores: DatastoreRepository;
  instances: InstanceRepository;
  configurations: ConfigurationRepository;
  serviceStatuses: ServiceStatusRepository;
  faults: InstanceFaultRepository;
  instanceEvents: InstanceEventRepository;
  webhooks: WebhookRepository;
  tasks: TaskRepository;
  conductorLastSeen: ConductorLastSeenRepository;
  agents: AgentRepository;
  rootHistory: RootHistoryRepository;
  quotas: QuotaRepository;
  loginFailures: LoginFailureRepository;
  backups: BackupRepository;
  backupStrategies: BackupStrategyRepository;
  backupSchedules: BackupScheduleRepository;
  projectKeys: ProjectKeyRepository;
  backupVerifications: BackupVerificationRepository;
}

export interface StateStore extends Repositories {
  /** which SQL engine backs the store */
  readonly dialect: 'sqlite' | 'mysql' | 'postgres';
  /** runs `fn` in one database transaction; rolls back when it throws */
  transaction<T>(fn: (tx: Repositories) => Promise<T>): Promise<T>;
  /** resolves when the database answers a trivial query now: what a role's readiness check asks */
  ping(): Promise<void>;
  close(): Promise<void>;
}
