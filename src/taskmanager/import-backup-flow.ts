import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decodeBackup } from '../backup/index.js';
import { importBackupTaskPayload } from '../bus/index.js';
import { CofferError } from '../common/index.js';
import type { BackupRow } from '../db/index.js';
import { messageOf } from './action-flow-support.js';
import { backupsNotConfigured, storageOf, type BackupFlowDeps } from './backup-flow-deps.js';
import { importInspector } from './imported-backup-facts.js';
import type { TaskHandle } from './task-runner.js';

/**
 * import_backup (reference 2.9 `restore_from`): the API recorded the backup NEW, pointing at an
 * object already in the backup storage. Nothing about the object is taken on trust: it is read
 * through once, against the SHA-256 the storage recorded for it, every frame opened with the
 * project's key (an object sealed under any other key, or not sealed, fails here) and
 * decompressed, and its content read for the facts a restore needs (imported-backup-facts.ts).
 * Then the backup is RESTORED with the object's size, checksum and the data's size, so restores
 * and verifications check it as any other backup; or FAILED with the reason. The object is never
 * removed here: it was there before the import, and a failed import leaves it as it was.
 */
export function importBackupFlow(deps: BackupFlowDeps) {
  return async (handle: TaskHandle): Promise<void> => {
    const payload = importBackupTaskPayload.parse(handle.task.payload ?? {});
    const backupId = handle.task.instanceId;
    const log = deps.logger.child({ backupId, taskId: handle.task.id, ...(payload.requestId === undefined ? {} : { requestId: payload.requestId }) });
    const backup = await deps.store.backups.get(backupId);
    if (backup?.state !== 'NEW') {
      log.info({ state: backup?.state }, 'import no longer pending; nothing to do');
      return;
    }
    let read: { sha256: string; size: number; dataBytes: number; facts: Record<string, string> };
    try {
      read = await readThrough(deps, backup, handle.signal);
    } catch (err) {
      if (handle.signal.aborted) throw err;
      log.warn({ err }, 'backup import failed');
      const reason = `The object cannot be imported: ${messageOf(err)}`.slice(0, 1000);
      await deps.store.backups.updateIfState(backup.id, ['NEW'], { state: 'FAILED', failReason: reason });
      return;
    }
    const restored = await deps.store.backups.updateIfState(backup.id, ['NEW'], {
      state: 'RESTORED',
      sha256: read.sha256,
      sizeBytes: read.size,
      dataBytes: read.dataBytes,
      facts: { ...read.facts, imported: 'true' },
    });
    log.info({ bytes: read.size, restored }, 'backup imported');
  };
}

async function readThrough(deps: BackupFlowDeps, backup: BackupRow, signal: AbortSignal) {
  const storage = storageOf(deps);
  if (deps.projectDataKey === undefined) throw backupsNotConfigured();
  const version = backup.datastoreVersionId === null ? undefined : await deps.store.datastores.getVersion(backup.datastoreVersionId);
  if (version === undefined) throw new CofferError('DatastoreVersionNotFound', `Datastore version ${backup.datastoreVersionId} no longer exists.`);
  const key = await deps.projectDataKey(backup.tenantId);
  if (key === undefined) {
    throw new CofferError('BackupDecryptionFailed', "This project has no backup key in this deployment yet, so no object can be sealed under it: only an object a backup of this project sealed can be imported. Import it under the project whose backup it was.");
  }
  const stored = await storage.head(backup.container, backup.objectName);
  if (stored === undefined) throw new CofferError('NotFound', `Backup object ${backup.container}/${backup.objectName} is no longer in the backup storage.`);
  // the storage's read fails (ChecksumMismatch) before its end on bytes that differ from its record
  const body = await storage.get(backup.container, backup.objectName, { expectedSha256: stored.sha256, signal });
  const inspector = importInspector(version);
  let dataBytes = 0;
  await pipeline(
    decodeBackup(body, { key, signal }),
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        dataBytes += chunk.length;
        try {
          inspector.see(chunk);
        } catch (err) {
          done(err as Error);
          return;
        }
        done();
      },
    }),
    { signal },
  );
  return { sha256: stored.sha256, size: stored.size, dataBytes, facts: inspector.facts() };
}
