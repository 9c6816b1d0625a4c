import type { ApiClient } from './api-client.js';
import type { BackupView, InstanceView } from './api-types.js';
import { findBackup, listBackups } from './backup-lookup.js';
import { failReasonText, waitForBackup } from './backup-wait.js';
import { sizeText, typeText } from './backup-format.js';
import { ApiError, CliError } from './cli-error.js';
import type { CliIo } from './cli-io.js';
import { findInstance } from './instance-lookup.js';
import { openSession } from './session.js';
import { printJson } from './table-format.js';

export interface BackupCreateFlags {
  name: string;
  description?: string;
  incremental?: boolean;
  /** a backup's ID or name */
  parent?: string;
  container?: string;
  allowDuplicateName?: boolean;
  /** false with --no-wait; --wait (the default) leaves it true or undefined */
  wait?: boolean;
  timeout: number;
  json?: boolean;
}

/** `coffer backup create`: asks for the backup, then follows it until it is stored or failed. */
export async function createBackup(io: CliIo, instanceRef: string, flags: BackupCreateFlags): Promise<void> {
  const client = await openSession(io);
  const instance = await findInstance(client, instanceRef);
  if (flags.allowDuplicateName !== true) await refuseDuplicateName(client, flags.name);
  const parent = flags.parent === undefined ? undefined : await findBackup(client, flags.parent);
  const body = {
    backup: {
      name: flags.name,
      instance: instance.id,
      ...(flags.description === undefined ? {} : { description: flags.description }),
      ...(flags.incremental === true ? { incremental: true } : {}),
      ...(parent === undefined ? {} : { parent_id: parent.id }),
      ...(flags.container === undefined ? {} : { swift_container: flags.container }),
    },
  };
  const created = await withCreateHints(instance, flags, () => client.postMember<BackupView>('/backups', 'backup', body));
  const { id, name } = created;
  if (flags.wait === false) {
    if (flags.json === true) return printJson(io.stdout, created);
    io.stdout.write(`Backing up ${instance.name} as ${name} (${id}): ${created.status}.\nFollow it with \`coffer backup show ${id}\`.\n`);
    return;
  }
  const result = await waitForBackup(io, client, id, { label: `Backing up ${instance.name}`, timeoutSeconds: flags.timeout });
  switch (result.outcome) {
    case 'stored': {
      const backup = result.backup;
      io.stderr.write(`Backup ${name} (${id}) of ${instance.name} is ${backup.status} after ${result.seconds} s.\n`);
      if (flags.json === true) return printJson(io.stdout, backup);
      const size = sizeText(backup);
      io.stdout.write(`Backup ${name} (${id}) of ${instance.name}: ${typeText(backup)}${size === undefined ? '' : `, ${size}`}.\n`);
      io.stdout.write(`Restore it into a new instance with \`${restoreCommand(instance, flags.allowDuplicateName === true ? id : name)}\`.\n`);
      return;
    }
    case 'failed':
      throw new CliError(
        `Backup ${name} (${id}) of ${instance.name} failed: ${failReasonText(result.backup)}`,
        `Check that \`coffer instance show ${instance.name}\` says ACTIVE / HEALTHY, then try again. ` +
          `The failed backup holds no data but counts against your backups quota: remove it with \`coffer backup delete ${id}\`.`,
      );
    case 'gone':
      throw new CliError(`Backup ${name} (${id}) disappeared while it ran.`, 'It was deleted; see `coffer backup list`.');
    case 'timeout':
      throw new CliError(
        `Backup ${name} (${id}) of ${instance.name} is still running after ${flags.timeout} s` +
          `${result.lastText === undefined ? '' : ` (${result.lastText})`}.`,
        `It goes on without the CLI: check on it with \`coffer backup show ${id}\`, or wait longer with --timeout.`,
      );
  }
}

/** What restores the backup: the source's flavor and volume size fit its data. */
export function restoreCommand(source: Pick<InstanceView, 'flavor' | 'volume'> | undefined, backupRef: string): string {
  const flavor = source?.flavor?.id ?? '<flavor>';
  const size = source?.volume?.size ?? '<GB>';
  return `coffer instance create <new name> --from-backup ${backupRef} --flavor ${flavor} --size ${size}`;
}

/** As instance create does: every command that takes a name would then need the ID instead. */
export async function refuseDuplicateName(client: ApiClient, name: string): Promise<void> {
  const same = (await listBackups(client)).filter((backup) => backup.name === name);
  if (same.length === 0) return;
  throw new CliError(
    `A backup named "${name}" already exists (${same.map((b) => b.id).join(', ')}).`,
    'Choose another name, or give --allow-duplicate-name (commands then need the ID instead of the name).',
  );
}

/** The API's refusals of a backup, each with the next step to take. */
async function withCreateHints<T>(instance: InstanceView, flags: BackupCreateFlags, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (!(err instanceof ApiError) || err.hint !== undefined) throw err;
    const hint = createHint(err, instance, flags);
    throw hint === undefined ? err : new ApiError(err.status, err.message, hint);
  }
}

function createHint(err: ApiError, instance: InstanceView, flags: BackupCreateFlags): string | undefined {
  const { name } = instance;
  switch (err.status) {
    case 413:
      return 'Delete backups you no longer need (FAILED ones count too): `coffer backup list` shows them, `coffer backup delete <backup>` removes one with its incrementals.';
    case 422:
      return /status was BACKUP/.test(err.message)
        ? `A backup of ${name} is running: wait until it ends (\`coffer backup list --instance ${name}\`), then try again.`
        : `Wait until \`coffer instance show ${name}\` says ACTIVE / HEALTHY, then try again.`;
    case 501:
      if (/not configured/.test(err.message)) return 'Ask the operator of this Coffer to give it a backup storage.';
      if (/incremental/i.test(err.message)) return `Leave out --incremental and --parent: a full backup of ${name} works.`;
      if (/datastore/i.test(err.message)) {
        return `Coffer cannot back up ${instance.datastore?.type ?? 'this datastore'} instances yet: export the data with the engine's own client instead.`;
      }
      return undefined;
    case 400:
      return flags.parent !== undefined && /another instance|not completed/.test(err.message)
        ? `Give a COMPLETED backup of ${name} as --parent (\`coffer backup list --instance ${name}\`), or --incremental alone to follow its newest one.`
        : undefined;
    default:
      return undefined;
  }
}
