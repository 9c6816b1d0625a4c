import { isIP } from 'node:net';
import { CofferError, validateConfigurationValues, type ConfigurationValue, type ConfigurationValues } from '../../../common/index.js';
import type { TlsFiles } from '../tls-files.js';
import { redisParameters, redisParameterTable } from './parameters.js';
import { redisTlsSettings } from './tls.js';

// redis.conf, rendered whole from the instance's spec (the flavor's memory, the access rules,
// the configuration group's overrides) and its placement: nothing of Debian's
// /etc/redis/redis.conf applies, so what runs is exactly what is written here.

/** A setting as Redis means it; `confValue` and `liveValue` write it in each of Redis's syntaxes. */
export type RedisSetting = readonly [name: string, value: ConfigurationValue];

/**
 * A quarter of the flavor's RAM stays outside the dataset, as ElastiCache's default
 * reserved-memory-percent does: the fork behind every RDB snapshot and AOF rewrite copies the
 * pages written meanwhile, and client and replication buffers live outside maxmemory too.
 */
export function maxmemoryMb(memoryMb: number): number {
  return Math.max(16, Math.floor((memoryMb * 3) / 4));
}

/** A value in redis.conf syntax: double-quoted with backslash escapes (sdssplitargs). */
export function configString(value: string): string {
  if (/[\r\n\0]/.test(value)) throw new CofferError('BadRequest', 'A configuration value cannot contain line breaks.');
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function integerText(value: number): string {
  // a float or a huge number would print as 1.5 or 1e+21, which Redis reads as something else or refuses
  if (!Number.isSafeInteger(value)) throw new CofferError('BadRequest', `${value} is not an integer Redis can take.`);
  return String(value);
}

/** As CONFIG SET takes it and CONFIG GET answers it (for the values Coffer renders). */
export function liveValue(value: ConfigurationValue): string {
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'number') return integerText(value);
  return value;
}

/** As redis.conf holds it: strings always quoted, so that no value becomes two arguments. */
export function confValue(value: ConfigurationValue): string {
  return typeof value === 'string' ? configString(value) : liveValue(value);
}

export interface RedisConfigInput {
  memoryMb: number;
  address: string;
  port: number;
  /** the engine's working directory: RDB, AOF, ACL file, socket and pid file */
  dataDir: string;
  socketPath: string;
  pidFile: string;
  aclFile: string;
  /** undefined: no certificate installed yet */
  tls?: TlsFiles;
  requireTls?: boolean;
  /** a configuration group's values: each replaces Coffer's value of a published parameter */
  overrides?: ConfigurationValues;
  /** the host archives the AOF (point in time, aof-archive.ts): what that needs wins over the group's values */
  archiveLog?: boolean;
  /** a replica's primary (replication.ts); undefined: a primary of its own */
  replicaOf?: ReplicaOfSettings;
  /** a source whose writes need a replica in sync (failover.ts, setSynchronous) */
  synchronous?: boolean;
}

/** more replicas than any primary has: with min-replicas-to-write at this, every write is refused */
export const writeRefusingReplicas = 1_000_000;

/**
 * A synchronous source refuses a write (NOREPLICAS) unless a replica acknowledged its stream
 * within the last `min-replicas-max-lag` seconds. Redis checks that before the write, not
 * after: an acknowledged write can still be lost with the source, at most this many seconds of
 * them; it cannot wait for a replica to hold each write as PostgreSQL and MariaDB can.
 */
export function synchronousSettings(synchronous: boolean): RedisSetting[] {
  return [
    ['min-replicas-to-write', synchronous ? 1 : 0],
    ['min-replicas-max-lag', 10],
  ];
}

/** Where a replica streams from, as whom, and whether over TLS (the primary's TLS port). */
export interface ReplicaOfSettings {
  address: string;
  port: number;
  user: string;
  password: string;
  tls: boolean;
}

/**
 * A replica's settings: its primary, the replication user's credentials, read-only (Redis then
 * refuses every write with READONLY), and its own address announced, so that its primary's INFO
 * tells replicas on one host apart (they all connect from the loopback route's 127.0.0.1). Over
 * TLS it checks the primary's certificate against its own CA (the agent's, which signed both).
 */
function replicaSettings(input: RedisConfigInput): RedisSetting[] {
  const source = input.replicaOf;
  if (source === undefined) return [];
  if (isIP(source.address) === 0) throw new CofferError('BadRequest', `Invalid primary address "${source.address}".`);
  if (source.tls && input.tls === undefined) {
    throw new CofferError('EngineError', 'The primary serves TLS only, and this replica has no certificate to replicate over TLS with.');
  }
  return [
    ['replicaof', `${source.address} ${source.port}`],
    ['masteruser', source.user],
    ['masterauth', source.password],
    ['replica-read-only', true],
    ['replica-announce-ip', input.address],
    ['replica-announce-port', input.port],
    ...(source.tls && input.tls !== undefined ? ([['tls-replication', true], ['tls-ca-cert-file', input.tls.caFile]] as RedisSetting[]) : []),
  ];
}

/**
 * What archiving the AOF needs, whatever a group sets: the AOF on, rewrites that write an RDB
 * base (a backup is one), a `#TS` annotation for each second with writes, and the files a
 * rewrite replaces kept until the guest has shipped them.
 */
const archivingSettings: Readonly<Record<string, ConfigurationValue>> = {
  appendonly: true,
  'aof-use-rdb-preamble': true,
};
const archivingExtras: readonly RedisSetting[] = [
  ['aof-timestamp-enabled', true],
  ['aof-disable-auto-gc', true],
];

/** Every setting redis.conf holds, in its order, with the overrides in place of Coffer's values. */
export function redisSettings(input: RedisConfigInput): RedisSetting[] {
  if (isIP(input.address) === 0) throw new CofferError('BadRequest', `Invalid listen address "${input.address}".`);
  if (!Number.isInteger(input.port) || input.port < 1 || input.port > 65_535) {
    throw new CofferError('BadRequest', `Invalid port ${input.port}.`);
  }
  // checked here too, whoever called: only a published name with a value of its type is rendered
  const overrides = validateConfigurationValues(input.overrides ?? {}, redisParameters, 'redis');
  return [
    // the instance's own address only: other instances on this host listen on 6379 too
    ['bind', input.address],
    ...redisTlsSettings(input.tls, input.port, input.requireTls === true),
    ['protected-mode', true],
    // the guest's way in; 0700: only the engine's user (and root) may connect
    ['unixsocket', input.socketPath],
    ['unixsocketperm', '700'],
    // supervised by the agent: in the foreground, its output in the log the runner opened
    ['daemonize', false],
    ['supervised', 'no'],
    ['pidfile', input.pidFile],
    ['logfile', ''],
    ['loglevel', 'notice'],
    ['always-show-logo', false],
    ['dir', input.dataDir],
    ['aclfile', input.aclFile],
    ['maxmemory', maxmemoryMb(input.memoryMb) * 1024 * 1024],
    ['appenddirname', 'appendonlydir'],
    ['dbfilename', 'dump.rdb'],
    // nothing that lets a client move files or load code, whatever its ACL rights
    ['enable-protected-configs', false],
    ['enable-debug-command', false],
    ['enable-module-command', false],
    ['sanitize-dump-payload', true],
    ...redisParameterTable.map(({ name, standard }): RedisSetting => [
      name,
      (input.archiveLog === true ? archivingSettings[name] : undefined) ?? overrides[name] ?? standard,
    ]),
    ...(input.archiveLog === true ? archivingExtras : []),
    ...(input.synchronous === true ? synchronousSettings(true) : []),
    ...replicaSettings(input),
  ];
}

export function renderRedisConf(input: RedisConfigInput): string {
  // `replicaof` takes two arguments: written as such, never as one quoted string
  const lines = redisSettings(input).map(([name, value]) => (name === 'replicaof' ? `${name} ${String(value)}` : `${name} ${confValue(value)}`));
  const overridden = Object.keys(input.overrides ?? {}).length;
  return [
    `# Written by Coffer from the instance's flavor (${input.memoryMb} MB RAM), access rules and ${overridden} configuration-group value(s);`,
    '# rewritten whole on every change.',
    ...lines,
    '',
  ].join('\n');
}
