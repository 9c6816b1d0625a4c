import { sleep } from '../common/index.js';
import type { ApiClient } from './api-client.js';
import type { BackupVerificationView, BackupView } from './api-types.js';
import { backupPath, findBackup, getBackup } from './backup-lookup.js';
import { restoreCommand } from './backup-create.js';
import { checksText } from './backup-format.js';
import { ApiError, CliError } from './cli-error.js';
import type { CliIo } from './cli-io.js';
import { getInstance } from './instance-lookup.js';
import { ProgressDisplay } from './progress-display.js';
import { openSession } from './session.js';
import { printJson } from './table-format.js';

// `coffer backup verify`: Coffer restores the backup into a scratch instance of its own (never
// listed, never counted), runs the engine's own check of the data and deletes the scratch
// instance; the command follows the verification until it PASSED or FAILED.

export interface BackupVerifyFlags {
  /** false with --no-wait */
  wait?: boolean;
  timeout: number;
  json?: boolean;
}

export async function verifyBackup(io: CliIo, ref: string, flags: BackupVerifyFlags): Promise<void> {
  const client = await openSession(io);
  const backup = await findBackup(client, ref);
  const { id, name } = backup;
  try {
    await client.post(`${backupPath(id)}/action`, { verify: {} });
  } catch (err) {
    throw withHint(err, backup);
  }
  if (flags.wait === false) {
    if (flags.json === true) return printJson(io.stdout, (await getBackup(client, id)) ?? backup);
    io.stdout.write(`Verifying backup ${name} (${id}): it is restored into a scratch instance and checked.\nFollow it with \`coffer backup show ${id}\`.\n`);
    return;
  }
  const result = await follow(io, client, id, `Verifying ${name}`, flags.timeout);
  if (result.backup === undefined) throw new CliError(`Backup ${name} (${id}) disappeared while it was verified.`, 'It was deleted; see `coffer backup list`.');
  const verification = result.backup.verification;
  if (verification == null || verification.status === 'RUNNING') {
    throw new CliError(
      `The verification of backup ${name} (${id}) is still running after ${flags.timeout} s${verification?.message == null ? '' : ` (${verification.message})`}.`,
      `It goes on without the CLI: check on it with \`coffer backup show ${id}\`, or wait longer with --timeout.`,
    );
  }
  io.stderr.write(`The verification of backup ${name} (${id}) ${verification.status} after ${result.seconds} s.\n`);
  if (flags.json === true) printJson(io.stdout, result.backup);
  if (verification.status !== 'PASSED') {
    throw new CliError(
      `Backup ${name} (${id}) FAILED its verification: ${verification.message ?? 'Coffer recorded no reason.'}`,
      'Do not count on this backup: take a new one with `coffer backup create <instance> --name <name>` and verify that.',
    );
  }
  if (flags.json === true) return;
  const instance = backup.instance_id == null ? undefined : await getInstance(client, backup.instance_id);
  io.stdout.write(`Backup ${name} (${id}) PASSED: ${verification.message ?? ''}${checksLine(verification)}\n`);
  io.stdout.write(`Restore it into a new instance with \`${restoreCommand(instance, id)}\`.\n`);
}

function checksLine(verification: BackupVerificationView): string {
  const checks = checksText(verification.checks);
  return checks === '' ? '' : `\nChecked: ${checks}.`;
}

/** Polls the backup until its verification is no longer RUNNING (or the timeout), showing each step. */
async function follow(io: CliIo, client: ApiClient, id: string, label: string, timeoutSeconds: number): Promise<{ backup: BackupView | undefined; seconds: string }> {
  const progress = new ProgressDisplay(io.stderr, label);
  const deadline = Date.now() + timeoutSeconds * 1000;
  try {
    for (;;) {
      const current = await getBackup(client, id);
      const verification = current?.verification;
      if (current === undefined || verification == null || verification.status !== 'RUNNING') return { backup: current, seconds: progress.elapsedSeconds(true) };
      progress.update(verification.message === null ? 'RUNNING' : `RUNNING — ${verification.message}`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) return { backup: current, seconds: progress.elapsedSeconds(true) };
      await sleep(Math.min(io.pollIntervalMs, remaining));
    }
  } finally {
    progress.stop();
  }
}

function withHint(err: unknown, backup: BackupView): unknown {
  if (!(err instanceof ApiError) || err.hint !== undefined) return err;
  const hint =
    err.status === 409
      ? `Only a COMPLETED backup can be verified; ${backup.name} is ${backup.status} (\`coffer backup show ${backup.id}\`).`
      : err.status === 422 && /already being verified/.test(err.message)
        ? `Follow the running verification with \`coffer backup show ${backup.id}\`.`
        : err.status === 501 && /not configured/.test(err.message)
          ? 'Ask the operator of this Coffer to give it a backup storage.'
          : undefined;
  return hint === undefined ? err : new ApiError(err.status, err.message, hint);
}
