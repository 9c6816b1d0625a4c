import type { ConfigurationValue } from '../../../common/index.js';
import type { MemorySettings } from './config.js';
import type { MysqlParameter } from './parameters.js';

// What differs between the engines of the MySQL family. Everything else (layout, process,
// configuration, databases, users, access rules) is shared: mysql-family/'s modules.

export interface ParsedVersion {
  /** the version name users pick, e.g. "10.11" */
  versionName: string;
  /** the full version, e.g. "10.11.19" */
  version: string;
}

/** The programs of one installation. */
export interface ServerTools {
  server: string;
  /** the install script (MariaDB); undefined where the server initialises itself (MySQL) */
  installer?: string;
  /** the installation's root, e.g. /usr */
  baseDir: string;
}

/** What differs between the family's physical backup tools (see backup-tools.ts). */
export interface BackupToolFlavor {
  /** the backup program's names, preferred first (it takes, prepares and applies backups) */
  readonly toolNames: readonly string[];
  /** the program that unpacks the tool's xbstream output */
  readonly extractorNames: readonly string[];
  /** what the tool's own account is granted, each privilege list with its ON target */
  readonly grants: readonly { privileges: string; on: string }[];
  /** arguments every `--backup` run adds */
  readonly backupArgs: readonly string[];
  /**
   * XtraBackup prepares every link of an incremental chain but the last with
   * `--apply-log-only` (rolling back uncommitted work early would break the next link);
   * MariaDB's tool prepares the full backup, then applies each incremental to it as is.
   */
  readonly applyLogOnly: boolean;
  /** what archiving the binary log for point-in-time recovery takes (binlog-archive.ts, binlog-replay.ts) */
  readonly binlog: BinlogToolFlavor;
  /** how to install the tools, for the error when they are missing */
  readonly missingReason: string;
}

/** The programs that read and replay the binary log, and what the server needs to keep it for the archive. */
export interface BinlogToolFlavor {
  /** the binary log's reader (it prints events with their times, and replays them as SQL), preferred first */
  readonly readerNames: readonly string[];
  /** the SQL client a replay pipes the reader's output into, preferred first */
  readonly clientNames: readonly string[];
  /**
   * Whether the two are looked for only in the server's own installation (its bin directory and
   * the `bin` beside it), not also in the system's directories: where the system's programs of
   * those names may be another engine's (Debian's /usr/bin/mysqlbinlog and mysql are MariaDB's),
   * which does not read this engine's binary log.
   */
  readonly installationOnly: boolean;
  /** my.cnf lines an archived binary log needs beside Coffer's own (config.ts binlogOptions) */
  readonly serverOptions: readonly string[];
}

export interface MysqlFamilyFlavor {
  /** engine and datastore name, e.g. "mariadb" */
  readonly manager: 'mariadb' | 'mysql';
  /** how users call the product in messages */
  readonly title: string;
  /** server program names looked for in a bin directory, preferred first */
  readonly serverNames: readonly string[];
  /** install script names, looked for beside the server and in the installation's bin and scripts */
  readonly installerNames: readonly string[];
  /** directories searched after the configured ones */
  readonly defaultBinDirs: readonly string[];
  /** the version name reported while no binary is found */
  readonly fallbackVersion: string;
  /** why the engine is inactive, and how to fix it; `found` names servers that are not this engine */
  missingReason(found: readonly string[]): string;
  /** the server's `--version` output, parsed; undefined when it is another engine */
  parseVersion(output: string): ParsedVersion | undefined;
  /** the longest account name the engine accepts */
  readonly maxUserNameLength: number;
  /** the clause after `IDENTIFIED` that sets a password hash computed by `hashPassword` */
  identifiedClause(hash: string): string;
  hashPassword(password: string): string;
  /** Coffer's values of this engine's own settings (each a published parameter, so a group may replace it) */
  extraSettings(memory: MemorySettings): Record<string, ConfigurationValue>;
  /** fixed lines added to the [mysqld] section of my.cnf, which no group changes */
  readonly extraOptions: readonly string[];
  /** fixed lines where the server writes no binary log (MySQL writes one unless told not to) */
  readonly noBinlogOptions: readonly string[];
  /** what a configuration group may set, in the order SET GLOBAL applies them (see parameters.ts) */
  readonly parameters: readonly MysqlParameter[];
  /**
   * How the data directory is initialised: the program and its arguments. `initFile` holds SQL
   * that runs at the end of initialisation and sets up the guest's account.
   */
  initCommand(tools: ServerTools, defaultsFile: string, initFile: string): { file: string; args: string[] };
  /** the init file's SQL: drop what the initialisation left for root and anonymous users, add the admin account */
  initSql(adminPasswordHash: string): string;
  /** makes the running server read its certificate and key again (MariaDB `FLUSH SSL`) */
  readonly reloadTlsStatement: string;
  /** accounts the engine creates for itself, never listed nor touched */
  isSystemAccount(name: string): boolean;
  readonly backup: BackupToolFlavor;
  /**
   * The program that brings a data directory's system tables up to the server's version after
   * the server changed version (upgrade.ts), and the files it records that version in, newest
   * name first; undefined where the server does it itself as it starts.
   */
  readonly upgrade?: { readonly toolNames: readonly string[]; readonly infoFiles: readonly string[] };
  /** GTID read replicas (replication.ts): MariaDB's GTIDs, which MySQL's differ from */
  readonly replication?: boolean;
  /**
   * Whether the host's warm pool installs data directories ahead of time (install.ts). Not
   * MySQL's yet: its `--initialize` and the server_uuid it keeps in auto.cnf were never tried
   * with one, nor is MySQL installed where Coffer is tested.
   */
  readonly warmPool?: boolean;
}
