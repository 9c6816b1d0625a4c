import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { CofferError, isCofferError } from '../../../common/index.js';
import type { ProcessRunner } from '../../process-runner.js';
import type { ArchivedLogFile, BackupFacts, PointInTimeSource } from '../engine.js';
import { isHistoryName, isSegmentName, microsOf, parseLsn, parseSegmentName, segmentOf } from './wal-files.js';

// A point-in-time restore: the base backup (restore.ts) rolled forward through the source's
// archived WAL (wal-archive.ts) to a moment. The segments it needs are fetched from the storage
// into a directory of the data directory before the server runs (as the engine's OS user, like
// everything in it), and the single-user recovery that restores the backup reads them with
// `cp` as its restore_command, stops at the target and promotes: the new instance starts a
// timeline of its own, and its source's archive is never written.
//
// Which segments: from the one the backup starts in, each following one without a gap, up to the
// first whose last transaction end is after the target (recovery stops inside it). When no
// archived segment ends a transaction after the target, every change archived was committed
// before it, and recovery replays them all with no target: PostgreSQL refuses a target it
// never reaches.

const restoreDirName = 'coffer_restore_wal';
const copyTimeoutMs = 10 * 60_000;

export interface RecoveryPlan {
  files: string[];
  /** undefined: replay everything fetched (no change archived after the target) */
  targetTime?: Date;
}

export function planRecovery(files: readonly ArchivedLogFile[], base: BackupFacts, target: Date): RecoveryPlan {
  const segmentBytes = Number(base['wal-segment-bytes'] ?? 16 * 1024 * 1024);
  const timeline = Number(base.timeline);
  const start = base['start-lsn'];
  const completedAt = base['completed-at'];
  if (!Number.isInteger(timeline) || start === undefined) {
    throw new CofferError('BadRequest', 'The backup does not record where its WAL begins: it cannot be rolled forward to a point in time.');
  }
  if (completedAt !== undefined && target.getTime() < Date.parse(completedAt)) {
    throw new CofferError('BadRequest', `The backup completed at ${completedAt}: it can be rolled forward to a later moment only, not to ${target.toISOString()}.`);
  }
  const segments = new Map<bigint, ArchivedLogFile>();
  for (const file of files) {
    if (!isSegmentName(file.name)) continue;
    const parsed = parseSegmentName(file.name, segmentBytes);
    if (parsed.timeline === timeline) segments.set(parsed.number, file);
  }
  const targetMicros = microsOf(target);
  const chosen: string[] = [];
  let number = segmentOf(parseLsn(start), segmentBytes);
  for (;;) {
    const file = segments.get(number);
    if (file === undefined) break;
    chosen.push(file.name);
    const last = file.facts['last-commit'];
    if (last !== undefined && microsOf(last) > targetMicros) {
      return { files: [...files.filter((f) => isHistoryName(f.name)).map((f) => f.name), ...chosen], targetTime: target };
    }
    number += 1n;
  }
  const gapAfter = [...segments.keys()].find((n) => n > number);
  if (gapAfter !== undefined) {
    throw new CofferError('BadRequest', `The archived WAL has a gap: segment ${number.toString(16).toUpperCase()} of timeline ${timeline} is missing, so no moment after it can be restored.`);
  }
  if (chosen.length === 0) {
    throw new CofferError('BadRequest', "The archived WAL that follows the backup is missing: the source's log was not archived from this backup on.");
  }
  return { files: [...files.filter((f) => isHistoryName(f.name)).map((f) => f.name), ...chosen] };
}

/**
 * Fetches the plan's files into the data directory, as the engine's OS user, and answers the
 * settings the single-user recovery runs with. The data directory is the new instance's, which
 * nothing but this restore has run in yet.
 */
export async function fetchRecoveryFiles(runner: ProcessRunner, dataDir: string, source: PointInTimeSource, plan: RecoveryPlan): Promise<string[]> {
  await runner.run('/bin/mkdir', ['-m', '0700', '--', restoreDirName], { cwd: dataDir, timeoutMs: copyTimeoutMs });
  for (const name of plan.files) {
    const body = await source.open(name);
    const dd = runner.stream('/bin/dd', [`of=${restoreDirName}/${name}`, 'bs=1M', 'status=none'], { cwd: dataDir, timeoutMs: copyTimeoutMs });
    const [fed, exited] = await Promise.allSettled([pipeline(body, dd.stdin), (async () => { dd.stdout.resume(); await dd.exited; })()]);
    if (fed.status === 'rejected' && isCofferError(fed.reason)) throw fed.reason;
    if (exited.status === 'rejected') throw exited.reason;
    if (fed.status === 'rejected') throw new CofferError('EngineError', `Archived WAL file ${name} could not be read: ${String(fed.reason)}`, { cause: fed.reason });
  }
  await runner.run('/usr/bin/touch', ['recovery.signal'], { cwd: dataDir, timeoutMs: copyTimeoutMs });
  return [
    'restore_command=cp ' + `${restoreDirName}/%f %p`,
    'recovery_target_timeline=current',
    'recovery_target_action=promote',
    ...(plan.targetTime === undefined ? [] : [`recovery_target_time=${plan.targetTime.toISOString().replace('T', ' ').replace('Z', '+00')}`, 'recovery_target_inclusive=on']),
  ];
}

/** What the recovery leaves of the fetch once the cluster is promoted. */
export async function removeRecoveryFiles(dataDir: string): Promise<void> {
  await rm(join(dataDir, restoreDirName), { recursive: true, force: true });
}
