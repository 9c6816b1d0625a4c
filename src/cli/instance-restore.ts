import type { ApiClient } from './api-client.js';
import type { BackupView, InstanceView } from './api-types.js';
import { findBackup } from './backup-lookup.js';
import { ApiError, CliError } from './cli-error.js';
import { findInstance } from './instance-lookup.js';

// `instance create --from-backup`: the new instance starts with a backup's data (Trove's
// restorePoint). A backup restores only into the datastore and version it was taken on, so
// those default to the backup's. `--from-instance … --restore-time …` asks for an instance's data
// as it was at a moment (Coffer's point in time), on the instance's datastore and version.

export interface RestoreFlags {
  datastore?: string;
  datastoreVersion?: string;
  /** a backup's ID or name */
  fromBackup?: string;
  /** an instance's ID or name: its data at restoreTime */
  fromInstance?: string;
  restoreTime?: string;
}

export interface CreateTarget {
  datastore: { type: string; version?: string };
  restorePoint?: { backupRef: string; restore_time?: string } | { instance_id: string; restore_time: string };
  /** the backup restored, for messages */
  backup?: BackupView;
  /** the instance restored to a moment, for messages */
  source?: InstanceView;
}

/** The datastore, version and restore point a create asks for. */
export async function createTarget(client: ApiClient, flags: RestoreFlags): Promise<CreateTarget> {
  if (flags.fromInstance !== undefined) return pointInTimeTarget(client, flags, flags.fromInstance);
  if (flags.fromBackup === undefined) {
    if (flags.restoreTime !== undefined) {
      throw new CliError(
        '--restore-time needs --from-instance (or --from-backup): what to restore as it was at that time.',
        'Give --from-instance <instance> (see `coffer instance show <instance>` for its recoverable window).',
      );
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

/** `--from-instance … --restore-time …`: the instance's data at a moment, on its datastore and version. */
async function pointInTimeTarget(client: ApiClient, flags: RestoreFlags, fromInstance: string): Promise<CreateTarget> {
  if (flags.fromBackup !== undefined) {
    throw new CliError('Give --from-instance or --from-backup, not both.', 'With --from-instance the newest backup before --restore-time is used.');
  }
  if (flags.restoreTime === undefined) {
    throw new CliError('--from-instance restores the instance as it was at a moment: give --restore-time too.', `\`coffer instance show ${fromInstance}\` shows its recoverable window.`);
  }
  const source = await findInstance(client, fromInstance);
  const type = flags.datastore ?? source.datastore?.type ?? undefined;
  if (type === undefined || type === null) throw new CliError(`Instance ${source.name} (${source.id}) does not say its datastore.`, 'Give --datastore and --datastore-version.');
  const version = flags.datastoreVersion ?? (type === source.datastore?.type ? (source.datastore.version ?? undefined) : undefined);
  return { datastore: datastoreOf(type, version), restorePoint: { instance_id: source.id, restore_time: flags.restoreTime }, source };
}

function datastoreOf(type: string, version: string | undefined): CreateTarget['datastore'] {
  return { type, ...(version === undefined ? {} : { version }) };
}

/** The API's refusals of a restore, each with the next step to take. */
export async function withRestoreHints<T>(target: CreateTarget, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (!(err instanceof ApiError) || err.hint !== undefined) throw err;
    const backup = target.backup;
    const source = target.source;
    const hint =
      backup !== undefined ? restoreHint(err, backup) : source !== undefined && err.status === 400 && /restore_time|window/i.test(err.message)
        ? `\`coffer instance show ${source.id}\` shows the times it can be restored to.`
        : undefined;
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
