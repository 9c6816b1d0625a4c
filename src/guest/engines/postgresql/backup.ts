import { randomUUID } from 'node:crypto';
import { CofferError } from '../../../common/index.js';
import type { ProcessRunner } from '../../process-runner.js';
import type { BackupAdmin, BackupFacts, BackupRun, BackupRequest, WalArchive } from '../engine.js';
import type { BackupModule } from '../engine-modules.js';
import { toolBackupRun, type BackupInspector } from '../tool-backup-run.js';
import type { DataCheckResult } from '../../../bus/index.js';
import { adminRole, withAdminClient, type AdminEndpoint } from './admin.js';
import { checkPostgresqlData } from './data-check.js';
import { TarWatch } from './tar-watch.js';
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
// The facts come from the stream itself as it passes: backup_label (where the backup's WAL
// starts, on which timeline), the manifest pg_basebackup appends (where it ends) and
// PG_VERSION (the major version, which a restore must match).

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

/** What a base backup's own files say about it; throws EngineError when one of them is missing. */
export function baseBackupFacts(files: { label?: string; manifestTail?: string; version?: string }): BackupFacts {
  const missing = (what: string) =>
    new CofferError('EngineError', `pg_basebackup's output lacks ${what}: it is not a complete base backup.`);
  if (files.label === undefined) throw missing('backup_label');
  if (files.manifestTail === undefined) throw missing('its backup manifest');
  if (files.version === undefined) throw missing('PG_VERSION');
  const start = new RegExp(`^START WAL LOCATION: (${lsn})`, 'm').exec(files.label)?.[1];
  const timeline = /^START TIMELINE: (\d+)$/m.exec(files.label)?.[1];
  if (start === undefined || timeline === undefined) throw missing('a start position in its backup_label');
  const ranges = [...files.manifestTail.matchAll(new RegExp(`"Timeline": (\\d+), "Start-LSN": "(${lsn})", "End-LSN": "(${lsn})"`, 'g'))];
  const last = ranges.at(-1);
  if (last === undefined) throw missing('the WAL range in its backup manifest');
  const version = files.version.trim();
  if (!/^\d+$/.test(version)) throw missing('a major version in PG_VERSION');
  const facts: BackupFacts = { format: 'tar', version, timeline, 'start-lsn': start, 'stop-lsn': last[3]! };
  // a backup taken from a standby while it was promoted ends on a later timeline
  if (last[1] !== timeline) facts['stop-timeline'] = last[1]!;
  return facts;
}

class BaseBackupInspector implements BackupInspector {
  private readonly watch = new TarWatch([
    { name: 'backup_label', limit: 64 * 1024, keep: 'head' },
    // the WAL ranges close the manifest, which lists every file of the cluster before them
    { name: 'backup_manifest', limit: 64 * 1024, keep: 'tail' },
    { name: 'PG_VERSION', limit: 64, keep: 'head' },
  ]);

  constructor(private readonly known: BackupFacts) {}

  see(chunk: Buffer): void {
    this.watch.see(chunk);
  }

  facts(): BackupFacts {
    if (!this.watch.complete) throw new CofferError('EngineError', "pg_basebackup's output ended before the end of its tar archive.");
    const read = (name: string) => this.watch.entry(name)?.toString('utf8');
    const facts: BackupFacts = {
      ...this.known,
      // a point-in-time restore from this backup reaches no earlier than its end
      'completed-at': new Date().toISOString(),
      ...baseBackupFacts({ label: read('backup_label'), manifestTail: read('backup_manifest'), version: read('PG_VERSION') }),
    };
    // the first archived file a restore from it reads: the archive's older files serve no backup after it
    const segmentBytes = Number(facts['wal-segment-bytes']);
    facts['wal-start'] = segmentName(Number(facts.timeline), segmentOf(parseLsn(facts['start-lsn']!), segmentBytes), segmentBytes);
    return facts;
  }
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
    // segments' size, and whether its WAL is archived from here on (wal-archive.ts)
    const known = await withAdminClient(endpoint, 'postgres', async (client) => {
      const result = await client.query<{ id: string; segment: string; mode: string; library: string }>(
        "SELECT system_identifier::text AS id, current_setting('wal_segment_size') AS segment, " +
          "current_setting('archive_mode') AS mode, current_setting('archive_library', true) AS library FROM pg_control_system()",
      );
      const row = result.rows[0]!;
      const archiving = this.walArchive !== undefined && row.mode === 'on' && row.library === 'basic_archive';
      return { 'system-identifier': row.id, 'wal-segment-bytes': String(parseSegmentSize(row.segment)), 'wal-archiving': archiving ? 'on' : 'off' };
    });
    const tool = this.source.runner.stream(
      this.source.program('pg_basebackup'),
      ['--pgdata=-', '--format=tar', '--wal-method=fetch', '--checkpoint=fast', '--no-password', '--label=coffer'],
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
        },
      },
    );
    return toolBackupRun(tool, new BaseBackupInspector(known), request.signal);
  }

  checkData(signal: AbortSignal): Promise<DataCheckResult> {
    return checkPostgresqlData(this.source, signal);
  }
}
