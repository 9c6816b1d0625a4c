import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { CofferError } from '../../../common/index.js';
import type { ProcessRunner } from '../../process-runner.js';
import type { BackupAdmin, BackupFacts, BackupRun, BackupRequest, WalArchive } from '../engine.js';
import type { BackupModule } from '../engine-modules.js';
import { toolBackupRun, type BackupInspector } from '../tool-backup-run.js';
import type { DataCheckResult } from '../../../bus/index.js';
import { infoFields, withAdminClient, type AdminEndpoint } from './admin.js';
import { checkRedisData } from './data-check.js';
import { RedisAofArchive, type AofArchiveHost } from './aof-archive.js';
import { aofDirName, chunkName, isBaseRdbName, isIncrementalName, parseManifest } from './aof-files.js';

// The backup module of Redis: an RDB snapshot. BGSAVE makes the server fork and write
// `dump.rdb` in its data directory while it keeps serving; once the save is done the file is
// streamed by `cat`, run as the engine's OS user. Not read by the guest itself: the data
// directory is the engine user's, and whoever runs programs as that user could have made
// `dump.rdb` a link to a file only the host may read (another instance's, a key), which the
// guest would then copy into a backup its tenant can restore. As that user, a link reaches
// nothing the engine could not read anyway. A save that completes while the file is read
// replaces it by a rename: `cat` keeps reading the snapshot it opened.
//
// The RDB holds the data only: the ACL users live in the instance's ACL file and are not part
// of it, so a restored instance has the users its own prepare creates (restore: lifecycle.ts).
//
// Where the host archives the AOF (point in time, aof-archive.ts), a backup is instead the base
// of an AOF rewrite of its own: the rewrite forks at one moment, writes the data as of then as a
// new base (an RDB, aof-use-rdb-preamble being on) and opens a new incremental file for every
// write after it. That base is exactly the data the first byte of that file follows, so the
// backup records that file's first chunk as where its log starts (`wal-start`), and a restore
// rolls it forward from there. A plain restore of it is a plain RDB restore.
//
// Full backups only: an incremental would be the AOF written since the parent, not kept yet.

/** a BGSAVE of a large dataset (~80 MB/s) and its copy may take a while; past this something is wrong */
const backupTimeoutMs = 6 * 60 * 60 * 1000;
const pollMs = 50;
const rdbName = 'dump.rdb';

/** What the backup module needs of the instance's lifecycle. */
export interface RdbSource {
  runner: ProcessRunner;
  /** the path of one of the instance's version's programs (redis-check-rdb) */
  program(name: string): string;
  /** where redis-server writes `dump.rdb` */
  dataDir: string;
  endpoint(): Promise<AdminEndpoint>;
  /** redis-server's pid when it runs */
  running(): Promise<number | undefined>;
  /**
   * Present where the host archives the AOF: redis.conf rendered again and the running server
   * set to write what archiving needs (an instance may have started before the host had storage)
   */
  ensureArchiving?(): Promise<void>;
}

export const redisBackup: BackupModule<{ rdbSource(): RdbSource; aofArchiveHost(): AofArchiveHost | undefined }> = {
  incremental: false,
  pointInTime: true,
  create: (lifecycle) => new RedisBackupAdmin(lifecycle.rdbSource(), lifecycle.aofArchiveHost()),
};

export async function info(client: Redis, section: string): Promise<Map<string, string>> {
  return infoFields(String(await client.call('INFO', [section])));
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function checkAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new CofferError('EngineError', 'The Redis backup was aborted.');
}

/**
 * Starts a BGSAVE of our own and resolves once it has written `dump.rdb`. A save already under
 * way (an automatic save point's, root's BGSAVE) or an AOF rewrite makes Redis refuse another
 * fork: it is waited for and BGSAVE asked again, so the snapshot is never older than the request.
 */
export async function snapshot(client: Redis, signal: AbortSignal, deadline: number): Promise<void> {
  for (;;) {
    checkAborted(signal);
    if (Date.now() > deadline) throw new CofferError('EngineError', 'Redis did not start a snapshot (BGSAVE) in time: another save or AOF rewrite kept running.');
    try {
      const reply = String(await client.call('BGSAVE'));
      if (reply.startsWith('Background saving started')) break;
      throw new CofferError('EngineError', `Redis answered BGSAVE with "${reply}".`);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      // "Background save already in progress"; an AOF rewrite's (a replica's after its first sync): "Another child process is active"
      if (!/in progress|another child process is active/i.test(message)) throw err instanceof CofferError ? err : new CofferError('EngineError', `Redis refused BGSAVE: ${message}`);
      await sleep(pollMs);
    }
  }
  for (;;) {
    const persistence = await info(client, 'persistence');
    if (persistence.get('rdb_bgsave_in_progress') === '0') {
      if (persistence.get('rdb_last_bgsave_status') !== 'ok') {
        throw new CofferError('EngineError', 'Redis failed to write its snapshot (BGSAVE): see its log, the disk may be full.');
      }
      return;
    }
    checkAborted(signal);
    if (Date.now() > deadline) throw new CofferError('EngineError', 'Redis did not finish its snapshot (BGSAVE) in time.');
    await sleep(pollMs);
  }
}

/** An RDB file: `REDIS` and a 4-digit format version, then the data, which ends with the EOF opcode and a checksum. */
class RdbInspector implements BackupInspector {
  private readonly known: BackupFacts;

  private head = Buffer.alloc(0);
  private tail = Buffer.alloc(0);

  constructor(known: BackupFacts) {
    this.known = known;
  }

  see(chunk: Buffer): void {
    if (this.head.length < 9) this.head = Buffer.concat([this.head, chunk.subarray(0, 9 - this.head.length)]);
    // a copy: a slice would hold on to the whole chunk
    this.tail = Buffer.from(Buffer.concat([this.tail, chunk.subarray(-9)]).subarray(-9));
  }

  facts(): BackupFacts {
    const magic = /^REDIS(\d{4})$/.exec(this.head.toString('latin1'));
    if (magic === null) throw new CofferError('EngineError', 'The Redis snapshot is not an RDB file.');
    // 0xFF (RDB_OPCODE_EOF) then 8 bytes of CRC64
    if (this.tail.length < 9 || this.tail[0] !== 0xff) throw new CofferError('EngineError', 'The Redis snapshot ends before its end marker.');
    const archived: BackupFacts = this.known['wal-start'] === undefined ? {} : { 'wal-archiving': 'on', 'completed-at': new Date().toISOString() };
    return { ...this.known, ...archived, format: 'rdb', 'rdb-version': String(Number(magic[1])) };
  }
}

/**
 * Starts an AOF rewrite of our own (after any running one: its base may be older than the
 * request) and resolves once it is done.
 */
export async function rewriteAof(client: Redis, signal: AbortSignal, deadline: number): Promise<void> {
  for (;;) {
    checkAborted(signal);
    if (Date.now() > deadline) throw new CofferError('EngineError', 'Redis did not start an AOF rewrite (BGREWRITEAOF) in time: another kept running.');
    const persistence = await info(client, 'persistence');
    if (persistence.get('aof_rewrite_in_progress') === '0' && persistence.get('aof_rewrite_scheduled') === '0') {
      try {
        // "started", or "scheduled" behind a running save: either way it shows below
        await client.call('BGREWRITEAOF');
        break;
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (!/in progress/i.test(message)) throw new CofferError('EngineError', `Redis refused BGREWRITEAOF: ${message}`);
      }
    }
    await sleep(pollMs);
  }
  // BGREWRITEAOF forks before it answers, or marks the rewrite scheduled: ours runs until this shows neither
  for (;;) {
    const persistence = await info(client, 'persistence');
    const running = persistence.get('aof_rewrite_in_progress') !== '0' || persistence.get('aof_rewrite_scheduled') !== '0';
    if (!running) {
      if (persistence.get('aof_last_bgrewrite_status') !== 'ok') {
        throw new CofferError('EngineError', 'Redis failed to rewrite its AOF (BGREWRITEAOF): see its log, the disk may be full.');
      }
      return;
    }
    checkAborted(signal);
    if (Date.now() > deadline) throw new CofferError('EngineError', 'Redis did not finish its AOF rewrite (BGREWRITEAOF) in time.');
    await sleep(pollMs);
  }
}

/** The manifest's base (an RDB) and the first chunk of the incremental files that follow it. */
export function baseOfManifest(manifest: string): { base: string; walStart: string } {
  const entries = parseManifest(manifest);
  const base = entries.find((e) => e.type === 'b');
  const first = entries.filter((e) => e.type === 'i' && isIncrementalName(e.name)).sort((a, b) => a.seq - b.seq)[0];
  if (base === undefined || !isBaseRdbName(base.name) || first === undefined) {
    throw new CofferError('EngineError', "Redis's AOF has no RDB base followed by an incremental file: aof-use-rdb-preamble must be on.");
  }
  return { base: base.name, walStart: chunkName({ seq: first.seq, offset: 0 }) };
}

export class RedisBackupAdmin implements BackupAdmin {
  readonly incremental = false;
  readonly walArchive: WalArchive | undefined;

  constructor(
    private readonly source: RdbSource,
    archiveHost?: AofArchiveHost,
  ) {
    this.walArchive = archiveHost === undefined ? undefined : new RedisAofArchive(archiveHost);
  }

  async start(request: BackupRequest): Promise<BackupRun> {
    if (request.parent !== undefined) {
      throw new CofferError('OperationNotSupported', 'Operation not supported for datastore redis: incremental backups.');
    }
    if ((await this.source.running()) === undefined) {
      throw new CofferError('EngineError', 'Redis is not running: start the instance before backing it up.');
    }
    const deadline = Date.now() + backupTimeoutMs;
    if (this.source.ensureArchiving !== undefined) return this.startBase(request.signal, deadline);
    const version = await withAdminClient(
      await this.source.endpoint(),
      async (client) => {
        const server = await info(client, 'server');
        await snapshot(client, request.signal, deadline);
        return server.get('redis_version') ?? 'unknown';
      },
    );
    checkAborted(request.signal);
    const tool = this.source.runner.stream('/bin/cat', [rdbName], {
      cwd: this.source.dataDir,
      timeoutMs: Math.max(1, deadline - Date.now()),
      signal: request.signal,
    });
    return toolBackupRun(tool, new RdbInspector({ 'redis-version': version }), request.signal);
  }

  /** The base of a rewrite of our own, streamed by `cat` from the AOF directory. */
  private async startBase(signal: AbortSignal, deadline: number): Promise<BackupRun> {
    await this.source.ensureArchiving!();
    const version = await withAdminClient(await this.source.endpoint(), async (client) => {
      const server = await info(client, 'server');
      await rewriteAof(client, signal, deadline);
      return server.get('redis_version') ?? 'unknown';
    });
    checkAborted(signal);
    const aofDir = join(this.source.dataDir, aofDirName);
    const { stdout } = await this.source.runner.run('/bin/cat', ['--', 'appendonly.aof.manifest'], { cwd: aofDir, timeoutMs: 60_000 });
    const { base, walStart } = baseOfManifest(stdout);
    const tool = this.source.runner.stream('/bin/cat', ['--', base], { cwd: aofDir, timeoutMs: Math.max(1, deadline - Date.now()), signal });
    return toolBackupRun(tool, new RdbInspector({ 'redis-version': version, 'wal-start': walStart }), signal);
  }

  checkData(signal: AbortSignal): Promise<DataCheckResult> {
    return checkRedisData(this.source, signal);
  }
}
