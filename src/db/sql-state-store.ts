import { sql, type Kysely } from 'kysely';
import { createRepositories } from './create-repositories.js';
import type { Database } from './schema.js';
import type { SqlDialect } from './sql-dialect.js';
import type {
  AgentRepository,
  ConductorLastSeenRepository,
  ConfigurationRepository,
  DatastoreRepository,
  FlavorRepository,
  InstanceEventRepository,
  WebhookRepository,
  InstanceFaultRepository,
  InstanceRepository,
  ProjectRepository,
  QuotaRepository,
  LoginFailureRepository,
  Repositories,
  RoleAssignmentRepository,
  RoleRepository,
  RootHistoryRepository,
  ServiceStatusRepository,
  StateStore,
  BackupRepository,
  BackupStrategyRepository,
  BackupScheduleRepository,
  BackupVerificationRepository,
  ProjectKeyRepository,
  TaskRepository,
  TokenRepository,
  UserRepository,
} from './state-store.js';

/** The state store over one Kysely handle, whichever engine is behind it. */
export class SqlStateStore implements StateStore {
  readonly dialect: StateStore['dialect'];
  readonly projects: ProjectRepository;
  readonly users: UserRepository;
  readonly roles: RoleRepository;
  readonly roleAssignments: RoleAssignmentRepository;
  readonly tokens: TokenRepository;
  readonly flavors: FlavorRepository;
  readonly datastores: DatastoreRepository;
  readonly instances: InstanceRepository;
  readonly configurations: ConfigurationRepository;
  readonly serviceStatuses: ServiceStatusRepository;
  readonly faults: InstanceFaultRepository;
  readonly instanceEvents: InstanceEventRepository;
  readonly webhooks: WebhookRepository;
  readonly tasks: TaskRepository;
  readonly conductorLastSeen: ConductorLastSeenRepository;
  readonly agents: AgentRepository;
  readonly quotas: QuotaRepository;
  readonly loginFailures: LoginFailureRepository;
  readonly rootHistory: RootHistoryRepository;
  readonly backups: BackupRepository;
  readonly backupStrategies: BackupStrategyRepository;
  readonly backupSchedules: BackupScheduleRepository;
  readonly projectKeys: ProjectKeyRepository;
  readonly backupVerifications: BackupVerificationRepository;
  #closed: Promise<void> | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly sqlDialect: SqlDialect,
  ) {
    this.dialect = sqlDialect.name;
    const repositories = createRepositories({ db, dialect: sqlDialect });
    this.projects = repositories.projects;
    this.users = repositories.users;
    this.roles = repositories.roles;
    this.roleAssignments = repositories.roleAssignments;
    this.tokens = repositories.tokens;
    this.flavors = repositories.flavors;
    this.datastores = repositories.datastores;
    this.instances = repositories.instances;
    this.configurations = repositories.configurations;
    this.serviceStatuses = repositories.serviceStatuses;
    this.faults = repositories.faults;
    this.instanceEvents = repositories.instanceEvents;
    this.webhooks = repositories.webhooks;
    this.tasks = repositories.tasks;
    this.conductorLastSeen = repositories.conductorLastSeen;
    this.agents = repositories.agents;
    this.quotas = repositories.quotas;
    this.loginFailures = repositories.loginFailures;
    this.rootHistory = repositories.rootHistory;
    this.backups = repositories.backups;
    this.backupStrategies = repositories.backupStrategies;
    this.backupSchedules = repositories.backupSchedules;
    this.projectKeys = repositories.projectKeys;
    this.backupVerifications = repositories.backupVerifications;
  }

  // Inside `fn` use `tx` only: on SQLite the transaction holds the one connection, so a call on
  // the store itself would wait for the transaction to end, which waits for `fn`.
  transaction<T>(fn: (tx: Repositories) => Promise<T>): Promise<T> {
    return this.sqlDialect.transaction(this.db, (tx) => fn(createRepositories({ db: tx, dialect: this.sqlDialect })));
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  /** idempotent */
  close(): Promise<void> {
    this.#closed ??= this.db.destroy();
    return this.#closed;
  }
}
