import { isIPv4, isIPv6 } from 'node:net';
import { CofferError } from '../../../common/index.js';
import type { TlsFiles } from '../tls-files.js';
import { postgresqlTlsSettings, tenantConnectionType } from './tls.js';

// postgresql.conf and pg_hba.conf, rendered whole from the flavor and the placement: the files
// initdb writes are replaced, so what runs is exactly what is written here.

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

export interface ServerConfigInput {
  memoryMb: number;
  address: string;
  port: number;
  socketDir: string;
  hbaFile: string;
  /** undefined: no certificate installed yet */
  tls?: TlsFiles;
}

export function renderPostgresqlConf(input: ServerConfigInput): string {
  const memory = tuneMemory(input.memoryMb);
  const settings: [string, string][] = [
    ['listen_addresses', configString(input.address)],
    ['port', String(input.port)],
    ['unix_socket_directories', configString(input.socketDir)],
    ['unix_socket_permissions', '0700'],
    // initdb's own pg_hba.conf in the data directory stays unused
    ['hba_file', configString(input.hbaFile)],
    ['password_encryption', "'scram-sha-256'"],
    ...postgresqlTlsSettings(input.tls, configString),
    ['max_connections', String(memory.maxConnections)],
    ['shared_buffers', `'${memory.sharedBuffersMb}MB'`],
    ['effective_cache_size', `'${memory.effectiveCacheSizeMb}MB'`],
    ['work_mem', `'${memory.workMemKb}kB'`],
    ['maintenance_work_mem', `'${memory.maintenanceWorkMemMb}MB'`],
    ['dynamic_shared_memory_type', 'posix'],
    ['max_wal_size', "'1GB'"],
    ['min_wal_size', "'80MB'"],
    // stderr goes to the log file the supervisor opened for the postmaster
    ['log_destination', "'stderr'"],
    ['logging_collector', 'off'],
    ['log_line_prefix', "'%m [%p] %q%u@%d '"],
    ['datestyle', "'iso, mdy'"],
    ['timezone', "'UTC'"],
    ['log_timezone', "'UTC'"],
    ['lc_messages', "'C.UTF-8'"],
    ['lc_monetary', "'C.UTF-8'"],
    ['lc_numeric', "'C.UTF-8'"],
    ['lc_time', "'C.UTF-8'"],
    ['default_text_search_config', "'pg_catalog.english'"],
  ];
  return `# Written by Coffer from the instance's flavor (${input.memoryMb} MB RAM); rewritten on prepare.\n${settings
    .map(([name, value]) => `${name} = ${value}`)
    .join('\n')}\n`;
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

/**
 * Password (SCRAM) logins only, nothing trusted: the administrative role logs in over the
 * instance's own socket only and is refused over TCP; everyone else over TCP from `clientCidrs`
 * (over TLS only when `requireTls`).
 */
export function renderPgHba(adminRole: string, clientCidrs: readonly string[], requireTls = false): string {
  const cidrs = clientCidrs.map(parseCidr);
  const type = tenantConnectionType(requireTls);
  const lines = [
    '# Written by Coffer; rewritten on prepare.',
    '# TYPE  DATABASE  USER  ADDRESS  METHOD',
    `local all ${adminRole} scram-sha-256`,
    `host all ${adminRole} 0.0.0.0/0 reject`,
    `host all ${adminRole} ::/0 reject`,
    ...cidrs.map((cidr) => `${type} all all ${cidr} scram-sha-256`),
  ];
  return `${lines.join('\n')}\n`;
}
