import { escape } from 'mysql2';
import { join } from 'node:path';
import type { EngineFactory } from '../engine.js';
import type { MysqlFamilyFlavor, ParsedVersion } from '../mysql-family/flavor.js';
import { mysqlFamilyEngine } from '../mysql-family/engine.js';
import { nativePasswordHash } from '../mysql-family/password-hash.js';
import { backupLockWaitSeconds } from '../mysql-family/backup-tools.js';
import { adminUser } from '../mysql-family/sql.js';
import { mariadbParameters } from './parameters.js';

// MariaDB (Debian's 10.11 on this kind of host), through the shared MySQL-family engine.

/** `mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu ...` -> 10.11 / 10.11.19 */
export function parseMariadbVersion(output: string): ParsedVersion | undefined {
  const match = /\bVer\s+(\d+)\.(\d+)\.(\d+)-MariaDB/.exec(output);
  if (match === null) return undefined;
  const [, major, minor, patch] = match;
  return { versionName: `${major}.${minor}`, version: `${major}.${minor}.${patch}` };
}

/**
 * Runs at the end of mariadb-install-db, before any server listens: install-db's root
 * accounts (passwordless with --auth-root-authentication-method=normal, also at 127.0.0.1 and
 * ::1) and its anonymous users go, and the guest's own account is written as the script
 * writes root's, with all privileges and a password hash.
 */
export function mariadbInitSql(adminPasswordHash: string): string {
  // all privilege bits, as install-db writes them for root (a number too large for JSON.stringify)
  const priv = `{"access":18446744073709551615,"plugin":"mysql_native_password","authentication_string":${JSON.stringify(adminPasswordHash)}}`;
  return [
    "DELETE FROM mysql.global_priv WHERE User IN ('', 'root');",
    "DELETE FROM mysql.proxies_priv WHERE User IN ('', 'root');",
    "DELETE FROM mysql.db WHERE User = '';",
    `INSERT INTO mysql.global_priv (Host, User, Priv) VALUES ('localhost', ${escape(adminUser)}, ${escape(priv)});`,
    '',
  ].join('\n');
}

export const mariadbFlavor: MysqlFamilyFlavor = {
  manager: 'mariadb',
  title: 'MariaDB',
  serverNames: ['mariadbd', 'mysqld'],
  installerNames: ['mariadb-install-db', 'mysql_install_db'],
  defaultBinDirs: ['/usr/sbin', '/usr/bin'],
  fallbackVersion: '10.11',
  missingReason: (found) =>
    `No MariaDB server found${found.length > 0 ? ` (${found.join('; ')})` : ''}: install Debian's mariadb-server ` +
    "package (apt-get install mariadb-server), or start the agent with --engine-bin-dir mariadb=<the directory holding mariadbd>.",
  parseVersion: parseMariadbVersion,
  maxUserNameLength: 80,
  identifiedClause: (hash) => `BY PASSWORD ${escape(hash)}`,
  hashPassword: nativePasswordHash,
  extraSettings: (memory) => ({ collation_server: 'utf8mb4_general_ci', innodb_log_file_size: memory.logFileMb * 1024 * 1024 }),
  extraOptions: [],
  // the binary log is off unless log-bin turns it on
  noBinlogOptions: [],
  parameters: mariadbParameters,
  initCommand: (tools, defaultsFile, initFile) => ({
    file: tools.installer ?? join(tools.baseDir, 'bin', 'mariadb-install-db'),
    // --defaults-file must come first, as for the server
    args: [
      `--defaults-file=${defaultsFile}`,
      `--basedir=${tools.baseDir}`,
      '--auth-root-authentication-method=normal',
      '--skip-test-db',
      '--skip-name-resolve',
      `--extra-file=${initFile}`,
    ],
  }),
  reloadTlsStatement: 'FLUSH SSL',
  initSql: mariadbInitSql,
  isSystemAccount: (name) => name === 'mariadb.sys' || name.startsWith('mysql.') || name === 'PUBLIC',
  backup: {
    toolNames: ['mariadb-backup', 'mariabackup'],
    extractorNames: ['mbstream'],
    // 10.5 split BINLOG MONITOR out of REPLICATION CLIENT; SLAVE MONITOR only serves --slave-info, which Coffer does not use
    grants: [{ privileges: 'RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR', on: '*.*' }],
    backupArgs: [`--startup-wait-timeout=${backupLockWaitSeconds}`],
    applyLogOnly: false,
    // expire_logs_days and binlog_expire_logs_seconds are 0 by default: nothing expires
    binlog: { readerNames: ['mariadb-binlog', 'mysqlbinlog'], clientNames: ['mariadb', 'mysql'], installationOnly: false, serverOptions: [] },
    missingReason: "install Debian's mariadb-backup package (apt-get install mariadb-backup), which provides mariadb-backup and mbstream",
  },
  upgrade: {
    toolNames: ['mariadb-upgrade', 'mysql_upgrade'],
    // 10.11 writes mysql_upgrade_info; later versions rename it (MDEV-30498) and remove the old one
    infoFiles: ['mariadb_upgrade_info', 'mysql_upgrade_info'],
  },
  replication: true,
  warmPool: true,
};

export const mariadbEngine: EngineFactory = mysqlFamilyEngine(mariadbFlavor);
