import { randomBytes, randomUUID } from 'node:crypto';
import { CofferError } from '../../../common/index.js';
import type { ProcessRunner, StreamingProcess } from '../../process-runner.js';
import type { BackupAdmin, BackupFacts, BackupRun, BackupRequest, WalArchive } from '../engine.js';
import type { BackupModule } from '../engine-modules.js';
import { toolBackupRun, type BackupInspector } from '../tool-backup-run.js';
import type { DataCheckResult } from '../../../bus/index.js';
import { adminRole, openAdminClient, withAdminClient, type AdminEndpoint } from './admin.js';
import { checkPostgresqlData } from './data-check.js';
import { PostgresqlWalArchive, type WalArchiveHost } from './wal-archive.js';
import { startWalIncremental } from './wal-incremental.js';
import { parseLsn, parseSegmentSize, segmentName, segmentOf } from './wal-files.js';

// The backup module of PostgreSQL: a base backup of the whole cluster by pg_basebackup, as one
// tar on its standard output (`-D - -Ft`), with the WAL needed to make it consistent inside it
// (`-X fetch`), uncompressed (the backup codec compresses it). pg_basebackup connects over the
// instance's socket as the guest's administrative role, which pg_hba lets in for replication
// there and nowhere else (config.ts). The tar is restored by the lifecycle's prepare
// (restore.ts).
//
// Incremental backups are the WAL written since the parent (wal-incremental.ts), where the host
// archives the instance's WAL; PostgreSQL 17's block-level `pg_basebackup --incremental` needs
// WAL summarisation, which Coffer does not run (only PostgreSQL 15 is installed here).
//
// pg_basebackup writes into the compressor's stdin itself: the tar, three times the stored
// bytes, never passes through the guest, which spent as much CPU carrying it from one pipe to
// the next as zstd spends compressing it (bench/results/backup-end-to-end.md). The facts come
// from pg_basebackup's own account (`--verbose` on stderr) of what the server told it: where the
// backup's WAL starts, on which timeline, and where it ends; the major version is the server's,
// asked before (the PG_VERSION a restore checks). What once came from watching the tar is
// guarded this way instead:
// - a stream cut short or empty: pg_basebackup exits non-zero when the server's stream breaks
//   or its writes into zstd fail (zstd's own exit status and framing are the codec's to check),
//   and it says "base backup completed" only after writing all of it, manifest included;
// - a backup that cannot be restored: both WAL positions must be there, the end not before the
//   start, and a restore checks the unpacked files against the backup's manifest
//   (extractBaseBackup in restore.ts) before it replays anything.

/** pg_basebackup of a large cluster runs for hours; past this something is wrong */
const backupTimeoutMs = 12 * 60 * 60 * 1000;
const lsn = '[0-9A-F]+/[0-9A-F]+';

/** What the backup module needs of the instance's lifecycle. */
export interface BaseBackupSource {
  /** the path of one of the instance's version's programs */
  program(name: string): string;
  runner: ProcessRunner;
  endpoint(): Promise<AdminEndpoint>;
  /** the postmaster's pid when it runs */
  running(): Promise<number | undefined>;
  /** makes sure pg_hba lets the guest's role replicate over the socket */
  allowReplication(): Promise<void>;
}

export const postgresqlBackup: BackupModule<{ baseBackupSource(): BaseBackupSource; walArchiveHost(): WalArchiveHost | undefined }> = {
  // the WAL since the parent (wal-incremental.ts), where the host archives it
  incremental: true,
  pointInTime: true,
  create: (lifecycle) => new PostgresqlBackupAdmin(lifecycle.baseBackupSource(), lifecycle.walArchiveHost()),
};

/**
 * The facts of a base backup from what `pg_basebackup --verbose` wrote to stderr (in the C
 * locale) and the server's major version; throws EngineError when the log lacks a position or
 * the tool's last word, "base backup completed" (then it did not finish writing).
 */
export function baseBackupFacts(log: string, version: string): BackupFacts {
  const missing = (what: string) =>
    new CofferError('EngineError', `pg_basebackup did not report ${what}: the backup is not known to be complete.`, { details: log.slice(-1500) });
  const start = new RegExp(`^pg_basebackup: write-ahead log start point: (${lsn}) on timeline (\\d+)$`, 'm').exec(log);
  if (start === null) throw missing('where its WAL starts');
  const stop = new RegExp(`^pg_basebackup: write-ahead log end point: (${lsn})$`, 'm').exec(log)?.[1];
  if (stop === undefined) throw missing('where its WAL ends');
  if (!/^pg_basebackup: base backup completed$/m.test(log)) throw missing('the backup completed');
  if (parseLsn(stop) < parseLsn(start[1]!)) throw new CofferError('EngineError', `pg_basebackup reported a backup ending (${stop}) before it starts (${start[1]!}).`);
  if (!/^\d+$/.test(version)) throw new CofferError('Internal', `PostgreSQL's major version is a number, not ${version}.`);
  return { format: 'tar', version, timeline: start[2]!, 'start-lsn': start[1]!, 'stop-lsn': stop };
}

/** Reads the facts off the tool's stderr once it exited; the tar itself passes unread. */
class BaseBackupLog implements BackupInspector {
  constructor(
    private readonly tool: StreamingProcess,
    private readonly known: BackupFacts,
    private readonly version: string,
  ) {}

  see(): void {
    // only when no compressor took the tar (an uncompressed backup): nothing to learn from it here
  }

  facts(): BackupFacts {
    const facts: BackupFacts = {
      ...this.known,
      // a point-in-time restore from this backup reaches no earlier than its end
      'completed-at': new Date().toISOString(),
      ...baseBackupFacts(this.tool.stderrTail(), this.version),
    };
    // the first archived file a restore from it reads: the archive's older files serve no backup after it
    const segmentBytes = Number(facts['wal-segment-bytes']);
    facts['wal-start'] = segmentName(Number(facts.timeline), segmentOf(parseLsn(facts['start-lsn']!), segmentBytes), segmentBytes);
    return facts;
  }
}

/**
 * Keeps the server's WAL from now on until released. `-X fetch` reads the WAL from the backup's
 * start at its end, and a busy server recycles it meanwhile (max_wal_size, one checkpoint after
 * another): the backup failed with "requested WAL segment ... has already been removed". A
 * temporary slot reserves it; it belongs to this guest session and goes with it, so a guest that
 * dies mid-backup leaves no slot holding WAL for ever.
 */
async function holdWal(endpoint: AdminEndpoint): Promise<{ release: () => Promise<void> }> {
  const client = await openAdminClient(endpoint, 'postgres');
  try {
    await client.query('SELECT pg_create_physical_replication_slot($1, true, true)', [`coffer_backup_${randomBytes(8).toString('hex')}`]);
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
  return { release: () => client.end().catch(() => undefined) };
}

export class PostgresqlBackupAdmin implements BackupAdmin {
  readonly incremental: boolean;
  readonly walArchive: WalArchive | undefined;

  constructor(
    private readonly source: BaseBackupSource,
    private readonly archiveHost?: WalArchiveHost,
  ) {
    this.walArchive = archiveHost === undefined ? undefined : new PostgresqlWalArchive(archiveHost);
    this.incremental = archiveHost !== undefined;
  }

  async start(request: BackupRequest): Promise<BackupRun> {
    if ((await this.source.running()) === undefined) {
      throw new CofferError('EngineError', 'PostgreSQL is not running: start the instance before backing it up.');
    }
    if (request.parent !== undefined) {
      if (this.archiveHost === undefined) {
        throw new CofferError('OperationNotSupported', "Operation not supported for datastore postgresql: incremental backups need this host to archive the instance's WAL (a backup storage).");
      }
      return startWalIncremental({ endpoint: () => this.source.endpoint(), spoolDir: this.archiveHost.spoolDir }, request.parent, `coffer-${randomUUID()}`, request.signal);
    }
    await this.source.allowReplication();
    const endpoint = await this.source.endpoint();
    // which cluster the backup is of (WAL archived later must come from the same one), its WAL
    // segments' size, whether its WAL is archived from here on (wal-archive.ts), its major
    // version, and whether it is a standby (whose timeline may change under the backup)
    const server = await withAdminClient(endpoint, 'postgres', async (client) => {
      const result = await client.query<{ id: string; segment: string; mode: string; library: string; version: string; standby: boolean }>(
        "SELECT system_identifier::text AS id, current_setting('wal_segment_size') AS segment, " +
          "current_setting('archive_mode') AS mode, current_setting('archive_library', true) AS library, " +
          "current_setting('server_version_num') AS version, pg_is_in_recovery() AS standby FROM pg_control_system()",
      );
      const row = result.rows[0]!;
      // a standby does not archive (archive_mode on, not always): its primary does
      const archiving = this.walArchive !== undefined && row.mode === 'on' && row.library === 'basic_archive' && !row.standby;
      const known: BackupFacts = { 'system-identifier': row.id, 'wal-segment-bytes': String(parseSegmentSize(row.segment)), 'wal-archiving': archiving ? 'on' : 'off' };
      // 150004 → 15: the data directory's PG_VERSION, which a restore matches
      return { known, version: String(Math.floor(Number(row.version) / 10000)), standby: row.standby };
    });
    const walHold = await holdWal(endpoint);
    let tool: StreamingProcess;
    try {
      tool = this.source.runner.stream(
        this.source.program('pg_basebackup'),
        ['--pgdata=-', '--format=tar', '--wal-method=fetch', '--checkpoint=fast', '--no-password', '--label=coffer', '--verbose'],
        {
          timeoutMs: backupTimeoutMs,
          signal: request.signal,
          // in the environment, not on the command line that anyone may read in ps. The program runs
          // as the engine's OS user, who can read it there; but whoever runs programs as that user
          // owns the data directory already, and the guest's password gives them nothing more.
          env: {
            PGHOST: endpoint.socketDir,
            PGPORT: String(endpoint.port),
            PGUSER: adminRole,
            PGPASSWORD: endpoint.password,
            PGAPPNAME: 'coffer-backup',
            // its verbose lines are read (baseBackupFacts): untranslated
            LC_MESSAGES: 'C',
          },
          ...(request.output === undefined ? {} : { stdout: request.output }),
        },
      );
    } catch (err) {
      await walHold.release();
      throw err;
    }
    const run = toolBackupRun(tool, new BaseBackupLog(tool, server.known, server.version), request.signal);
    const finished = (server.standby ? run.finished.then((facts) => this.sameTimeline(endpoint, facts)) : run.finished).finally(walHold.release);
    finished.catch(() => undefined);
    return { stream: run.stream, finished, wroteToOutput: request.output !== undefined };
  }

  /**
   * A standby follows its primary onto a new timeline after a failover; pg_basebackup does not
   * say on which timeline the backup ended (its manifest did). The timeline a standby has
   * replayed to only grows: when it is still the backup's start one, the backup ended there.
   * Otherwise it may span two timelines, whose end this guest cannot name: it is taken again.
   */
  private async sameTimeline(endpoint: AdminEndpoint, facts: BackupFacts): Promise<BackupFacts> {
    const now = await withAdminClient(endpoint, 'postgres', async (client) => {
      const result = await client.query<{ timeline: number }>('SELECT min_recovery_end_timeline AS timeline FROM pg_control_recovery()');
      return result.rows[0]!.timeline;
    });
    if (now > Number(facts.timeline)) {
      throw new CofferError('EngineError', `The standby moved from timeline ${facts.timeline} to ${now} while it was backed up (a failover): take the backup again.`);
    }
    return facts;
  }

  checkData(signal: AbortSignal): Promise<DataCheckResult> {
    return checkPostgresqlData(this.source, signal);
  }
}
