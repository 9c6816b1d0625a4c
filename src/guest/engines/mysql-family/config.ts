import { createHash } from 'node:crypto';
import { CofferError } from '../../../common/index.js';
import type { ConfigurationValue, ConfigurationValues } from '../../../common/index.js';
import type { ReplicationSpec } from '../engine-spec-file.js';
import type { MysqlFamilyFlavor } from './flavor.js';
import type { MysqlParameter } from './parameters.js';

// my.cnf, rendered whole from the instance's spec (the flavor's memory and the configuration
// group's overrides) and the placement, and passed with --defaults-file, so that no file of the
// host's own installation (/etc/mysql) changes what runs. Two parts: the placement and lock-down
// options, which only Coffer sets, and the settings, where a group's override replaces Coffer's
// value of the same name.

export interface MemorySettings {
  bufferPoolMb: number;
  logFileMb: number;
  maxConnections: number;
  tmpTableMb: number;
}

const clamp = (value: number, min: number, max: number) => Math.min(max, Math.max(min, value));
const mib = 1024 * 1024;

/**
 * InnoDB's buffer pool takes half of a small flavor's RAM and more of a large one's (what is
 * left serves connections and the OS); the redo log is sized after the pool; connections grow
 * with RAM.
 */
export function tuneMemory(memoryMb: number): MemorySettings {
  const share = memoryMb >= 4096 ? 0.7 : 0.5;
  const bufferPoolMb = Math.max(32, Math.floor(memoryMb * share));
  return {
    bufferPoolMb,
    logFileMb: clamp(Math.floor(bufferPoolMb / 4), 16, 2048),
    maxConnections: clamp(Math.floor(memoryMb / 4), 50, 2000),
    tmpTableMb: clamp(Math.floor(memoryMb / 32), 8, 256),
  };
}

/** Settings in the order they are rendered, by variable name; sizes in bytes. */
export type Settings = ReadonlyMap<string, ConfigurationValue>;

/**
 * Coffer's own values for settings a group may also set. `extra` adds the engine's own; every
 * name is one of the engine's published parameters, so that a group can replace any of them.
 */
export function cofferSettings(memoryMb: number, extra: (memory: MemorySettings) => Record<string, ConfigurationValue>): Settings {
  const memory = tuneMemory(memoryMb);
  return new Map<string, ConfigurationValue>([
    ['character_set_server', 'utf8mb4'],
    ['max_connections', memory.maxConnections],
    ['innodb_buffer_pool_size', memory.bufferPoolMb * mib],
    ['tmp_table_size', memory.tmpTableMb * mib],
    ['max_heap_table_size', memory.tmpTableMb * mib],
    ['key_buffer_size', 8 * mib],
    ['performance_schema', false],
    ['slow_query_log', false],
    ['long_query_time', 10],
    ['general_log', false],
    ...Object.entries(extra(memory)),
  ]);
}

/**
 * Settings a group replaces together: the server refuses to start with a collation of another
 * character set, so a group's character set or collation also drops Coffer's other one (the
 * server then derives it, as SET GLOBAL does). The last one present is the most specific.
 */
export const settingGroups: readonly (readonly string[])[] = [['character_set_server', 'collation_server']];

/** Coffer's settings with the overrides: an override replaces Coffer's value of its name and of its group. */
export function withOverrides(own: Settings, overrides: ConfigurationValues): Settings {
  const settings = new Map(own);
  for (const group of settingGroups) {
    if (group.some((name) => Object.hasOwn(overrides, name))) for (const name of group) settings.delete(name);
  }
  for (const [name, value] of Object.entries(overrides)) settings.set(name, value);
  return settings;
}

/** A value in option-file syntax; quotes keep spaces and `#`, and nothing here needs an escape. */
export function optionValue(value: string): string {
  if (/[\r\n\0"\\]/.test(value)) {
    throw new CofferError('BadRequest', `The option value ${JSON.stringify(value)} cannot contain quotes, backslashes or line breaks.`);
  }
  return `"${value}"`;
}

/** A number as both the option parser and SQL read it: never in exponent notation. */
export function numberText(value: number): string {
  if (!Number.isFinite(value)) throw new CofferError('BadRequest', `${value} is not a number a MySQL-family server reads.`);
  const text = String(value);
  // floats are read to the microsecond (long_query_time); integers here stay far below 1e21
  return /e/i.test(text) ? value.toFixed(6) : text;
}

function settingText(value: ConfigurationValue): string {
  if (typeof value === 'boolean') return value ? 'ON' : 'OFF';
  if (typeof value === 'number') return numberText(value);
  return optionValue(value);
}

/**
 * The binary log, where the host archives it for point-in-time recovery (binlog-archive.ts): in
 * the data directory, row-based (a replay then does exactly what the source did), flushed at
 * each commit, and kept until the guest has shipped and purged each file (no expiry: a flavor
 * whose server has one by default turns it off, flavor.backup.binlog.serverOptions). These are
 * fixed lines: no configuration group can set log_bin, binlog_format, sync_binlog, server_id or
 * an expiry (parameters.ts publishes none of them).
 */
export function binlogOptions(basename: string, serverId = 1): string[] {
  return [`log-bin = ${basename}`, 'binlog_format = ROW', `server_id = ${serverId}`, 'sync_binlog = 1'];
}

/** A server id of the instance's own (1 to 2^32 - 1), the same on every render: replication needs them distinct. */
export function serverIdOf(instanceId: string): number {
  const id = createHash('sha256').update(instanceId).digest().readUInt32BE(0);
  return id === 0 ? 1 : id;
}

/**
 * How long a semi-synchronous commit waits for a replica's acknowledgement before the server
 * gives up and goes on asynchronously (rpl_semi_sync_master_timeout, ms). The server would fall
 * back silently, which is exactly what a synchronous source must not do: 2^32 - 1 ms (49.7
 * days) stands for "never" while staying far below the values whose nanoseconds overflow.
 */
export const semiSyncTimeoutMs = 4_294_967_295;

/**
 * Semi-synchronous replication as a source runs it when `synchronous`: a commit is written and
 * synced to the binary log, then waits until one replica has received it (AFTER_SYNC: no client
 * sees it before that, unlike AFTER_COMMIT), also while no replica is connected.
 */
export function semiSyncSourceOptions(): string[] {
  return [
    'rpl_semi_sync_master_enabled = ON',
    'rpl_semi_sync_master_wait_point = AFTER_SYNC',
    'rpl_semi_sync_master_wait_no_slave = ON',
    `rpl_semi_sync_master_timeout = ${semiSyncTimeoutMs}`,
  ];
}

/**
 * A replicating flavor's (replication.ts) fixed lines: the binary log from the first start on,
 * in GTID strict mode, with a server id of the instance's own; a replica is read-only from its
 * first start (SQL thread writes go through, tenants' are refused) and acknowledges what it
 * receives to a semi-synchronous source; a synchronous source waits for that acknowledgement.
 */
export function replicationOptions(basename: string, serverId: number, role: ReplicationSpec | undefined, archived: boolean): string[] {
  return [
    ...binlogOptions(basename, serverId),
    'gtid_strict_mode = ON',
    'log_slave_updates = ON',
    // no archive purges it: a week's files are kept (a replica can be made while the first is), not the whole history
    ...(archived ? [] : [`binlog_expire_logs_seconds = ${7 * 24 * 3600}`]),
    ...(role?.role === 'replica' ? ['read_only = ON', 'rpl_semi_sync_slave_enabled = ON'] : []),
    ...(role?.role === 'source' && role.synchronous === true ? semiSyncSourceOptions() : []),
  ];
}

/**
 * The binary log's lines of a member's my.cnf: a replicating flavor's (always on, see
 * replication.ts), else the archive's with what the flavor's server needs to keep its files
 * until they are shipped, else the flavor's own lines that keep it off.
 */
export function binaryLogLines(
  flavor: MysqlFamilyFlavor,
  input: { basename: string; archived: boolean; serverId: number; replication: ReplicationSpec | undefined },
): string[] {
  if (flavor.replication === true) return replicationOptions(input.basename, input.serverId, input.replication, input.archived);
  return input.archived ? [...binlogOptions(input.basename), ...flavor.backup.binlog.serverOptions] : [...flavor.noBinlogOptions];
}

export interface MyCnfInput {
  /** shown in the file's header */
  memoryMb: number;
  address: string;
  port: number;
  dataDir: string;
  tmpDir: string;
  /** the only directory LOAD DATA and SELECT ... INTO OUTFILE may touch */
  filesDir: string;
  socket: string;
  pidFile: string;
  slowLog: string;
  generalLog: string;
  /** TLS options (see tls.ts) */
  tls?: readonly string[];
  /** fixed options only this engine of the family needs */
  extraOptions: readonly string[];
  /** Coffer's settings with the group's overrides (see withOverrides) */
  settings: Settings;
  /** the engine's published parameters: option names, and the only settings ever rendered */
  parameters: readonly MysqlParameter[];
}

export function renderMyCnf(input: MyCnfInput): string {
  const byName = new Map(input.parameters.map((p) => [p.name, p]));
  const settingLines = [...input.settings].map(([name, value]) => {
    const parameter = byName.get(name);
    // a name outside the published list never reaches the file, whoever computed it
    if (parameter === undefined || !/^[a-z_]+$/.test(name)) {
      throw new CofferError('UnprocessableEntity', `The configuration parameter ${name} is not supported.`);
    }
    return `${parameter.option ?? name} = ${settingText(value)}`;
  });
  const lines = [
    `# Written by Coffer from the instance's spec (${input.memoryMb} MB RAM and its configuration group); rewritten on every change.`,
    '[mysqld]',
    `datadir = ${optionValue(input.dataDir)}`,
    // each instance its own: a shared tmpdir made parallel creates fail
    `tmpdir = ${optionValue(input.tmpDir)}`,
    `socket = ${optionValue(input.socket)}`,
    `pid-file = ${optionValue(input.pidFile)}`,
    `bind-address = ${input.address}`,
    `port = ${input.port}`,
    // accounts name addresses only; a slow or hostile resolver never delays a login
    'skip-name-resolve',
    'local-infile = 0',
    `secure-file-priv = ${optionValue(input.filesDir)}`,
    // errors go to stderr, which the supervisor appends to the instance's error log; these two have files of their own
    `slow_query_log_file = ${optionValue(input.slowLog)}`,
    `general_log_file = ${optionValue(input.generalLog)}`,
    ...input.extraOptions,
    '# the flavor\'s memory and the configuration group (a group\'s value replaces Coffer\'s)',
    ...settingLines,
    ...(input.tls ?? []),
  ];
  return `${lines.join('\n')}\n`;
}
