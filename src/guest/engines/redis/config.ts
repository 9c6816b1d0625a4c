import { isIP } from 'node:net';
import { CofferError } from '../../../common/index.js';
import type { TlsFiles } from '../tls-files.js';
import { redisTlsSettings } from './tls.js';

// redis.conf, rendered whole from the flavor and the placement: nothing of Debian's
// /etc/redis/redis.conf applies, so what runs is exactly what is written here.

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
}

export function renderRedisConf(input: RedisConfigInput): string {
  if (isIP(input.address) === 0) throw new CofferError('BadRequest', `Invalid listen address "${input.address}".`);
  if (!Number.isInteger(input.port) || input.port < 1 || input.port > 65_535) {
    throw new CofferError('BadRequest', `Invalid port ${input.port}.`);
  }
  const settings: [string, string][] = [
    // the instance's own address only: other instances on this host listen on 6379 too
    ['bind', input.address],
    ...redisTlsSettings(input.tls, input.port, input.requireTls === true),
    ['protected-mode', 'yes'],
    // the guest's way in; 0700: only the engine's user (and root) may connect
    ['unixsocket', configString(input.socketPath)],
    ['unixsocketperm', '700'],
    // supervised by the agent: in the foreground, its output in the log the runner opened
    ['daemonize', 'no'],
    ['supervised', 'no'],
    ['pidfile', configString(input.pidFile)],
    ['logfile', '""'],
    ['loglevel', 'notice'],
    ['always-show-logo', 'no'],
    ['dir', configString(input.dataDir)],
    ['aclfile', configString(input.aclFile)],
    ['maxmemory', `${maxmemoryMb(input.memoryMb)}mb`],
    // a datastore, not a cache: writes fail when full rather than keys silently vanishing
    ['maxmemory-policy', 'noeviction'],
    // persistence: the AOF every second (at most a second lost), RDB snapshots as well
    ['appendonly', 'yes'],
    ['appendfsync', 'everysec'],
    ['appenddirname', '"appendonlydir"'],
    ['aof-use-rdb-preamble', 'yes'],
    ['dbfilename', '"dump.rdb"'],
    ['save', '"3600 1 300 100 60 10000"'],
    ['stop-writes-on-bgsave-error', 'yes'],
    // nothing that lets a client move files or load code, whatever its ACL rights
    ['enable-protected-configs', 'no'],
    ['enable-debug-command', 'no'],
    ['enable-module-command', 'no'],
    ['sanitize-dump-payload', 'yes'],
    ['timeout', '0'],
    ['tcp-keepalive', '300'],
  ];
  return `# Written by Coffer from the instance's flavor (${input.memoryMb} MB RAM); rewritten on prepare and resize.\n${settings
    .map(([name, value]) => `${name} ${value}`)
    .join('\n')}\n`;
}
