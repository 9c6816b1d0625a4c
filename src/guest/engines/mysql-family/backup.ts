import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { CofferError } from '../../../common/index.js';
import type { Logger } from '../../../common/index.js';
import type { ProcessRunner } from '../../process-runner.js';
import type { BackupAdmin, BackupFacts, BackupRun, BackupRequest, WalArchive } from '../engine.js';
import { BinlogArchive, type BinlogArchiveHost } from './binlog-archive.js';
import type { BackupModule } from '../engine-modules.js';
import type { MysqlFamilyAdmin } from './admin.js';
import { backupArgs, backupFacts, checkParent, knownToolFailure, type BackupTools } from './backup-tools.js';
import type { MysqlFamilyFlavor } from './flavor.js';
import { account, backupUser, dropUserStatement } from './sql.js';
import type { DataCheckResult } from '../../../bus/index.js';
import { checkMysqlFamilyData } from './data-check.js';

// The backup module: physical backups of the running server by the family's backup tool
// (backup-tools.ts), full or incremental since a parent's LSN, streamed as xbstream while the
// server keeps serving. Restores are the lifecycle's prepare (restore-chain.ts). The LSN an
// incremental continues from is the checkpoint its parent started at (the tool refuses any
// other), so an incremental also holds the pages changed between that checkpoint and its
// parent's end: after a bulk load that InnoDB has not yet checkpointed, it is larger than the
// change.
//
// The tool runs as the engine's OS user, so whatever it is given that user's programs can read
// (its environment, its memory): it never gets the guest's admin password. It logs in as an
// account of its own, `os_backup`@`localhost` (the socket only), with the few privileges a
// backup needs and a password made for this one backup; the account and any session it still
// has are gone when the backup ends. Those privileges give a program of the engine's user
// nothing it could not already do to files it owns.

/** a large instance takes hours; the caller's signal is how a backup stops sooner */
export const toolTimeoutMs = 12 * 60 * 60 * 1000;
const toolFileLimit = 1024 * 1024;

/** What the backup module needs of the lifecycle. */
export interface BackupHost {
  readonly flavor: MysqlFamilyFlavor;
  readonly runner: ProcessRunner;
  readonly logger: Logger;
  readonly admin: MysqlFamilyAdmin;
  readonly dataDir: string;
  readonly configFile: string;
  readonly socket: string;
  /** the directory the tool writes its checkpoints and info into, in the instance's directory */
  readonly scratchDir: string;
  /** the instance's version name (e.g. 10.11); throws when this host lacks it */
  versionName(): Promise<string>;
  tools(): Promise<BackupTools>;
  running(): Promise<boolean>;
  /** whether the server writes a binary log the host archives (binlog-archive.ts) */
  readonly archivesBinlog: boolean;
}

/**
 * A file the tool wrote in a directory of the engine's user, read by the guest: never through
 * a link that user may have put there, and never more than a tool file's size.
 */
export async function readToolFile(path: string): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch((err: unknown) => {
    throw new CofferError('EngineError', `The backup tool left no ${basename(path)}.`, { cause: err });
  });
  try {
    const stats = await handle.stat();
    if (!stats.isFile() || stats.size > toolFileLimit) throw new CofferError('EngineError', `${path} is not a file the backup tool writes.`);
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

type Row = RowDataPacket & Record<string, unknown>;

// The tool's account is this server's alone, kept out of its binary log: on a replica, a write
// of its own there would be a GTID its primary never had (strict mode then stops replication),
// and a primary's would reach its replicas and the binary logs a point-in-time restore replays.
async function createBackupAccount(connection: Connection, flavor: MysqlFamilyFlavor, password: string): Promise<void> {
  const backup = account(backupUser, 'localhost');
  await connection.query('SET SESSION sql_log_bin = 0');
  await connection.query(dropUserStatement(backupUser, 'localhost'));
  await connection.query(`CREATE USER ${backup} IDENTIFIED ${flavor.identifiedClause(flavor.hashPassword(password))}`);
  for (const grant of flavor.backup.grants) await connection.query(`GRANT ${grant.privileges} ON ${grant.on} TO ${backup}`);
}

async function dropBackupAccount(connection: Connection): Promise<void> {
  await connection.query('SET SESSION sql_log_bin = 0');
  await connection.query(dropUserStatement(backupUser, 'localhost'));
  // a dropped account's sessions stay open: whoever else learnt the password loses it too
  const [sessions] = await connection.query<Row[]>('SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = ?', [backupUser]);
  for (const session of sessions) await connection.query(`KILL ${Number(session.id)}`).catch(() => undefined);
}

class MysqlFamilyBackupAdmin implements BackupAdmin {
  readonly incremental = true;
  /** one backup at a time: they share the tool's account and scratch directory */
  private busy = false;

  readonly walArchive: WalArchive | undefined;

  constructor(
    private readonly host: BackupHost,
    archiveHost?: BinlogArchiveHost,
  ) {
    this.walArchive = archiveHost === undefined ? undefined : new BinlogArchive(archiveHost);
  }

  async start(request: BackupRequest): Promise<BackupRun> {
    const { host } = this;
    const { flavor } = host;
    if (request.signal.aborted) throw new CofferError('EngineError', `The ${flavor.title} backup was aborted before it started.`);
    if (this.busy) throw new CofferError('Conflict', `A backup of this ${flavor.title} instance is already running: wait for it to finish.`);
    this.busy = true;
    let cleaned: Promise<void> | undefined;
    const cleanUp = () => {
      cleaned ??= (async () => {
        await rm(host.scratchDir, { recursive: true, force: true }).catch((err: unknown) =>
          host.logger.warn({ err }, 'could not remove the backup scratch directory'),
        );
        await host.admin.run(dropBackupAccount).catch((err: unknown) => host.logger.warn({ err }, 'could not drop the backup account'));
        this.busy = false;
      })();
      return cleaned;
    };
    try {
      const incrementalLsn = request.parent === undefined ? undefined : checkParent(flavor, request.parent, await host.versionName());
      const tools = await host.tools();
      if (!(await host.running())) {
        throw new CofferError('EngineError', `The ${flavor.title} server of this instance is not running: start it, then back it up.`);
      }
      await rm(host.scratchDir, { recursive: true, force: true });
      await mkdir(host.scratchDir, { mode: 0o700 });
      await host.runner.handOver(host.scratchDir);
      const password = randomBytes(24).toString('base64url');
      await host.admin.run((connection) => createBackupAccount(connection, flavor, password));
      // paths relative to the data directory, where the tool works: the command line is anyone's to read in ps
      const args = backupArgs(flavor, {
        defaultsFile: relative(host.dataDir, host.configFile),
        scratchDir: relative(host.dataDir, host.scratchDir),
        socket: relative(host.dataDir, host.socket),
        user: backupUser,
        incrementalLsn,
      });
      const child = host.runner.stream(tools.tool, args, {
        timeoutMs: toolTimeoutMs,
        signal: request.signal,
        cwd: host.dataDir,
        env: { MYSQL_PWD: password },
        // nothing here reads the xbstream: it may go straight into the compressor
        ...(request.output === undefined ? {} : { stdout: request.output }),
      });
      child.stdin.end();
      const stream = child.stdout;
      // a reader that gives up kills the tool, which would otherwise wait on a full pipe
      stream.once('close', () => {
        if (!stream.readableEnded) child.kill();
      });
      host.logger.info({ incremental: incrementalLsn !== undefined }, `${flavor.title} backup started`);
      const finished = (async () => {
        try {
          await child.exited.catch((err: unknown) => {
            throw knownToolFailure(err) ?? err;
          });
          const [checkpoints, info] = await Promise.all([
            readToolFile(join(host.scratchDir, 'xtrabackup_checkpoints')),
            readToolFile(join(host.scratchDir, 'xtrabackup_info')),
          ]);
          const facts: BackupFacts = { ...backupFacts(checkpoints, info, request.parent), 'completed-at': new Date().toISOString() };
          // where the backup is consistent in the binary log (the tool reads it while commits are
          // blocked): a point-in-time restore replays from there, and archived files before it
          // are no longer needed by this backup (wal-archive-retention.ts compares names)
          if (host.archivesBinlog && facts['binlog-file'] !== undefined) {
            facts['wal-archiving'] = 'on';
            facts['wal-start'] = facts['binlog-file'];
          }
          host.logger.info({ facts }, `${flavor.title} backup finished`);
          return facts;
        } finally {
          await cleanUp();
        }
      })();
      // the caller may give up on the stream without awaiting this; it still settles
      finished.catch(() => undefined);
      return { stream, finished, wroteToOutput: request.output !== undefined };
    } catch (err) {
      await cleanUp();
      throw err;
    }
  }

  checkData(signal: AbortSignal): Promise<DataCheckResult> {
    return checkMysqlFamilyData(this.host.admin, () => this.host.running(), signal);
  }
}

/** The backup module of the family: what it needs of the lifecycle is `backupHost`. */
export const mysqlFamilyBackup: BackupModule<{ backupHost(): BackupHost; binlogArchiveHost(): BinlogArchiveHost | undefined }> = {
  incremental: true,
  // restores roll forward through the archived binary log (binlog-replay.ts)
  pointInTime: true,
  create: (lifecycle) => new MysqlFamilyBackupAdmin(lifecycle.backupHost(), lifecycle.binlogArchiveHost()),
};
