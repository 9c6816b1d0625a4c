import { readdir } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { CofferError } from '../../../common/index.js';
import type { BackupFacts, BackupRun } from '../engine.js';
import { withAdminClient, type AdminEndpoint } from './admin.js';
import { isSegmentName, parseLsn, segmentName, segmentOf } from './wal-files.js';

// PostgreSQL 15's incremental backup: the WAL written since its parent. The log is archived
// already (wal-archive.ts); an incremental marks a named restore point in it, switches to a new
// segment so the one holding the mark is finished, and waits until that segment is archived
// and shipped. Its object is a small manifest of what it covers; its data is the archived
// segments from its full backup's first one to the one holding the mark, which the archive keeps
// as long as the full backup is kept (wal-archive-retention.ts). A restore replays them and
// stops at the mark (point-in-time.ts).

/** A shipped segment leaves the spool within the shipper's interval; past this something is wrong */
const shippedTimeoutMs = 5 * 60_000;
const pollMs = 200;

/** The facts an incremental copies from its parent: what the archive is and where it begins. */
const inherited = ['wal-archiving', 'wal-container', 'wal-prefix', 'wal-start', 'wal-segment-bytes', 'system-identifier', 'version', 'format'] as const;

export interface WalIncrementalSource {
  endpoint(): Promise<AdminEndpoint>;
  spoolDir: string;
}

export async function startWalIncremental(source: WalIncrementalSource, parent: BackupFacts, backupName: string, signal: AbortSignal): Promise<BackupRun> {
  const endpoint = await source.endpoint();
  const standby = await withAdminClient(endpoint, 'postgres', async (client) => (await client.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby')).rows[0]!.standby);
  if (standby) {
    throw new CofferError(
      'BadRequest',
      "This instance is a replica, whose write-ahead log its primary archives: take incremental backups of the primary, or full backups of the replica.",
    );
  }
  if (parent['wal-archiving'] !== 'on' || parent['wal-prefix'] === undefined || parent['wal-start'] === undefined) {
    throw new CofferError(
      'BadRequest',
      "The parent backup was taken before this instance's write-ahead log was archived: take a full backup, then incremental ones after it.",
    );
  }
  const mark = await withAdminClient(endpoint, 'postgres', async (client) => {
    const system = await client.query<{ id: string; timeline: string }>(
      'SELECT system_identifier::text AS id, (SELECT timeline_id::text FROM pg_control_checkpoint()) AS timeline FROM pg_control_system()',
    );
    if (system.rows[0]!.id !== parent['system-identifier']) {
      throw new CofferError('BadRequest', 'The parent backup is of another cluster: take a full backup of this instance first.');
    }
    const point = await client.query<{ lsn: string }>('SELECT pg_create_restore_point($1)::text AS lsn', [backupName]);
    await client.query('SELECT pg_switch_wal()');
    return { lsn: point.rows[0]!.lsn, timeline: Number(system.rows[0]!.timeline) };
  });
  const segmentBytes = Number(parent['wal-segment-bytes']);
  const last = segmentName(mark.timeline, segmentOf(parseLsn(mark.lsn), segmentBytes), segmentBytes);
  await waitShipped(source, endpoint, last, signal);
  const facts: BackupFacts = {
    ...Object.fromEntries(inherited.flatMap((key) => (parent[key] === undefined ? [] : [[key, parent[key]]]))),
    timeline: String(mark.timeline),
    'restore-point': backupName,
    'stop-lsn': mark.lsn,
    'wal-end': last,
    'completed-at': new Date().toISOString(),
  };
  const manifest = Buffer.from(`${JSON.stringify({ kind: 'postgresql-wal', from: parent['wal-start'], to: last, restorePoint: backupName })}\n`);
  return { stream: Readable.from([manifest]), finished: Promise.resolve(facts) };
}

/** Until PostgreSQL archived `segment` into the spool and the guest shipped it from there. */
async function waitShipped(source: WalIncrementalSource, endpoint: AdminEndpoint, segment: string, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + shippedTimeoutMs;
  for (;;) {
    signal.throwIfAborted();
    const archived = await withAdminClient(endpoint, 'postgres', async (client) => {
      const result = await client.query<{ last: string | null }>('SELECT last_archived_wal AS last FROM pg_stat_archiver');
      const lastArchived = result.rows[0]?.last ?? null;
      return lastArchived !== null && isSegmentName(lastArchived) && lastArchived >= segment;
    });
    const waiting = (await readdir(source.spoolDir).catch(() => [])).filter((name) => isSegmentName(name) && name <= segment);
    if (archived && waiting.length === 0) return;
    if (Date.now() > deadline) {
      throw new CofferError('EngineError', `WAL segment ${segment} was not archived within ${shippedTimeoutMs / 60_000} minutes: is the backup storage reachable?`);
    }
    await sleep(pollMs, undefined, { signal });
  }
}
