import { escape } from 'mysql2';
import type { EngineFactory } from '../engine.js';
import type { MysqlFamilyFlavor, ParsedVersion } from '../mysql-family/flavor.js';
import { mysqlFamilyEngine } from '../mysql-family/engine.js';
import { cachingSha2PasswordHash } from '../mysql-family/password-hash.js';
import { account, adminUser } from '../mysql-family/sql.js';
import { mysqlParameters } from './parameters.js';

// MySQL (Oracle's server, 8.0 and later), through the shared MySQL-family engine. Debian ships
// no MySQL server, and its /usr/sbin/mysqld is MariaDB: MySQL runs only where a real MySQL
// server is installed and found.

/** `mysqld  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)` -> 8.0 / 8.0.36; MariaDB's is not MySQL */
export function parseMysqlVersion(output: string): ParsedVersion | undefined {
  if (/MariaDB/i.test(output)) return undefined;
  const match = /\bVer\s+(\d+)\.(\d+)\.(\d+)/.exec(output);
  if (match === null) return undefined;
  const [, major, minor, patch] = match;
  return { versionName: `${major}.${minor}`, version: `${major}.${minor}.${patch}` };
}

/**
 * Runs at the end of `mysqld --initialize-insecure`, before any client can connect: the
 * guest's account is created and root@localhost, which that initialisation leaves without a
 * password, is dropped. MySQL has no unix_socket plugin to fall back on.
 */
export function mysqlInitSql(adminPasswordHash: string): string {
  const admin = account(adminUser, 'localhost');
  return [
    `CREATE USER ${admin} IDENTIFIED WITH caching_sha2_password AS ${escape(adminPasswordHash)};`,
    `GRANT ALL PRIVILEGES ON *.* TO ${admin} WITH GRANT OPTION;`,
    `DROP USER ${account('root', 'localhost')};`,
    '',
  ].join('\n');
}

export const mysqlFlavor: MysqlFamilyFlavor = {
  manager: 'mysql',
  title: 'MySQL',
  serverNames: ['mysqld'],
  installerNames: [],
  defaultBinDirs: ['/usr/sbin', '/usr/local/mysql/bin'],
  fallbackVersion: '8.0',
  missingReason: (found) =>
    `No MySQL server found${found.length > 0 ? ` (${found.join('; ')}: not MySQL)` : ''}. Debian ships no MySQL server: ` +
    "install MySQL Community Server 8.0 or later (Oracle's Debian packages, or its tarball unpacked e.g. under " +
    "/usr/local/mysql), then start the agent with --engine-bin-dir mysql=<the directory holding mysqld>.",
  parseVersion: parseMysqlVersion,
  maxUserNameLength: 32,
  identifiedClause: (hash) => `WITH caching_sha2_password AS ${escape(hash)}`,
  hashPassword: (password) => cachingSha2PasswordHash(password),
  extraSettings: () => ({}),
  // the X Protocol plugin would listen on every address (port 33060)
  extraOptions: ['mysqlx = OFF'],
  // binary logging is on by default
  noBinlogOptions: ['skip-log-bin'],
  parameters: mysqlParameters,
  initCommand: (tools, defaultsFile, initFile) => ({
    file: tools.server,
    args: [`--defaults-file=${defaultsFile}`, '--initialize-insecure', `--init-file=${initFile}`],
  }),
  reloadTlsStatement: 'ALTER INSTANCE RELOAD TLS',
  initSql: mysqlInitSql,
  isSystemAccount: (name) => name.startsWith('mysql.'),
  backup: {
    toolNames: ['xtrabackup'],
    extractorNames: ['xbstream'],
    // what Percona XtraBackup 8 documents for a backup without --history or --slave-info
    grants: [
      { privileges: 'RELOAD, PROCESS, LOCK TABLES, REPLICATION CLIENT, BACKUP_ADMIN', on: '*.*' },
      { privileges: 'SELECT', on: 'performance_schema.log_status' },
    ],
    // it would otherwise ask Percona's servers whether it is up to date
    backupArgs: ['--no-version-check'],
    applyLogOnly: true,
    binlog: {
      readerNames: ['mysqlbinlog'],
      clientNames: ['mysql'],
      // MySQL's own, from its installation: Debian's mysqlbinlog and mysql are MariaDB's
      installationOnly: true,
      // the server would delete each file 30 days after it closed, shipped or not: the archive purges them
      serverOptions: ['binlog_expire_logs_seconds = 0'],
    },
    missingReason: "install Percona XtraBackup of the server's major version (its xtrabackup and xbstream) beside the server or in /usr/bin",
  },
  // no upgrade tool: from 8.0.16 the server upgrades its own system tables as it starts, and mysql_upgrade does nothing
};

export const mysqlEngine: EngineFactory = mysqlFamilyEngine(mysqlFlavor);
