import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { CofferError, isCofferError } from '../../../common/index.js';
import type { ProcessRunner } from '../../process-runner.js';
import type { ArchivedLogFile, BackupFacts, PointInTimeSource } from '../engine.js';
import type { MysqlFamilyAdmin } from './admin.js';
import type { MysqlFamilyFlavor } from './flavor.js';
import { binlogNumber, isBinlogName } from './binlog-files.js';
import { account, dropUserStatement, replayUser } from './sql.js';

// A point-in-time restore: the restored backup (restore-chain.ts) rolled forward through the
// source's archived binary log (binlog-archive.ts). After the chain is restored and the server
// runs on its socket alone (no client can reach it), the files from the one the backup is
// consistent at on are fetched into the instance's tmp directory and replayed: the flavor's
// reader (mariadb-binlog, MySQL's mysqlbinlog, which take the same arguments) from the backup's
// position, stopping at the target, piped into its client (mariadb, mysql).
//
// Binlog times have one second's precision, so the target is too: a change stamped in the
// target's second counts as before it (replay stops at the next whole second).
//
// Both programs run as the engine's OS user, like every tool that reads the data directory's
// files. The client logs in as an account made for this replay alone (`os_replay`@`localhost`,
// the socket only) with a password made for it, through MYSQL_PWD, never the guest's own: the
// account is dropped when the replay ends, before the instance serves anyone, and while it lives
// it gives a program of the engine's user nothing it could not do to the files it owns.

const copyTimeoutMs = 10 * 60_000;
/** a long archive takes long to replay; a restore's own deadline bounds it */
const replayTimeoutMs = 12 * 60 * 60 * 1000;
const fetchDirName = 'coffer-restore-binlog';

export interface ReplayPlan {
  files: string[];
  /** where the backup is consistent in the first file */
  startPosition: number;
  /** replay stops at the first event stamped at or after this; undefined: everything fetched */
  stopAt?: Date;
}

export function planReplay(files: readonly ArchivedLogFile[], base: BackupFacts, target: Date | undefined): ReplayPlan {
  const start = base['wal-start'];
  const position = Number(base['binlog-position']);
  if (base['wal-archiving'] !== 'on' || start === undefined || !isBinlogName(start) || !Number.isInteger(position)) {
    throw new CofferError('BadRequest', 'The backup does not record where its binary log begins: it cannot be rolled forward to a point in time.');
  }
  const completedAt = base['completed-at'];
  if (target !== undefined && completedAt !== undefined && target.getTime() < Date.parse(completedAt)) {
    throw new CofferError('BadRequest', `The backup completed at ${completedAt}: it can be rolled forward to a later moment only, not to ${target.toISOString()}.`);
  }
  const stopAt = target === undefined ? undefined : new Date(Math.floor(target.getTime() / 1000) * 1000 + 1000);
  const byNumber = new Map<number, ArchivedLogFile>();
  for (const file of files) if (isBinlogName(file.name)) byNumber.set(binlogNumber(file.name), file);
  const chosen: string[] = [];
  let number = binlogNumber(start);
  for (;;) {
    const file = byNumber.get(number);
    if (file === undefined) break;
    chosen.push(file.name);
    const last = file.facts['last-commit'];
    // the first file with a change at or after the target is where replay stops
    if (stopAt !== undefined && last !== undefined && Date.parse(last) >= stopAt.getTime()) return { files: chosen, startPosition: position, stopAt };
    number += 1;
  }
  if ([...byNumber.keys()].some((n) => n > number)) {
    throw new CofferError('BadRequest', `The archived binary log has a gap: file ${number} is missing, so no moment after it can be restored.`);
  }
  if (chosen.length === 0) {
    throw new CofferError('BadRequest', "The archived binary log that follows the backup is missing: the source's log was not archived from this backup on.");
  }
  return { files: chosen, startPosition: position, ...(stopAt === undefined ? {} : { stopAt }) };
}

export interface ReplayHost {
  flavor: MysqlFamilyFlavor;
  runner: ProcessRunner;
  admin: MysqlFamilyAdmin;
  /** the instance's tmp directory, the engine user's */
  tmpDir: string;
  dataDir: string;
  /** the socket, relative to the data directory */
  socket: string;
  binlogTool: string;
  client: string;
}

/** Fetches the plan's files and replays them into the running, socket-only server. */
export async function replayBinlog(host: ReplayHost, source: PointInTimeSource, plan: ReplayPlan): Promise<void> {
  const { runner } = host;
  await runner.run('/bin/mkdir', ['-m', '0700', '--', fetchDirName], { cwd: host.tmpDir, timeoutMs: copyTimeoutMs });
  try {
    for (const name of plan.files) {
      const body = await source.open(name);
      const dd = runner.stream('/bin/dd', [`of=${fetchDirName}/${name}`, 'bs=1M', 'status=none'], { cwd: host.tmpDir, timeoutMs: copyTimeoutMs });
      const [fed, exited] = await Promise.allSettled([pipeline(body, dd.stdin), (async () => { dd.stdout.resume(); await dd.exited; })()]);
      if (fed.status === 'rejected' && isCofferError(fed.reason)) throw fed.reason;
      if (exited.status === 'rejected') throw exited.reason;
      if (fed.status === 'rejected') throw new CofferError('EngineError', `Archived binary log file ${name} could not be read: ${String(fed.reason)}`, { cause: fed.reason });
    }
    const password = randomBytes(24).toString('base64url');
    const replay = account(replayUser, 'localhost');
    await host.admin.run(async (connection) => {
      // the account is no transaction of the source's: kept out of the binary log (a replica's holds its primary's alone)
      await connection.query('SET SESSION sql_log_bin = 0');
      await connection.query(dropUserStatement(replayUser, 'localhost'));
      await connection.query(`CREATE USER ${replay} IDENTIFIED ${host.flavor.identifiedClause(host.flavor.hashPassword(password))}`);
      await connection.query(`GRANT ALL PRIVILEGES ON *.* TO ${replay}`);
    });
    try {
      const stop = plan.stopAt === undefined ? [] : [`--stop-datetime=${plan.stopAt.toISOString().slice(0, 19).replace('T', ' ')}`];
      const dump = runner.stream(host.binlogTool, [`--start-position=${plan.startPosition}`, ...stop, '--', ...plan.files.map((name) => `${fetchDirName}/${name}`)], {
        cwd: host.tmpDir,
        env: { TZ: 'UTC' },
        timeoutMs: replayTimeoutMs,
      });
      dump.stdin.end();
      const client = runner.stream(host.client, ['--no-defaults', '--binary-mode', `--socket=${host.socket}`, `--user=${replayUser}`], {
        cwd: host.dataDir,
        env: { MYSQL_PWD: password },
        timeoutMs: replayTimeoutMs,
      });
      client.stdout.resume();
      const results = await Promise.allSettled([pipeline(dump.stdout, client.stdin), dump.exited, client.exited]);
      const failed = results.find((result) => result.status === 'rejected');
      if (failed !== undefined) {
        dump.kill();
        client.kill();
        const reason = (failed as PromiseRejectedResult).reason as unknown;
        throw isCofferError(reason) ? reason : new CofferError('EngineError', `The archived binary log could not be replayed: ${String(reason)}`, { cause: reason });
      }
    } finally {
      await host.admin.run(async (connection) => {
        await connection.query('SET SESSION sql_log_bin = 0');
        await connection.query(dropUserStatement(replayUser, 'localhost'));
      });
    }
  } finally {
    await runner.run('/bin/rm', ['-rf', '--', fetchDirName], { cwd: host.tmpDir, timeoutMs: copyTimeoutMs });
  }
}
