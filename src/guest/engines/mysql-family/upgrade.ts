import { randomBytes } from 'node:crypto';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { CofferError, isCofferError } from '../../../common/index.js';
import type { Logger } from '../../../common/index.js';
import type { ProcessRunner } from '../../process-runner.js';
import type { MysqlFamilyAdmin } from './admin.js';
import type { MysqlFamilyFlavor } from './flavor.js';
import { account, dropUserStatement, upgradeUser } from './sql.js';

// Upgrades by restart: a server started on a data directory that another version last upgraded
// (the host's package went from 10.11.6 to 10.11.19, or a backup of another version was
// restored) runs the flavor's upgrade tool once it answers. The tool checks the tables, brings
// the system tables to the server's version and records that version in the data directory
// (mysql_upgrade_info), so it runs once per change of version. mariadb-install-db writes that
// record and a restore writes the backup's version into it: a new instance never pays the
// seconds the tool takes. A data directory with no record ran under some version nobody
// recorded, and is upgraded once: the tool changes nothing that is already current.
//
// The tool's statements stay out of the binary log: a replica's log holds its primary's
// transactions alone, and a replica that missed them (or a failover to one) would find the logs
// diverged. Like every tool that works on the data directory it runs as the engine's OS user,
// and so never gets the guest's admin password: it logs in as an account made for this run
// (`os_upgrade`@`localhost`, the socket only) with a password made for it, through MYSQL_PWD
// rather than its command line, which anyone may read in ps. The account is dropped when the
// tool ends; while it lives, its privileges give a program of the engine's user nothing it could
// not do to the files it owns.

/** a data directory with many tables takes minutes (the tool checks each); longer, it hangs */
const toolTimeoutMs = 10 * 60_000;
const fileTimeoutMs = 10_000;

type Row = RowDataPacket & Record<string, unknown>;

export interface UpgradeHost {
  readonly flavor: MysqlFamilyFlavor;
  readonly runner: ProcessRunner;
  readonly logger: Logger;
  readonly admin: MysqlFamilyAdmin;
  readonly dataDir: string;
  /** relative to the data directory: the command line names no host path */
  readonly socket: string;
  readonly tmpDir: string;
  /** the running server's full version, e.g. 10.11.19 */
  readonly serverVersion: string;
  /** the upgrade tool beside the server; undefined when the installation lacks it */
  tool(): Promise<string | undefined>;
}

/** `10.11.19-MariaDB` (as the tool writes it) -> 10.11.19 */
export function parseUpgradeInfo(text: string): string | undefined {
  return /^(\d+\.\d+\.\d+)/.exec(text.trim())?.[1];
}

/** The version the data directory was last upgraded to; undefined when nothing records it. */
async function upgradedVersion(host: UpgradeHost, infoFiles: readonly string[]): Promise<string | undefined> {
  for (const name of infoFiles) {
    // the engine's file, read as the engine's user
    const read = await host.runner.run('/bin/cat', ['--', name], { cwd: host.dataDir, timeoutMs: fileTimeoutMs }).catch(() => undefined);
    if (read !== undefined) return parseUpgradeInfo(read.stdout);
  }
  return undefined;
}

/**
 * Records the version a restored data directory was upgraded to (its backup's server's): a
 * backup holds the tables but not the tool's record of them.
 */
export async function recordUpgradedVersion(flavor: MysqlFamilyFlavor, runner: ProcessRunner, dataDir: string, version: string): Promise<void> {
  // the name every version reads; one that renamed it replaces it as it runs
  const infoFile = flavor.upgrade?.infoFiles.at(-1);
  if (infoFile === undefined) return;
  await runner.run('/bin/dd', [`of=${infoFile}`, 'status=none'], { cwd: dataDir, input: version, timeoutMs: fileTimeoutMs });
}

export function upgradeArgs(socket: string, tmpDir: string): string[] {
  return [
    // read only when it comes first: no option file of the host's (/etc/mysql) changes where it connects
    '--no-defaults',
    `--socket=${socket}`,
    `--user=${upgradeUser}`,
    // the tool would skip a change within one major.minor; MariaDB asks for it after every upgrade, and the record decides here
    '--force',
    '--skip-write-binlog',
    `--tmpdir=${tmpDir}`,
    // one line per table otherwise, held in memory
    '--silent',
  ];
}

/**
 * Runs the upgrade tool when the data directory was last upgraded by another version than the
 * running server's. A failure leaves the server running and throws an EngineError.
 */
export async function upgradeIfNeeded(host: UpgradeHost): Promise<void> {
  const upgrade = host.flavor.upgrade;
  if (upgrade === undefined) return;
  const from = await upgradedVersion(host, upgrade.infoFiles);
  if (from === host.serverVersion) return;
  // a server adopted after the host's package changed still runs the old binary, which the new
  // tool refuses: its data is upgraded when it next starts on the new one
  const running = await host.admin.run(async (connection) => {
    const [rows] = await connection.query('SELECT VERSION() AS version');
    return String((rows as Array<{ version: unknown }>)[0]?.version ?? '');
  });
  if (running.split('-')[0] !== host.serverVersion) {
    host.logger.info({ running, installed: host.serverVersion }, 'the server runs another version than the installed one: its data is upgraded when it restarts');
    return;
  }
  const tool = await host.tool();
  const what = `the upgrade of the data directory from ${host.flavor.title} ${from ?? '(no recorded version)'} to ${host.serverVersion}`;
  host.logger.info({ from: from ?? null, to: host.serverVersion, tool }, 'upgrading the data directory to the server\'s version');
  const began = performance.now();
  try {
    if (tool === undefined) throw new CofferError('EngineError', `${upgrade.toolNames[0]} is not installed beside the server.`);
    await runTool(host, tool);
  } catch (err) {
    host.logger.error({ err }, `${what} failed; the server runs on`);
    throw new CofferError('EngineError', `${host.flavor.title} runs, but ${what} failed: ${(err as Error).message}`, {
      cause: err,
      ...(isCofferError(err) && err.details !== undefined ? { details: err.details } : {}),
    });
  }
  host.logger.info({ ms: Math.round(performance.now() - began) }, `${what} finished`);
}

async function runTool(host: UpgradeHost, tool: string): Promise<void> {
  const password = randomBytes(24).toString('base64url');
  const { flavor } = host;
  await host.admin.run(async (connection) => {
    await connection.query('SET SESSION sql_log_bin = 0');
    await connection.query(dropUserStatement(upgradeUser, 'localhost'));
    await connection.query(`CREATE USER ${account(upgradeUser, 'localhost')} IDENTIFIED ${flavor.identifiedClause(flavor.hashPassword(password))}`);
    // the tool alters and grants on the system tables
    await connection.query(`GRANT ALL PRIVILEGES ON *.* TO ${account(upgradeUser, 'localhost')} WITH GRANT OPTION`);
  });
  try {
    await host.runner.run(tool, upgradeArgs(host.socket, host.tmpDir), {
      cwd: host.dataDir,
      env: { MYSQL_PWD: password },
      timeoutMs: toolTimeoutMs,
    });
  } finally {
    await host.admin.run(dropUpgradeAccount).catch((err: unknown) => host.logger.warn({ err }, 'could not drop the upgrade account'));
  }
}

async function dropUpgradeAccount(connection: Connection): Promise<void> {
  await connection.query('SET SESSION sql_log_bin = 0');
  await connection.query(dropUserStatement(upgradeUser, 'localhost'));
  // a dropped account's sessions stay open: whoever else read the password loses it too
  const [sessions] = await connection.query<Row[]>('SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = ?', [upgradeUser]);
  for (const session of sessions) await connection.query(`KILL ${Number(session.id)}`).catch(() => undefined);
}
