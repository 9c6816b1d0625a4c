import type { Command } from 'commander';
import type { ApiClient } from './api-client.js';
import type { BackupView, InstanceView } from './api-types.js';
import { createBackup, restoreCommand, type BackupCreateFlags } from './backup-create.js';
import { deleteBackup } from './backup-delete.js';
import { importBackup, type BackupImportFlags } from './backup-import.js';
import { backupFields, backupListHead, backupListRow } from './backup-format.js';
import { findBackup, getBackup, instanceRef, listBackups, type InstanceRef } from './backup-lookup.js';
import { registerBackupScheduleCommands } from './backup-schedule-commands.js';
import { registerBackupStrategyCommands } from './backup-strategy-commands.js';
import { verifyBackup, type BackupVerifyFlags } from './backup-verify.js';
import { isRunning, isStored } from './backup-wait.js';
import { ApiError } from './cli-error.js';
import type { CliIo } from './cli-io.js';
import { runAction } from './command-runner.js';
import { getInstance, listInstances } from './instance-lookup.js';
import { stepText } from './instance-wait.js';
import { containerName, nonNegativeNumber, positiveSeconds } from './option-parsers.js';
import { openSession } from './session.js';
import { printJson, renderFields, renderTable } from './table-format.js';

// `coffer backup ...`: Trove's backups of an instance's data, full or incremental, kept in the
// deployment's backup storage, restored into a new instance with `instance create --from-backup`.

const defaultTimeoutSeconds = 3600;

export function registerBackupCommands(program: Command, io: CliIo): void {
  const backup = program
    .command('backup')
    .description("Backups of an instance's data, restored into a new instance with `coffer instance create --from-backup`");

  backup
    .command('create <instance>')
    .description('Back up an instance (by ID or name) and wait until the backup is stored; the instance shows BACKUP meanwhile')
    .requiredOption('--name <name>', "the backup's name")
    .option('--description <text>', 'what the backup is for')
    .option('--incremental', "store only what changed since the instance's newest completed backup (a full one when it has none)")
    .option('--parent <backup>', 'store only what changed since this backup of the same instance (ID or name)')
    .option('--container <name>', 'the storage container (default: the backup strategy of the instance, else of the project, else the deployment\'s)', containerName)
    .option('--allow-duplicate-name', 'create it even if another of your backups has this name')
    .option('--wait', 'wait until the backup is stored or failed (the default)')
    .option('--no-wait', 'return once the API accepted the request')
    .option('--timeout <seconds>', 'how long to wait for the backup', positiveSeconds, defaultTimeoutSeconds)
    .option('--json', 'print the API object as JSON')
    .action((instance: string, flags: BackupCreateFlags) => runAction(io, () => createBackup(io, instance, flags)));

  backup
    .command('import <location>')
    .description(
      "Import a backup object already in this Coffer's backup storage (`<container>/<object name>`, or the locationRef the storage gives it) " +
        "as a backup of your project (Trove's restore_from): Coffer reads it through with your project's key and it is RESTORED, or FAILED with the reason. " +
        'PostgreSQL and Redis backups only',
    )
    .requiredOption('--name <name>', "the backup's name")
    .requiredOption('--datastore <datastore>', 'the datastore it is a backup of (postgresql, redis)')
    .option('--datastore-version <version>', "the version it was taken from, by name or ID (default: the datastore's default)")
    .requiredOption('--size <GB>', "the object's size in GB, as `coffer backup show` gave it for the backup it was copied from", nonNegativeNumber)
    .option('--description <text>', 'what the backup is for')
    .option('--allow-duplicate-name', 'import it even if another of your backups has this name')
    .option('--wait', 'wait until the backup is RESTORED or FAILED (the default)')
    .option('--no-wait', 'return once the API accepted the request')
    .option('--timeout <seconds>', 'how long to wait for the import', positiveSeconds, defaultTimeoutSeconds)
    .option('--json', 'print the API object as JSON')
    .action((location: string, flags: BackupImportFlags) => runAction(io, () => importBackup(io, location, flags)));

  backup
    .command('list')
    .description('List your backups, newest first')
    .option('--instance <instance>', 'only the backups of this instance (ID or name; the ID of a deleted one works too)')
    .option('--all-projects', "every project's backups (admins only)")
    .option('--json', 'print the API objects as JSON')
    .action((flags: { instance?: string; allProjects?: boolean; json?: boolean }) => runAction(io, () => listCommand(io, flags)));

  backup
    .command('show <backup>')
    .description('Show a backup (by ID or name): its status, why it failed if it did, its instance, parent, size, location and latest verification')
    .option('--json', 'print the API object as JSON')
    .action((ref: string, flags: { json?: boolean }) =>
      runAction(io, async () => {
        const client = await openSession(io);
        const found = await findBackup(client, ref);
        if (flags.json === true) return printJson(io.stdout, found);
        const instance = found.instance_id == null ? undefined : await getInstance(client, found.instance_id);
        const parent = found.parent_id == null ? undefined : await getBackup(client, found.parent_id);
        // a running backup's progress is its instance's
        const progress = isRunning(found) && instance?.status === 'BACKUP' ? stepText(instance.progress) : undefined;
        io.stdout.write(renderFields(backupFields(found, { instanceName: instance?.name, parentName: parent?.name, progress })));
        io.stdout.write(nextStep(found, instance));
      }),
    );

  backup
    .command('verify <backup>')
    .description(
      'Verify a backup (by ID or name): Coffer restores it into a scratch instance of its own (not listed, not counted against your quotas), ' +
        "runs the engine's own check of all the data, deletes the scratch instance, and records PASSED or FAILED on the backup. " +
        'Shows each step until it ends; exits 1 when it FAILED',
    )
    .option('--wait', 'wait until the verification PASSED or FAILED (the default)')
    .option('--no-wait', 'return once the API accepted the request (`coffer backup show` follows it)')
    .option('--timeout <seconds>', 'how long to wait for the verification', positiveSeconds, defaultTimeoutSeconds)
    .option('--json', 'print the backup, with its verification, as JSON')
    .action((ref: string, flags: BackupVerifyFlags) => runAction(io, () => verifyBackup(io, ref, flags)));

  backup
    .command('delete <backup>')
    .description('Delete a backup (by ID or name) and the incremental backups that build on it, and wait until they are gone')
    .option('--wait', 'wait until they are gone (the default)')
    .option('--no-wait', 'return once the API accepted the request')
    .option('--timeout <seconds>', 'how long to wait until they are gone', positiveSeconds, 300)
    .action((ref: string, flags: { wait?: boolean; timeout: number }) =>
      runAction(io, () => deleteBackup(io, ref, { wait: flags.wait !== false, timeout: flags.timeout })),
    );

  registerBackupStrategyCommands(backup, io);
  registerBackupScheduleCommands(backup, io);
}

async function listCommand(io: CliIo, flags: { instance?: string; allProjects?: boolean; json?: boolean }): Promise<void> {
  const client = await openSession(io);
  const instance = flags.instance === undefined ? undefined : await instanceRef(client, flags.instance);
  const allProjects = flags.allProjects === true;
  const list = () => listBackups(client, { ...(instance === undefined ? {} : { instanceId: instance.id }), allProjects });
  const backups = allProjects ? await withAllProjectsHint(list) : await list();
  if (flags.json === true) return printJson(io.stdout, backups);
  if (backups.length === 0) {
    io.stdout.write(emptyListText(instance));
    return;
  }
  const names = await instanceNames(client);
  io.stdout.write(renderTable(backupListHead(allProjects), backups.map((b) => backupListRow(b, names, allProjects))));
}

function emptyListText(instance: InstanceRef | undefined): string {
  if (instance === undefined) return 'No backups. Take one with `coffer backup create <instance> --name <name>`.\n';
  if (instance.name === undefined) {
    return `No instance has the ID or name "${instance.id}", and no backup was taken of an instance with that ID. See them all with \`coffer backup list\`.\n`;
  }
  return `No backups of ${instance.name}. Take one with \`coffer backup create ${instance.name} --name <name>\`.\n`;
}

/** The names of the caller's instances by id: a backup's row names its instance while it exists. */
async function instanceNames(client: ApiClient): Promise<Map<string, string>> {
  return new Map((await listInstances(client)).map((i) => [i.id, i.name]));
}

async function withAllProjectsHint<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 403 || err.hint !== undefined) throw err;
    throw new ApiError(err.status, err.message, "Only admins see every project's backups: leave out --all-projects.");
  }
}

/** After `backup show`: what the backup is good for now. */
function nextStep(backup: BackupView, instance: InstanceView | undefined): string {
  if (isStored(backup)) {
    const restore = `Restore it into a new instance with \`${restoreCommand(instance, backup.id)}\`.\n`;
    const verification = backup.verification?.status;
    if (verification === 'RUNNING') return `${restore}Its verification is running: \`coffer backup verify\` is not needed again.\n`;
    if (verification === 'FAILED') return `It FAILED its verification: take a new backup and verify that (\`coffer backup verify <backup>\`).\n`;
    if (verification === undefined || verification === null) return `${restore}Check that it restores with \`coffer backup verify ${backup.id}\`.\n`;
    return restore;
  }
  if (backup.status === 'FAILED') {
    return `It holds no data but counts against your backups quota: remove it with \`coffer backup delete ${backup.id}\`.\n`;
  }
  if (backup.status === 'DELETE_FAILED') return `Try \`coffer backup delete ${backup.id}\` again.\n`;
  return '';
}
