import type { BackupStorage } from '../backup/index.js';
import type { RequestContext, Transport } from '../bus/index.js';
import type { Logger, ScheduledBackupRequest } from '../common/index.js';
import type { BackupRow, StateStore } from '../db/index.js';
import { startScheduledBackup } from './trove/backup-create.js';
import { unlimitedQuotas } from './trove/quota-enforcement.js';

export interface ScheduledBackupStarterOptions {
  store: StateStore;
  transport: Transport;
  logger: Logger;
  backupStorage: BackupStorage | undefined;
  /** the container of a backup no strategy names a container for; the API's own (--backup-container) */
  defaultBackupContainer: string;
  /** the API's --max-backups-per-tenant: a scheduled backup counts against the quota as any other */
  maxBackupsPerTenant: number;
  /** default 90, as the API's */
  heartbeatExpirySeconds?: number;
}

/**
 * POST /backups' admission for the taskmanager's backup scheduler, which may not import the API:
 * the entry point hands it this function, so a scheduled backup is refused for exactly what a
 * requested one would be (the action gate, the datastore, the storage, the project's quota).
 */
export function scheduledBackupStarter(options: ScheduledBackupStarterOptions): (request: ScheduledBackupRequest, context: RequestContext) => Promise<BackupRow> {
  const deps = {
    store: options.store,
    transport: options.transport,
    logger: options.logger,
    heartbeatExpirySeconds: options.heartbeatExpirySeconds ?? 90,
    // only the backups delta is ever checked here
    quotaDefaults: { ...unlimitedQuotas, backups: options.maxBackupsPerTenant },
    backups: { storage: options.backupStorage, defaultContainer: options.defaultBackupContainer },
  };
  return (request, context) => startScheduledBackup(deps, request, context);
}
