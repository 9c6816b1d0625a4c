import { sleep, storedSizeText } from '../common/index.js';
import type { ApiClient } from './api-client.js';
import type { BackupView } from './api-types.js';
import { getBackup } from './backup-lookup.js';
import type { CliIo } from './cli-io.js';
import { getInstance } from './instance-lookup.js';
import { stepText } from './instance-wait.js';
import { ProgressDisplay } from './progress-display.js';

// Following a backup until it is stored or failed, and a delete until the backups are gone.

const runningStates = ['NEW', 'BUILDING', 'SAVING'];

export function isRunning(backup: BackupView): boolean {
  return runningStates.includes(backup.status);
}

export function isStored(backup: BackupView): boolean {
  return backup.status === 'COMPLETED' || backup.status === 'RESTORED';
}

export function failReasonText(backup: BackupView): string {
  return backup.fail_reason ?? 'Coffer recorded no reason.';
}

export type BackupWaitResult =
  | { outcome: 'stored'; backup: BackupView }
  | { outcome: 'failed'; backup: BackupView }
  | { outcome: 'gone'; last: BackupView | undefined }
  | { outcome: 'timeout'; last: BackupView | undefined; lastText: string | undefined };

/**
 * Polls GET /backups/{id} until it is COMPLETED or FAILED (or 404, or the timeout), showing on
 * stderr its status and, while it runs, the step and percent its instance shows (the backup's
 * own view has no progress: the instance's `progress` is the running backup's).
 */
export async function waitForBackup(
  io: CliIo,
  client: ApiClient,
  id: string,
  options: { label: string; timeoutSeconds: number },
): Promise<BackupWaitResult & { seconds: string }> {
  const progress = new ProgressDisplay(io.stderr, options.label);
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  let last: BackupView | undefined;
  let lastText: string | undefined;
  try {
    for (;;) {
      const current = await getBackup(client, id);
      if (current === undefined) return { outcome: 'gone', last, seconds: progress.elapsedSeconds(true) };
      last = current;
      lastText = await backupProgressText(client, current);
      progress.update(lastText);
      if (isStored(current)) return { outcome: 'stored', backup: current, seconds: progress.elapsedSeconds(true) };
      if (!isRunning(current)) return { outcome: 'failed', backup: current, seconds: progress.elapsedSeconds(true) };
      const remaining = deadline - Date.now();
      if (remaining <= 0) return { outcome: 'timeout', last, lastText, seconds: progress.elapsedSeconds(true) };
      await sleep(Math.min(io.pollIntervalMs, remaining));
    }
  } finally {
    progress.stop();
  }
}

/**
 * `BUILDING — backing up (42%), 1.2 GB stored`: the instance's progress counts only while it
 * shows BACKUP; a running backup's `stored_bytes` is what is stored so far (compressed).
 */
async function backupProgressText(client: ApiClient, backup: BackupView): Promise<string> {
  if (!isRunning(backup) || backup.instance_id == null) return backup.status;
  const instance = await getInstance(client, backup.instance_id);
  const step = instance?.status === 'BACKUP' ? stepText(instance.progress) : undefined;
  const stored = typeof backup.stored_bytes === 'number' && backup.stored_bytes > 0 ? `, ${storedSizeText(backup.stored_bytes)} stored` : '';
  return step === undefined ? `${backup.status}${stored}` : `${backup.status} — ${step}${stored}`;
}

export type DeleteWaitResult =
  | { outcome: 'deleted' }
  | { outcome: 'failed'; backup: BackupView }
  | { outcome: 'timeout'; left: number };

/** What tells a new DELETE_FAILED from one the backup already showed before this delete. */
function failureKey(backup: BackupView): string {
  return backup.status === 'DELETE_FAILED' ? `${backup.updated ?? ''} ${backup.fail_reason ?? ''}` : '';
}

/**
 * Polls each backup a delete removes (its incrementals first, the backup itself last) until the
 * API answers 404 for all of them, one of them newly shows DELETE_FAILED, or the timeout.
 */
export async function waitForDeletion(
  io: CliIo,
  client: ApiClient,
  backups: readonly BackupView[],
  options: { label: string; timeoutSeconds: number },
): Promise<DeleteWaitResult & { seconds: string }> {
  const progress = new ProgressDisplay(io.stderr, options.label);
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  const before = new Map(backups.map((b) => [b.id, failureKey(b)]));
  let left = [...backups];
  try {
    for (;;) {
      const still: BackupView[] = [];
      for (const backup of left) {
        const current = await getBackup(client, backup.id);
        if (current === undefined) continue;
        if (current.status === 'DELETE_FAILED' && failureKey(current) !== before.get(current.id)) {
          return { outcome: 'failed', backup: current, seconds: progress.elapsedSeconds(true) };
        }
        still.push(current);
      }
      left = still;
      if (left.length === 0) return { outcome: 'deleted', seconds: progress.elapsedSeconds(true) };
      progress.update(backups.length === 1 ? 'removing it from storage' : `${left.length} of ${backups.length} backups left`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) return { outcome: 'timeout', left: left.length, seconds: progress.elapsedSeconds(true) };
      await sleep(Math.min(io.pollIntervalMs, remaining));
    }
  } finally {
    progress.stop();
  }
}
