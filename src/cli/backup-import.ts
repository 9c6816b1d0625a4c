import type { ApiClient } from './api-client.js';
import type { BackupView, DatastoreView } from './api-types.js';
import { refuseDuplicateName, restoreCommand } from './backup-create.js';
import { sizeText } from './backup-format.js';
import { failReasonText, waitForBackup } from './backup-wait.js';
import { ApiError, CliError } from './cli-error.js';
import type { CliIo } from './cli-io.js';
import { openSession } from './session.js';
import { printJson } from './table-format.js';

// `coffer backup import`: Trove's restore_from. The object must already be in this Coffer's
// backup storage; Coffer reads it through with the project's key before it is RESTORED.

export interface BackupImportFlags {
  name: string;
  datastore: string;
  /** a version's name or ID; absent: the datastore's default */
  datastoreVersion?: string;
  /** the object's size in GB, as `backup show` gives it */
  size: number;
  description?: string;
  allowDuplicateName?: boolean;
  wait?: boolean;
  timeout: number;
  json?: boolean;
}

export async function importBackup(io: CliIo, location: string, flags: BackupImportFlags): Promise<void> {
  const client = await openSession(io);
  if (flags.allowDuplicateName !== true) await refuseDuplicateName(client, flags.name);
  const versionId = await versionIdOf(client, flags.datastore, flags.datastoreVersion);
  const body = {
    backup: {
      name: flags.name,
      ...(flags.description === undefined ? {} : { description: flags.description }),
      restore_from: { remote_location: location, local_datastore_version_id: versionId, size: flags.size },
    },
  };
  const created = await withImportHints(() => client.postMember<BackupView>('/backups', 'backup', body));
  const { id, name } = created;
  if (flags.wait === false) {
    if (flags.json === true) return printJson(io.stdout, created);
    io.stdout.write(`Importing ${location} as ${name} (${id}): ${created.status}.\nFollow it with \`coffer backup show ${id}\`.\n`);
    return;
  }
  const result = await waitForBackup(io, client, id, { label: `Importing ${location}`, timeoutSeconds: flags.timeout });
  switch (result.outcome) {
    case 'stored': {
      const backup = result.backup;
      io.stderr.write(`Backup ${name} (${id}) is ${backup.status} after ${result.seconds} s.\n`);
      if (flags.json === true) return printJson(io.stdout, backup);
      const size = sizeText(backup);
      io.stdout.write(`Backup ${name} (${id}) imported from ${location}${size === undefined ? '' : `: ${size}`}.\n`);
      io.stdout.write(`Restore it into a new instance with \`${restoreCommand(undefined, flags.allowDuplicateName === true ? id : name)}\`.\n`);
      return;
    }
    case 'failed':
      throw new CliError(
        `Backup ${name} (${id}) could not be imported: ${failReasonText(result.backup)}`,
        `The object stays where it is. Remove the failed record (it counts against your backups quota) with \`coffer backup delete ${id}\`.`,
      );
    case 'gone':
      throw new CliError(`Backup ${name} (${id}) disappeared while it was imported.`, 'It was deleted; see `coffer backup list`.');
    case 'timeout':
      throw new CliError(
        `Backup ${name} (${id}) is still being imported after ${flags.timeout} s.`,
        `It goes on without the CLI: check on it with \`coffer backup show ${id}\`, or wait longer with --timeout.`,
      );
  }
}

/** The version's ID by the datastore's name and the version's name or ID (default: the datastore's default). */
async function versionIdOf(client: ApiClient, datastoreName: string, versionRef: string | undefined): Promise<string> {
  const datastores = await client.getMember<DatastoreView[]>('/datastores', 'datastores');
  const datastore = datastores.find((d) => d.name === datastoreName || d.id === datastoreName);
  if (datastore === undefined) {
    throw new CliError(`No datastore ${datastoreName}.`, `Datastores: ${datastores.map((d) => d.name).join(', ') || 'none'} (\`coffer datastore list\`).`);
  }
  const versions = datastore.versions ?? [];
  const ref = versionRef ?? datastore.default_version;
  const version = versions.find((v) => v.id === ref || v.name === ref);
  if (version === undefined) {
    throw new CliError(
      versionRef === undefined ? `Datastore ${datastore.name} has no default version.` : `Datastore ${datastore.name} has no version ${versionRef}.`,
      `Give --datastore-version, one of: ${versions.map((v) => v.name).join(', ') || 'none'}.`,
    );
  }
  return version.id;
}

async function withImportHints<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (!(err instanceof ApiError) || err.hint !== undefined) throw err;
    const hint =
      err.status === 400 && /^restore_from\.size/.test(err.message)
        ? "Give --size as the object's size in GB (`coffer backup show` of the backup it was copied from gives it)."
        : err.status === 400 && /^restore_from\.remote_location/.test(err.message)
          ? 'Copy the object into one of your backup containers first, and name it as <container>/<object name> or by its locationRef.'
          : err.status === 413
            ? 'Delete backups you no longer need (FAILED ones count too): `coffer backup list` shows them.'
            : undefined;
    throw hint === undefined ? err : new ApiError(err.status, err.message, hint);
  }
}
