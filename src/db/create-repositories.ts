import { SqlAgentRepository } from './agent-repository.js';
import { SqlBackupRepository } from './backup-repository.js';
import { SqlBackupScheduleRepository } from './backup-schedule-repository.js';
import { SqlBackupStrategyRepository } from './backup-strategy-repository.js';
import { SqlBackupVerificationRepository } from './backup-verification-repository.js';
import { SqlConductorLastSeenRepository } from './conductor-last-seen-repository.js';
import { SqlConfigurationRepository } from './configuration-repository.js';
import { SqlDatastoreRepository } from './datastore-repository.js';
import { SqlFlavorRepository } from './flavor-repository.js';
import { SqlInstanceFaultRepository } from './instance-fault-repository.js';
import { SqlInstanceRepository } from './instance-repository.js';
import { SqlLoginFailureRepository } from './login-failure-repository.js';
import { SqlProjectKeyRepository } from './project-key-repository.js';
import { SqlProjectRepository } from './project-repository.js';
import { SqlQuotaRepository } from './quota-repository.js';
import type { RepositoryContext } from './repository-context.js';
import { SqlRoleAssignmentRepository } from './role-assignment-repository.js';
import { SqlRoleRepository } from './role-repository.js';
import { SqlInstanceEventRepository } from './instance-event-repository.js';
import { SqlRootHistoryRepository } from './root-history-repository.js';
import { SqlServiceStatusRepository } from './service-status-repository.js';
import type { Repositories } from './state-store.js';
import { SqlTaskRepository } from './task-repository.js';
import { SqlTokenRepository } from './token-repository.js';
import { SqlUserRepository } from './user-repository.js';
import { SqlWebhookRepository } from './webhook-repository.js';

/** Every repository, bound to one database handle: the pool, or a single transaction. */
export function createRepositories(ctx: RepositoryContext): Repositories {
  return {
    projects: new SqlProjectRepository(ctx),
    users: new SqlUserRepository(ctx),
    roles: new SqlRoleRepository(ctx),
    roleAssignments: new SqlRoleAssignmentRepository(ctx),
    tokens: new SqlTokenRepository(ctx),
    flavors: new SqlFlavorRepository(ctx),
    datastores: new SqlDatastoreRepository(ctx),
    instances: new SqlInstanceRepository(ctx),
    configurations: new SqlConfigurationRepository(ctx),
    serviceStatuses: new SqlServiceStatusRepository(ctx),
    faults: new SqlInstanceFaultRepository(ctx),
    instanceEvents: new SqlInstanceEventRepository(ctx),
    webhooks: new SqlWebhookRepository(ctx),
    tasks: new SqlTaskRepository(ctx),
    conductorLastSeen: new SqlConductorLastSeenRepository(ctx),
    agents: new SqlAgentRepository(ctx),
    rootHistory: new SqlRootHistoryRepository(ctx),
    quotas: new SqlQuotaRepository(ctx),
    loginFailures: new SqlLoginFailureRepository(ctx),
    backups: new SqlBackupRepository(ctx),
    backupStrategies: new SqlBackupStrategyRepository(ctx),
    backupSchedules: new SqlBackupScheduleRepository(ctx),
    projectKeys: new SqlProjectKeyRepository(ctx),
    backupVerifications: new SqlBackupVerificationRepository(ctx),
  };
}
