import { isIPv4, isIPv6 } from 'node:net';
import { CofferError, validateConfigurationValues, type ConfigurationValue, type ConfigurationValues } from '../../../common/index.js';
import type { TlsFiles } from '../tls-files.js';
import { postgresqlParameters } from './parameters.js';
import { archiveTimeoutSeconds } from './wal-archive.js';
import { postgresqlTlsSettings, tenantConnectionType } from './tls.js';

// postgresql.conf and pg_hba.conf, rendered whole from the instance's spec (the flavor's memory,
// the access rules, the configuration group's overrides) and its placement: the files initdb
// writes are replaced, so what runs is exactly what is written here.

export interface MemorySettings {
  sharedBuffersMb: number;
  effectiveCacheSizeMb: number;
  maxConnections: number;
  workMemKb: number;
  maintenanceWorkMemMb: number;
}

const clamp = (value: number, min: number, max: number) => Math.min(max, Math.max(min, value));

/**
 * The usual rules of thumb: shared_buffers a quarter of RAM, the planner told three quarters is
 * cache, connections scaled with RAM, and work_mem sized so that every connection running a
 * few sorts at once still fits in what shared_buffers leaves.
 */
export function tuneMemory(memoryMb: number): MemorySettings {
  const sharedBuffersMb = Math.max(16, Math.floor(memoryMb / 4));
  const maxConnections = clamp(Math.floor((memoryMb / 1024) * 100), 20, 500);
  const spareKb = Math.max(0, memoryMb - sharedBuffersMb) * 1024;
  return {
    sharedBuffersMb,
    effectiveCacheSizeMb: Math.max(32, Math.floor((memoryMb * 3) / 4)),
    maxConnections,
    workMemKb: clamp(Math.floor(spareKb / (maxConnections * 3)), 1024, 64 * 1024),
    maintenanceWorkMemMb: clamp(Math.floor(memoryMb / 16), 16, 2048),
  };
}

/** A string setting in postgresql.conf syntax (backslash escapes apply inside quotes). */
export function configString(value: string): string {
  if (/[\r\n\0]/.test(value)) throw new CofferError('BadRequest', 'A configuration value cannot contain line breaks.');
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** One value in postgresql.conf syntax: strings quoted, booleans on/off, numbers as they are. */
export function configValue(value: ConfigurationValue): string {
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new CofferError('BadRequest', `${value} is not a configuration value.`);
    return String(value);
  }
  return configString(value);
}

export interface ServerConfigInput {
  memoryMb: number;
  address: string;
  port: number;
  socketDir: string;
  hbaFile: string;
  /** undefined: no certificate installed yet */
  tls?: TlsFiles;
  /** the configuration group's values: each replaces Coffer's own setting of the same name */
  overrides?: ConfigurationValues;
  /** where basic_archive copies each finished WAL file for the guest to ship; undefined: no archiving */
  walSpoolDir?: string;
  /** a replica's source: it runs as a hot standby streaming from there (standby.signal is the lifecycle's) */
  standbyOf?: StandbySource;
  /** a source whose commits wait for one of these replicas (their application names, i.e. slot names) */
  synchronousStandbys?: readonly string[];
  /** the tenant turned its general log on (log API): every statement is logged */
  logStatements?: boolean;
}

/** Where a replica streams from: the password is in `passfile`, never in the configuration. */
export interface StandbySource {
  address: string;
  port: number;
  user: string;
  slot: string;
  passfile: string;
}

/** A libpq connection string value, quoted (single quotes and backslashes escaped). */
function conninfoValue(value: string | number): string {
  return `'${String(value).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * A standby's settings: it streams through its own slot and answers read-only queries meanwhile.
 * sslmode prefer: TLS whenever the primary has a certificate installed.
 */
function standbySettings(source: StandbySource | undefined): [string, ConfigurationValue][] {
  if (source === undefined) return [];
  const conninfo = [
    `host=${conninfoValue(source.address)}`,
    `port=${conninfoValue(source.port)}`,
    `user=${conninfoValue(source.user)}`,
    `passfile=${conninfoValue(source.passfile)}`,
    `application_name=${conninfoValue(source.slot)}`,
    'sslmode=prefer',
  ].join(' ');
  return [
    ['primary_conninfo', conninfo],
    ['primary_slot_name', source.slot],
    ['hot_standby', true],
  ];
}

/**
 * A source in synchronous mode: a commit returns once any one of its replicas has flushed it.
 * Replicas connect with their slot name as application_name (standbySettings). With no replica
 * left the list names one no standby can have (slot names have no '-'), so commits still wait,
 * as synchronous mode promises, instead of silently becoming asynchronous.
 */
function synchronousSettings(standbys: readonly string[] | undefined): [string, ConfigurationValue][] {
  if (standbys === undefined) return [];
  for (const name of standbys) {
    if (!/^coffer_[a-z0-9_]{1,50}$/.test(name)) throw new CofferError('Internal', `"${name}" is not a replication slot name.`);
  }
  const names = standbys.length === 0 ? ['"coffer-none"'] : standbys.map((name) => `"${name}"`);
  return [
    ['synchronous_standby_names', `ANY 1 (${names.join(', ')})`],
    ['synchronous_commit', true],
  ];
}

/** Where the host keeps the instance's files: its layout, not the tenant's configuration. */
const hostPaths: ReadonlySet<string> = new Set([
  'unix_socket_directories',
  'hba_file',
  'ssl_cert_file',
  'ssl_key_file',
  'basic_archive.archive_directory',
  // the replication wiring: the host's, and names its password file
  'primary_conninfo',
  'primary_slot_name',
]);

/**
 * Continuous archiving (wal-archive.ts) by PostgreSQL's own basic_archive module: no shell command
 * and nothing of the storage's in the engine's reach, only a directory of the instance's own. A
 * finished segment is archived at once, and a segment with changes is finished at the latest
 * after archive_timeout.
 */
function archiveSettings(spoolDir: string | undefined): [string, ConfigurationValue][] {
  if (spoolDir === undefined) return [];
  return [
    ['archive_mode', 'on'],
    ['archive_library', 'basic_archive'],
    ['basic_archive.archive_directory', spoolDir],
    ['archive_timeout', archiveTimeoutSeconds],
  ];
}

interface RenderedSettings {
  /** Coffer's own settings that no override replaces, in file order */
  own: [string, ConfigurationValue][];
  /** the configuration group's, under their published names */
  overrides: [string, ConfigurationValue][];
}

function settings(input: ServerConfigInput): RenderedSettings {
  const memory = tuneMemory(input.memoryMb);
  const own: [string, ConfigurationValue][] = [
    ['listen_addresses', input.address],
    ['port', input.port],
    ['unix_socket_directories', input.socketDir],
    ['unix_socket_permissions', '0700'],
    // initdb's own pg_hba.conf in the data directory stays unused
    ['hba_file', input.hbaFile],
    ['password_encryption', 'scram-sha-256'],
    ...postgresqlTlsSettings(input.tls),
    ['max_connections', memory.maxConnections],
    ['shared_buffers', `${memory.sharedBuffersMb}MB`],
    ['effective_cache_size', `${memory.effectiveCacheSizeMb}MB`],
    ['work_mem', `${memory.workMemKb}kB`],
    ['maintenance_work_mem', `${memory.maintenanceWorkMemMb}MB`],
    ['dynamic_shared_memory_type', 'posix'],
    ['max_wal_size', '1GB'],
    ['min_wal_size', '80MB'],
    ...archiveSettings(input.walSpoolDir),
    ...standbySettings(input.standbyOf),
    ...synchronousSettings(input.synchronousStandbys),
    // stderr goes to the log file the supervisor opened for the postmaster
    ['log_destination', 'stderr'],
    ['logging_collector', false],
    ['log_line_prefix', '%m [%p] %q%u@%d '],
    ...(input.logStatements === true ? ([['log_statement', 'all']] as [string, ConfigurationValue][]) : []),
    ['datestyle', 'iso, mdy'],
    ['timezone', 'UTC'],
    ['log_timezone', 'UTC'],
    ['lc_messages', 'C.UTF-8'],
    ['lc_monetary', 'C.UTF-8'],
    ['lc_numeric', 'C.UTF-8'],
    ['lc_time', 'C.UTF-8'],
    ['default_text_search_config', 'pg_catalog.english'],
  ];
  // checked again here, whoever the caller: only a published parameter with a value inside its
  // rules ever reaches the file, under its own name (so it replaces Coffer's line, never doubles it)
  const overrides = Object.entries(validateConfigurationValues(input.overrides ?? {}, postgresqlParameters, 'postgresql'));
  const overridden = new Set(overrides.map(([name]) => name));
  return { own: own.filter(([name]) => !overridden.has(name)), overrides };
}

export function renderPostgresqlConf(input: ServerConfigInput): string {
  const { own, overrides } = settings(input);
  const lines = (entries: [string, ConfigurationValue][]) => entries.map(([name, value]) => `${name} = ${configValue(value)}\n`).join('');
  const header = `# Written by Coffer from the instance's flavor (${input.memoryMb} MB RAM) and configuration group; rewritten on every change.\n`;
  const group = overrides.length === 0 ? '' : `# the configuration group's values, in place of Coffer's own\n${lines(overrides)}`;
  return `${header}${lines(own)}${group}`;
}

/**
 * The settings a tenant's instance runs with as rendered, by name: Coffer's own and the group's
 * overrides, typed as in the file (numbers, booleans, strings), without the host's file paths.
 */
export function effectivePostgresqlSettings(input: ServerConfigInput): Record<string, ConfigurationValue> {
  const { own, overrides } = settings(input);
  return Object.fromEntries([...own, ...overrides].filter(([name]) => !hostPaths.has(name)));
}

/** The names of the `name = value` lines that differ between two postgresql.conf texts as rendered here. */
export function changedSettings(before: string, after: string): string[] {
  const parse = (text: string) =>
    new Map(
      text
        .split('\n')
        .map((line) => /^(\w+) = (.*)$/.exec(line))
        .filter((match) => match !== null)
        .map((match) => [match[1]!, match[2]!]),
    );
  const [old, now] = [parse(before), parse(after)];
  return [...new Set([...old.keys(), ...now.keys()])].filter((name) => old.get(name) !== now.get(name));
}

/** Accepts `a.b.c.d/n` and IPv6 `x::y/n` only: the value lands in pg_hba.conf verbatim. */
function parseCidr(cidr: string): string {
  const match = /^([0-9a-fA-F:.]+)\/(\d{1,3})$/.exec(cidr.trim());
  const address = match?.[1];
  const bits = Number(match?.[2]);
  if (address !== undefined && isIPv4(address) && bits <= 32) return `${address}/${bits}`;
  if (address !== undefined && isIPv6(address) && bits <= 128) return `${address}/${bits}`;
  throw new CofferError('BadRequest', `Invalid client address range "${cidr}": expected a CIDR such as 10.0.0.0/8.`);
}

/** One replica as its primary's pg_hba sees it: its own replication role, from where its connections come. */
export interface ReplicaAccess {
  user: string;
  /** the address the replica's connections come from (replication.ts, replicaSourceAddress) */
  from: string;
}

/** Replication role names are the guest's own (replication.ts); checked again as they land in pg_hba verbatim. */
const replicationRoleName = /^os_repl_[a-z0-9_]{1,50}$/;

/**
 * Password (SCRAM) logins only, nothing trusted: the administrative role logs in over the
 * instance's own socket only and is refused over TCP; everyone else over TCP from `clientCidrs`
 * (over TLS only when `requireTls`). Replication connections (`all` does not match them) are
 * the administrative role's over the socket (pg_basebackup's, backup.ts) and each replica's
 * role from its replica's address; a replica's role may open no other session.
 */
export function renderPgHba(adminRole: string, clientCidrs: readonly string[], requireTls = false, replicas: readonly ReplicaAccess[] = []): string {
  const cidrs = clientCidrs.map(parseCidr);
  const type = tenantConnectionType(requireTls);
  const replicaLines = replicas.flatMap(({ user, from }) => {
    if (!replicationRoleName.test(user)) throw new CofferError('Internal', `"${user}" is not a replication role name.`);
    const cidr = parseCidr(`${from}/${isIPv4(from) ? 32 : 128}`);
    return [`host replication ${user} ${cidr} scram-sha-256`, `host all ${user} 0.0.0.0/0 reject`, `host all ${user} ::/0 reject`];
  });
  const lines = [
    '# Written by Coffer; rewritten on prepare.',
    '# TYPE  DATABASE  USER  ADDRESS  METHOD',
    `local all ${adminRole} scram-sha-256`,
    `local replication ${adminRole} scram-sha-256`,
    `host all ${adminRole} 0.0.0.0/0 reject`,
    `host all ${adminRole} ::/0 reject`,
    ...replicaLines,
    ...cidrs.map((cidr) => `${type} all all ${cidr} scram-sha-256`),
  ];
  return `${lines.join('\n')}\n`;
}
