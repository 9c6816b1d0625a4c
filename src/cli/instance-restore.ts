import type { ApiClient } from './api-client.js';
import type { BackupView } from './api-types.js';
import { findBackup } from './backup-lookup.js';
import { ApiError, CliError } from './cli-error.js';

// `instance create --from-backup`: the new instance starts with a backup's data (Trove's
// restorePoint). A backup restores only into the datastore and version it was taken on, so
// those default to the backup's.

export interface RestoreFlags {
  datastore?: string;
  datastoreVersion?: string;
  /** a backup's ID or name */
  fromBackup?: string;
  restoreTime?: string;
}

export interface CreateTarget {
  datastore: { type: string; version?: string };
  restorePoint?: { backupRef: string; restore_time?: string };
  /** the backup restored, for messages */
  backup?: BackupView;
}

/** The datastore, version and restore point a create asks for. */
export async function createTarget(client: ApiClient, flags: RestoreFlags): Promise<CreateTarget> {
  if (flags.fromBackup === undefined) {
    if (flags.restoreTime !== undefined) {
      throw new CliError('--restore-time needs --from-backup: the backup to restore up to that time.', 'Give --from-backup <backup>.');
    }
    if (flags.datastore === undefined) {
      throw new CliError('Give --datastore (see `coffer datastore list`), or --from-backup to restore a backup.');
    }
    return { datastore: datastoreOf(flags.datastore, flags.datastoreVersion) };
  }
  const backup = await findBackup(client, flags.fromBackup);
  const source = backup.datastore;
  const type = flags.datastore ?? source?.type;
  if (type === undefined) {
    throw new CliError(
      `Backup ${backup.name} (${backup.id}) does not say which datastore it was taken on (that version is gone).`,
      'Give --datastore and --datastore-version.',
    );
  }
  // Another datastore gets no version from the backup: the API says why it cannot restore there.
  const version = flags.datastoreVersion ?? (type === source?.type ? source.version : undefined);
  return {
    datastore: datastoreOf(type, version),
    restorePoint: { backupRef: backup.id, ...(flags.restoreTime === undefined ? {} : { restore_time: flags.restoreTime }) },
    backup,
  };
}

function datastoreOf(type: string, version: string | undefined): CreateTarget['datastore'] {
  return { type, ...(version === undefined ? {} : { version }) };
}

/** The API's refusals of a restore, each with the next step to take. */
export async function withRestoreHints<T>(target: CreateTarget, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const backup = target.backup;
    if (!(err instanceof ApiError) || err.hint !== undefined || backup === undefined) throw err;
    const hint = restoreHint(err, backup);
    throw hint === undefined ? err : new ApiError(err.status, err.message, hint);
  }
}

function restoreHint(err: ApiError, backup: BackupView): string | undefined {
  switch (err.status) {
    case 501:
      return /restore_time|point-in-time/i.test(err.message) ? 'Restore the whole backup instead: leave out --restore-time.' : undefined;
    case 409:
      return `\`coffer backup show ${backup.id}\` says why; restore a COMPLETED backup (\`coffer backup list\`).`;
    case 403:
      return /too large/i.test(err.message) ? 'Give a larger --size.' : undefined;
    case 400:
      return /backup/i.test(err.message)
        ? `Leave out --datastore and --datastore-version: the backup's (${backup.datastore?.type ?? '?'} ${backup.datastore?.version ?? '?'}) are used.`
        : undefined;
    default:
      return undefined;
  }
}
