import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { CofferError, isCofferError } from '../../../common/index.js';
import type { ProcessRunner } from '../../process-runner.js';
import type { ArchivedLogFile, BackupFacts, PointInTimeSource } from '../engine.js';
import { isHistoryName, isSegmentName, microsOf, parseLsn, parseSegmentName, segmentName, segmentOf } from './wal-files.js';

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
  /** an incremental backup's restore point (wal-incremental.ts): replay up to it */
  targetName?: string;
}

/** Where a restore stops: a moment, or the mark an incremental backup left in the log (with the segment holding it). */
export type RecoveryTarget = { time: Date } | { restorePoint: string; lastSegment: string };

export function planRecovery(files: readonly ArchivedLogFile[], base: BackupFacts, target: RecoveryTarget): RecoveryPlan {
  const segmentBytes = Number(base['wal-segment-bytes'] ?? 16 * 1024 * 1024);
  const timeline = Number(base.timeline);
  const start = base['start-lsn'];
  const completedAt = base['completed-at'];
  if (!Number.isInteger(timeline) || start === undefined) {
    throw new CofferError('BadRequest', 'The backup does not record where its WAL begins: it cannot be rolled forward to a point in time.');
  }
  if ('time' in target && completedAt !== undefined && target.time.getTime() < Date.parse(completedAt)) {
    throw new CofferError('BadRequest', `The backup completed at ${completedAt}: it can be rolled forward to a later moment only, not to ${target.time.toISOString()}.`);
  }
  const segments = new Map<bigint, ArchivedLogFile>();
  for (const file of files) {
    if (!isSegmentName(file.name)) continue;
    const parsed = parseSegmentName(file.name, segmentBytes);
    if (parsed.timeline === timeline) segments.set(parsed.number, file);
  }
  const histories = files.filter((f) => isHistoryName(f.name)).map((f) => f.name);
  const targetMicros = 'time' in target ? microsOf(target.time) : undefined;
  const chosen: string[] = [];
  let number = segmentOf(parseLsn(start), segmentBytes);
  for (;;) {
    const file = segments.get(number);
    if (file === undefined) break;
    chosen.push(file.name);
    if ('restorePoint' in target) {
      if (file.name === target.lastSegment) return { files: [...histories, ...chosen], targetName: target.restorePoint };
    } else {
      const last = file.facts['last-commit'];
      if (last !== undefined && microsOf(last) > targetMicros!) return { files: [...histories, ...chosen], targetTime: target.time };
    }
    number += 1n;
  }
  if ('restorePoint' in target) {
    throw new CofferError('BadRequest', `The archived WAL the incremental backup consists of is missing (from ${chosen.at(-1) ?? 'its first segment'} on): restore its full backup instead.`);
  }
  const gapAfter = [...segments.keys()].find((n) => n > number);
  if (gapAfter !== undefined) {
    throw new CofferError('BadRequest', `The archived WAL has a gap: segment ${number.toString(16).toUpperCase()} of timeline ${timeline} is missing, so no moment after it can be restored.`);
  }
  if (chosen.length === 0) {
    throw new CofferError('BadRequest', "The archived WAL that follows the backup is missing: the source's log was not archived from this backup on.");
  }
  return { files: [...histories, ...chosen] };
}

/**
 * Fetches the plan's files into the data directory, as the engine's OS user, and answers the
 * settings the single-user recovery runs with. The data directory is the new instance's, which
 * nothing but this restore has run in yet.
 */
export async function fetchRecoveryFiles(runner: ProcessRunner, dataDir: string, source: PointInTimeSource, plan: RecoveryPlan): Promise<string[]> {
  await fetchArchivedFiles(runner, dataDir, source, plan.files);
  await runner.run('/usr/bin/touch', ['recovery.signal'], { cwd: dataDir, timeoutMs: copyTimeoutMs });
  return [
    `restore_command=${restoreCommand}`,
    'recovery_target_timeline=current',
    'recovery_target_action=promote',
    ...(plan.targetTime === undefined ? [] : [`recovery_target_time=${plan.targetTime.toISOString().replace('T', ' ').replace('Z', '+00')}`, 'recovery_target_inclusive=on']),
    ...(plan.targetName === undefined ? [] : [`recovery_target_name=${plan.targetName}`]),
  ];
}

/** restore_command for the files fetched (run by the server in its data directory) */
export const restoreCommand = `cp ${restoreDirName}/%f %p`;

/** Fetches `names` of the source's archive into the data directory, as the engine's OS user. */
export async function fetchArchivedFiles(runner: ProcessRunner, dataDir: string, source: PointInTimeSource, names: readonly string[]): Promise<void> {
  await runner.run('/bin/mkdir', ['-p', '-m', '0700', '--', restoreDirName], { cwd: dataDir, timeoutMs: copyTimeoutMs });
  for (const name of names) {
    const body = await source.open(name);
    const dd = runner.stream('/bin/dd', [`of=${restoreDirName}/${name}`, 'bs=1M', 'status=none'], { cwd: dataDir, timeoutMs: copyTimeoutMs });
    const [fed, exited] = await Promise.allSettled([pipeline(body, dd.stdin), (async () => { dd.stdout.resume(); await dd.exited; })()]);
    if (fed.status === 'rejected' && isCofferError(fed.reason)) throw fed.reason;
    if (exited.status === 'rejected') throw exited.reason;
    if (fed.status === 'rejected') throw new CofferError('EngineError', `Archived WAL file ${name} could not be read: ${String(fed.reason)}`, { cause: fed.reason });
  }
}

/**
 * What a replica made from a base backup replays before it streams from its primary: the
 * timelines' histories and every archived segment of the backup's timeline from the one it
 * starts in, up to the first gap (streaming takes over from there, or the seed fails and the
 * replica is copied from its primary instead). None is a plan too: the backup's own WAL makes
 * it consistent.
 */
export function planCatchUp(files: readonly ArchivedLogFile[], base: BackupFacts): string[] {
  const segmentBytes = Number(base['wal-segment-bytes'] ?? 16 * 1024 * 1024);
  const timeline = Number(base.timeline);
  const start = base['start-lsn'];
  if (!Number.isInteger(timeline) || start === undefined) return [];
  const segments = new Set<string>();
  for (const file of files) {
    if (isSegmentName(file.name) && parseSegmentName(file.name, segmentBytes).timeline === timeline) segments.add(file.name);
  }
  const chosen: string[] = [];
  for (let number = segmentOf(parseLsn(start), segmentBytes); ; number += 1n) {
    const name = segmentName(timeline, number, segmentBytes);
    if (!segments.has(name)) break;
    chosen.push(name);
  }
  return [...files.filter((f) => isHistoryName(f.name)).map((f) => f.name), ...chosen];
}

/** What the recovery leaves of the fetch once the cluster is promoted. */
export async function removeRecoveryFiles(dataDir: string): Promise<void> {
  await rm(join(dataDir, restoreDirName), { recursive: true, force: true });
}
