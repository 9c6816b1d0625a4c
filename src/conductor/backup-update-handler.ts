import type { z } from 'zod';
import { publishInstanceStatus, type conductorContract, type MessageMeta, type Transport } from '../bus/index.js';
import { storedSizeText, type Logger } from '../common/index.js';
import type { BackupPatch, StateStore } from '../db/index.js';

type BackupUpdate = z.output<typeof conductorContract.methods.updateBackup.input>;

/**
 * A guest's report on a backup it takes (Trove's update_backup). Only a running backup changes:
 * a report for one that already ended (FAILED by its flow's deadline, deleted) is dropped, so a
 * late COMPLETED can never revive a backup the flow gave up on and whose object it removed. A
 * report must come from the guest of the backup's own instance. Stale reports (older than the
 * newest seen for the backup) are dropped as heartbeats are.
 */
export function backupUpdateHandler(store: StateStore, transport: Transport, logger: Logger) {
  return async (update: BackupUpdate, meta: MessageMeta): Promise<void> => {
    const outcome = await store.transaction(async (tx) => {
      const backup = await tx.backups.get(update.backupId);
      if (backup === undefined || backup.instanceId !== update.instanceId) return 'unknown backup';
      if (!(await tx.conductorLastSeen.recordIfNewer(update.backupId, 'updateBackup', meta.sentAt))) return 'stale';
      const patch: BackupPatch = { state: update.state };
      if (update.dataBytes !== undefined) patch.dataBytes = update.dataBytes;
      if (update.state === 'BUILDING' && update.bytes !== undefined) patch.sizeBytes = update.bytes;
      if (update.state === 'COMPLETED') {
        if (update.sha256 === undefined || update.bytes === undefined) return 'incomplete report';
        Object.assign(patch, { sha256: update.sha256, sizeBytes: update.bytes, facts: update.facts ?? {} });
      }
      if (update.state === 'FAILED') patch.failReason = update.message ?? 'The backup failed.';
      if (!(await tx.backups.updateIfState(update.backupId, ['NEW', 'BUILDING', 'SAVING'], patch))) return 'ended';
      // the instance's history (and its project's webhooks) learn how the backup ended
      if (update.state === 'COMPLETED' || update.state === 'FAILED') {
        await tx.instanceEvents.record({
          instanceId: update.instanceId,
          type: update.state === 'COMPLETED' ? 'backup.completed' : 'backup.failed',
          name: update.backupId,
          message: update.state === 'COMPLETED' ? `${backup.backupType} backup ${backup.name}: ${storedSizeText(update.bytes!)} stored` : patch.failReason!.slice(0, 1000),
          createdAt: new Date(),
        });
      }
      return 'written';
    });
    if (outcome !== 'written') {
      logger.info({ instanceId: update.instanceId, backupId: update.backupId, state: update.state, outcome }, 'backup report dropped');
      return;
    }
    if (update.state !== 'BUILDING' || update.bytes === undefined) {
      logger.info({ instanceId: update.instanceId, backupId: update.backupId, state: update.state }, 'backup state recorded');
    }
    publishInstanceStatus(
      transport,
      { instanceId: update.instanceId, backupId: update.backupId, at: Date.now() },
      { requestId: meta.context.requestId, instanceId: update.instanceId },
    ).catch((err: unknown) => logger.debug({ instanceId: update.instanceId, err }, 'could not publish a backup change'));
  };
}
