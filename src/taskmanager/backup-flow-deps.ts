import type { BackupStorage } from '../backup/index.js';
import type { BackupRow } from '../db/index.js';
import { CofferError } from '../common/index.js';
import type { ActionFlowDeps } from './action-flow-support.js';

/** What the backup flows need beyond an action's: the storage, and each project's wrapped key. */
export interface BackupFlowDeps extends ActionFlowDeps {
  /** absent: this taskmanager has no backup storage configured, and backup tasks fail saying so */
  storage?: BackupStorage;
  /** the project's data key wrapped under the hosts' master key, made on the project's first backup */
  wrappedProjectKey(tenantId: string): Promise<string>;
  /** the project's data key, unwrapped; undefined when the project has none yet (an import reads with it) */
  projectDataKey?(tenantId: string): Promise<Buffer | undefined>;
  /** a running backup with no report from its guest for this long is failed (its host went away) */
  backupStallMs: number;
  /** the longest a backup may run */
  backupTimeoutMs: number;
}

export const backupsNotConfigured = () =>
  new CofferError(
    'NotImplemented',
    'Backups are not configured on this taskmanager: give it a backup storage and a master key file (see `coffer taskmanager --help`).',
  );

export function storageOf(deps: BackupFlowDeps): BackupStorage {
  if (deps.storage === undefined) throw backupsNotConfigured();
  return deps.storage;
}

/**
 * An import (restore_from, no instance) that FAILED: its object was already in the storage and
 * never became the backup's, so neither a delete nor the orphan sweep removes it.
 */
export function isFailedImport(backup: Pick<BackupRow, 'instanceId' | 'state'>): boolean {
  return backup.instanceId === '' && backup.state === 'FAILED';
}
