import type { ColumnType } from 'kysely';

// The tables as Kysely sees them: snake_case columns, one interface per table. Reads are typed
// loosely where the engines disagree (SQLite hands back times as ISO text and booleans as 0/1;
// MySQL booleans as 0/1); the repositories normalise them with row-codec.ts.

/** Written as a Date (the SQLite adapter turns it into ISO text); read back as Date or text. */
export type Timestamp = ColumnType<Date | string, Date, Date>;
export type NullableTimestamp = ColumnType<Date | string | null, Date | null, Date | null>;
/** Written as a boolean (the SQLite adapter turns it into 0/1); read back as boolean or 0/1. */
export type Bool = ColumnType<boolean | number, boolean, boolean>;
/** JSON text, encoded and parsed by the repositories. */
export type JsonText = string;
/** a bigint column: PostgreSQL hands it back as text */
export type BigNumber = ColumnType<number | string | null, number | null, number | null>;

export interface ProjectsTable {
  id: string;
  name: string;
  domain_id: string;
  description: string;
  enabled: Bool;
  created_at: Timestamp;
}

export interface UsersTable {
  id: string;
  name: string;
  domain_id: string;
  password_hash: string;
  default_project_id: string | null;
  email: string | null;
  description: string;
  enabled: Bool;
  created_at: Timestamp;
}

export interface RolesTable {
  id: string;
  name: string;
}

export interface RoleAssignmentsTable {
  user_id: string;
  project_id: string;
  role_id: string;
}

export interface TokensTable {
  token_hash: string;
  user_id: string;
  project_id: string;
  methods: JsonText;
  audit_id: string;
  issued_at: Timestamp;
  expires_at: Timestamp;
}

export interface FlavorsTable {
  id: string;
  name: string;
  ram_mb: number;
  vcpus: number;
  disk_gb: number;
  ephemeral_gb: number;
}

export interface DatastoresTable {
  id: string;
  name: string;
  default_version_id: string | null;
}

export interface DatastoreVersionsTable {
  id: string;
  datastore_id: string;
  name: string;
  version: string;
  manager: string;
  active: Bool;
  inactive_reason: string | null;
  updated_at: Timestamp;
  /** JSON EngineCapabilities; null for versions registered before agents reported them */
  capabilities: JsonText | null;
  /** JSON ConfigurationParameter[]; null as capabilities */
  parameters: JsonText | null;
  /** an administrator took it out of service, whatever agents report (migration 0024) */
  disabled_by_admin: ColumnType<boolean | number, boolean | undefined, boolean>;
}

export interface InstancesTable {
  id: string;
  name: string;
  tenant_id: string;
  flavor_id: string;
  volume_size_gb: number;
  datastore_version_id: string;
  task_status: string;
  task_description: string;
  task_start_time: NullableTimestamp;
  host: string | null;
  address: string | null;
  port: number | null;
  access: JsonText | null;
  /** JSON InstanceTls; null until the guest first reported it */
  tls: JsonText | null;
  /** the attached configuration group; null: none */
  configuration_id: string | null;
  /** raised with every task that changes what the instance should be (create: 1) */
  desired_generation: number;
  /** the highest generation the guest reported applied; never lowered */
  applied_generation: number;
  /** every change committed up to this time is in the archived log; null: none archived */
  wal_archived_until: NullableTimestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
  deleted: Bool;
  deleted_at: NullableTimestamp;
  /** made by Coffer for itself (a backup verification's scratch instance): hidden from its project */
  internal: Bool;
  /** the instance a replica streams from; null: not a replica */
  replica_of_id: string | null;
  /** a primary's: a replica takes over when it is lost */
  failover: ColumnType<boolean | number, boolean | undefined, boolean>;
  /** a primary's: commits wait for a replica */
  synchronous_replication: ColumnType<boolean | number, boolean | undefined, boolean>;
  /** a primary's guest's last lease renewal; null: never */
  lease_renewed_at: ColumnType<Date | string | null, Date | null | undefined, Date | null>;
  /** a former primary a failover replaced */
  fenced_at: ColumnType<Date | string | null, Date | null | undefined, Date | null>;
}

export interface ServiceStatusesTable {
  instance_id: string;
  status: string;
  updated_at: Timestamp;
  /** bigint: PostgreSQL hands it back as text */
  volume_used_bytes: ColumnType<number | string | null, number | null | undefined, number | null>;
  volume_measured_at: ColumnType<Date | string | null, Date | null | undefined, Date | null>;
  health_detail: ColumnType<string | null, string | null | undefined, string | null>;
  /** JSON: src/common/engine-metrics.ts */
  engine_metrics: ColumnType<string | null, string | null | undefined, string | null>;
  engine_metrics_at: ColumnType<Date | string | null, Date | null | undefined, Date | null>;
  awaiting_adoption: ColumnType<boolean | number, boolean | undefined, boolean>;
}

export interface InstanceFaultsTable {
  id: string;
  instance_id: string;
  message: string;
  details: string;
  created_at: Timestamp;
}

export interface InstanceEventsTable {
  id: string;
  instance_id: string;
  type: string;
  name: string;
  message: string | null;
  created_at: Timestamp;
}

export interface WebhooksTable {
  id: string;
  tenant_id: string;
  url: string;
  secret: string;
  /** JSON array of event types, or null for every type */
  events: string | null;
  created_at: Timestamp;
}

export interface WebhookDeliveriesTable {
  id: string;
  webhook_id: string;
  event_id: string;
  event_type: string;
  instance_id: string;
  instance_name: string;
  event_name: string;
  message: string | null;
  event_time: Timestamp;
  state: string;
  attempts: number;
  next_attempt_at: Timestamp;
  lease_owner: string | null;
  lease_until: NullableTimestamp;
  last_status_code: number | null;
  last_error: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  delivered_at: NullableTimestamp;
}

export interface TasksTable {
  id: string;
  instance_id: string;
  kind: string;
  step: string;
  state: string;
  owner: string | null;
  lease_expires_at: NullableTimestamp;
  payload: JsonText | null;
  attempts: number;
  created_at: Timestamp;
  updated_at: Timestamp;
  progress_step: string | null;
  progress_percent: number | null;
  progress_updated_at: NullableTimestamp;
}

export interface ConductorLastSeenTable {
  instance_id: string;
  method_name: string;
  /** the sender's clock, epoch milliseconds with a fraction: a double on every engine */
  sent: number;
}

export interface AgentsTable {
  host: string;
  last_seen_at: Timestamp;
  /** JSON array of engine version keys */
  engines: string;
  /** JSON object: contract name to the version the agent and its guests serve; NULL before agents reported them */
  contracts: string | null;
}

export interface RootEnabledHistoryTable {
  instance_id: string;
  user_id: string;
  created_at: Timestamp;
}

export interface QuotasTable {
  tenant_id: string;
  resource: string;
  hard_limit: number;
}

export interface QuotaLocksTable {
  tenant_id: string;
  locked_at: Timestamp;
}

export interface ConfigurationsTable {
  id: string;
  tenant_id: string;
  name: string;
  description: string | null;
  datastore_version_id: string;
  /** JSON object: parameter name to value */
  config_values: JsonText;
  created_at: Timestamp;
  updated_at: Timestamp;
  deleted: Bool;
  deleted_at: NullableTimestamp;
}

export interface BackupsTable {
  id: string;
  tenant_id: string;
  name: string;
  description: string | null;
  instance_id: string;
  parent_id: string | null;
  datastore_version_id: string | null;
  backup_type: string;
  state: string;
  container: string;
  object_name: string;
  /** bigint: text from PostgreSQL, a number elsewhere */
  size_bytes: BigNumber;
  data_bytes: BigNumber;
  sha256: string | null;
  /** JSON object of strings */
  facts: JsonText | null;
  fail_reason: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  deleted: Bool;
  deleted_at: NullableTimestamp;
  /** the schedule that made the backup; null for one a request made */
  schedule_id: string | null;
}

export interface BackupSchedulesTable {
  id: string;
  tenant_id: string;
  instance_id: string;
  name: string | null;
  pattern: string;
  incremental: Bool;
  retain_count: number | null;
  retain_days: number | null;
  next_run_at: Timestamp;
  last_run_at: NullableTimestamp;
  last_backup_id: string | null;
  last_error: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  verify: Bool;
  last_verified_backup_id: string | null;
}

export interface BackupStrategiesTable {
  tenant_id: string;
  instance_id: string;
  backend: string;
  container: string;
  created_at: Timestamp;
}

export interface BackupVerificationsTable {
  backup_id: string;
  tenant_id: string;
  status: string;
  message: string | null;
  /** JSON object of numbers */
  checks: JsonText | null;
  scratch_instance_id: string | null;
  started_at: Timestamp;
  finished_at: NullableTimestamp;
  updated_at: Timestamp;
}

export interface ProjectKeysTable {
  tenant_id: string;
  wrapped_key: string;
  created_at: Timestamp;
}

export interface LoginFailuresTable {
  subject: string;
  failures: number;
  last_failure_at: Timestamp;
}

export interface Database {
  projects: ProjectsTable;
  users: UsersTable;
  roles: RolesTable;
  role_assignments: RoleAssignmentsTable;
  tokens: TokensTable;
  flavors: FlavorsTable;
  datastores: DatastoresTable;
  datastore_versions: DatastoreVersionsTable;
  instances: InstancesTable;
  service_statuses: ServiceStatusesTable;
  instance_faults: InstanceFaultsTable;
  instance_events: InstanceEventsTable;
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  tasks: TasksTable;
  conductor_last_seen: ConductorLastSeenTable;
  agents: AgentsTable;
  root_enabled_history: RootEnabledHistoryTable;
  quotas: QuotasTable;
  quota_locks: QuotaLocksTable;
  login_failures: LoginFailuresTable;
  configurations: ConfigurationsTable;
  backups: BackupsTable;
  backup_strategies: BackupStrategiesTable;
  backup_schedules: BackupSchedulesTable;
  project_keys: ProjectKeysTable;
  backup_verifications: BackupVerificationsTable;
}
