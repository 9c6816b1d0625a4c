import type { BackupStorage } from '../backup/index.js';
import type { RequestContext, Transport } from '../bus/index.js';
import type { Logger, ScheduledVerificationRequest } from '../common/index.js';
import type { StateStore } from '../db/index.js';
import { startScheduledVerification } from './trove/backup-verify.js';

export interface ScheduledVerificationStarterOptions {
  store: StateStore;
  transport: Transport;
  logger: Logger;
  backupStorage: BackupStorage | undefined;
}

/**
 * POST /backups/{id}/action verify's admission for the taskmanager's backup scheduler, which may
 * not import the API: the entry point hands it this function, so a schedule's verification is
 * refused for exactly what a requested one would be (a backup not completed, a broken chain, an
 * inactive version, no storage, one already running).
 */
export function scheduledVerificationStarter(options: ScheduledVerificationStarterOptions): (request: ScheduledVerificationRequest, context: RequestContext) => Promise<void> {
  const deps = {
    store: options.store,
    transport: options.transport,
    logger: options.logger,
    // the container is never read when verifying: the backup names its own
    backups: { storage: options.backupStorage, defaultContainer: '' },
  };
  return (request, context) => startScheduledVerification(deps, request, context);
}
