import type { BackupView } from './api-types.js';
import { backupPath, descendantsOf, findBackup, listBackups } from './backup-lookup.js';
import { failReasonText, waitForDeletion } from './backup-wait.js';
import { ApiError, CliError } from './cli-error.js';
import type { CliIo } from './cli-io.js';
import { openSession } from './session.js';

/**
 * `coffer backup delete`: the API deletes the backup's incrementals with it (they cannot be
 * restored without it), so the command names them, then follows them all until they are gone.
 */
export async function deleteBackup(io: CliIo, ref: string, flags: { wait: boolean; timeout: number }): Promise<void> {
  const client = await openSession(io);
  const backup = await findBackup(client, ref);
  const { id, name } = backup;
  const dependants = descendantsOf(await listBackups(client), id);
  try {
    await client.delete(backupPath(id));
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 422 || err.hint !== undefined) throw err;
    throw new ApiError(err.status, err.message, `Wait until it ends (\`coffer backup list\` shows it), then delete ${name} again.`);
  }
  const withText = dependants.length === 0 ? '' : `, with its incremental backups ${dependants.map(label).join(', ')}`;
  if (!flags.wait) {
    io.stdout.write(`Deleting backup ${name} (${id})${withText}. Follow it with \`coffer backup list\`.\n`);
    return;
  }
  // the incrementals go first, the backup itself last
  const result = await waitForDeletion(io, client, [...dependants, backup], { label: `Deleting ${name}`, timeoutSeconds: flags.timeout });
  switch (result.outcome) {
    case 'deleted':
      io.stdout.write(`Backup ${name} (${id}) is deleted${withText}.\n`);
      return;
    case 'failed':
      throw new CliError(
        `Deleting backup ${label(result.backup)} failed: ${failReasonText(result.backup)}`,
        `It is DELETE_FAILED and still counts against your backups quota: run \`coffer backup delete ${id}\` again; ` +
          'if it fails the same way, the backup storage needs its operator.',
      );
    case 'timeout':
      throw new CliError(
        `Backup ${name} (${id}) is still being deleted after ${flags.timeout} s (${result.left} of ${dependants.length + 1} left).`,
        `Check on it with \`coffer backup show ${id}\`.`,
      );
  }
}

function label(backup: BackupView): string {
  return `${backup.name} (${backup.id})`;
}
