import { escape, escapeId } from 'mysql2';
import { isIPv4, isIPv6 } from 'node:net';
import { CofferError } from '../../../common/index.js';
import type { DatabaseSpec } from '../../../bus/index.js';

// Statements built from API users' names and passwords. Every identifier goes through escapeId
// and every literal through escape; the admin session pins sql_mode so that backslash escapes
// keep their meaning whatever a tenant's root sets globally.

/** The guest's own account and database (Trove's os_admin): never listed, never given to users. */
export const adminUser = 'os_admin';
/** the database that keeps what the guest needs to rebuild accounts (see account-registry.ts) */
export const guestDatabase = 'os_admin';
export const rootUser = 'root';
/** the account the backup tool logs in with while a backup runs (see backup.ts) */
export const backupUser = 'os_backup';
/** the account a point-in-time restore replays the archived binary log with (see binlog-replay.ts) */
export const replayUser = 'os_replay';
/** the account the upgrade tool logs in with after the server changed version (see upgrade.ts) */
export const upgradeUser = 'os_upgrade';
/** the accounts a primary keeps for its replicas, one each (see replication.ts) */
export const replicationUserPrefix = 'os_repl_';

export const systemDatabases = new Set(['mysql', 'information_schema', 'performance_schema', 'sys', guestDatabase]);
const maxDatabaseName = 64;

/**
 * The guest's session whatever a configuration group (or a tenant's root) sets globally: a
 * sql_mode with no NO_BACKSLASH_ESCAPES or ANSI_QUOTES, which would change how quoting works,
 * and autocommit, without which the guest's own writes would be rolled back when it disconnects.
 * Out of the general and slow-query logs, which the tenant may turn on and read (guest logs):
 * its account statements and its health check's SELECT 1 every few seconds are not the tenant's.
 */
export const adminSessionSettings =
  "SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION', autocommit = 1, sql_log_off = 1, long_query_time = 31536000";

/** One identifier, dots included (escapeId alone would read `a.b` as database a, table b). */
export function quoteId(name: string): string {
  return escapeId(name, true);
}

export function account(name: string, host: string): string {
  return `${escape(name)}@${escape(host)}`;
}

export function checkDatabaseName(name: string): void {
  const length = [...name].length;
  if (length === 0 || length > maxDatabaseName || name.includes('\0') || name.endsWith(' ')) {
    throw new CofferError(
      'BadRequest',
      `Invalid database name "${name}": 1 to ${maxDatabaseName} characters, no NUL character, no trailing space.`,
    );
  }
  if (systemDatabases.has(name.toLowerCase())) throw new CofferError('BadRequest', `The database name "${name}" is reserved.`);
}

export function checkUserName(name: string, maxLength: number, isSystemAccount: (name: string) => boolean): void {
  const length = [...name].length;
  if (length === 0 || length > maxLength || name.includes('\0')) {
    throw new CofferError('BadRequest', `Invalid user name "${name}": 1 to ${maxLength} characters, no NUL character.`);
  }
  if (name === adminUser || name === rootUser || name === backupUser || name === replayUser || name === upgradeUser || name.startsWith(replicationUserPrefix) || isSystemAccount(name)) {
    throw new CofferError('BadRequest', `The user name "${name}" is reserved.`);
  }
}

/** Character set and collation names are plain words; the server rejects unknown ones. */
function charsetWord(kind: string, value: string): string {
  if (!/^[A-Za-z0-9_]{1,64}$/.test(value)) throw new CofferError('BadRequest', `Invalid ${kind} "${value}".`);
  return value;
}

export function createDatabaseStatement(database: DatabaseSpec, ifNotExists = false): string {
  const parts = [`CREATE DATABASE ${ifNotExists ? 'IF NOT EXISTS ' : ''}${quoteId(database.name)}`];
  if (database.characterSet !== undefined) parts.push(`CHARACTER SET ${charsetWord('character set', database.characterSet)}`);
  if (database.collate !== undefined) parts.push(`COLLATE ${charsetWord('collation', database.collate)}`);
  return parts.join(' ');
}

export function dropDatabaseStatement(name: string): string {
  return `DROP DATABASE ${quoteId(name)}`;
}

/**
 * In GRANT ... ON db.*, `_` and `%` in the database name are wildcards: `a_b` would also open
 * `axb`. Escaped, the grant names exactly one database.
 */
export function grantDatabaseStatement(name: string, host: string, database: string): string {
  return `GRANT ALL PRIVILEGES ON ${quoteId(database.replace(/[\\_%]/g, '\\$&'))}.* TO ${account(name, host)}`;
}

export function grantSuperuserStatement(name: string, host: string): string {
  return `GRANT ALL PRIVILEGES ON *.* TO ${account(name, host)} WITH GRANT OPTION`;
}

export function revokeAllStatement(name: string, host: string): string {
  return `REVOKE ALL PRIVILEGES, GRANT OPTION FROM ${account(name, host)}`;
}

export function createUserStatement(name: string, host: string, identified: string): string {
  return `CREATE USER ${account(name, host)} IDENTIFIED ${identified}`;
}

export function alterUserPasswordStatement(name: string, host: string, identified: string): string {
  return `ALTER USER ${account(name, host)} IDENTIFIED ${identified}`;
}

export function dropUserStatement(name: string, host: string): string {
  return `DROP USER IF EXISTS ${account(name, host)}`;
}

/** A range of IPv4 addresses: `network` with the first `prefix` bits significant. */
export interface Ipv4Range {
  network: number;
  prefix: number;
}

function ipv4ToNumber(address: string): number {
  return address.split('.').reduce((value, octet) => value * 256 + Number(octet), 0);
}

function numberToIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

function range(address: string, prefix: number): Ipv4Range {
  return { network: (ipv4ToNumber(address) & maskOf(prefix)) >>> 0, prefix };
}

/** A netmask such as 255.255.0.0 as a prefix length; undefined when its bits are not contiguous. */
function prefixOfMask(mask: string): number | undefined {
  if (!isIPv4(mask)) return undefined;
  const value = ipv4ToNumber(mask);
  for (let prefix = 0; prefix <= 32; prefix++) if (maskOf(prefix) === value) return prefix;
  return undefined;
}

const hostHelp =
  'expected %, an IPv4 address, address/netmask (10.0.0.0/255.0.0.0), address/prefix (10.0.0.0/8), ' +
  'a.b.% or a.b.%.% (the server resolves no host names)';

function networkRange(address: string, prefix: number | undefined): Ipv4Range | undefined {
  if (prefix === undefined || !isIPv4(address)) return undefined;
  const value = range(address, prefix);
  // the server compares (client & mask) with the address as given: host bits make it match nobody
  return value.network === ipv4ToNumber(address) ? value : undefined;
}

/** `10.%`, `10.1.%.%`, `%.%.%.%`: whole trailing octets as wildcards are an address range. */
function wildcardRange(host: string): Ipv4Range | undefined {
  const parts = host.split('.');
  const first = parts.indexOf('%');
  if (first < 0 || parts.length > 4 || parts.slice(first).some((part) => part !== '%')) return undefined;
  const octets = parts.slice(0, first);
  if (!octets.every((octet) => /^\d{1,3}$/.test(octet) && Number(octet) <= 255 && String(Number(octet)) === octet)) return undefined;
  return range([...octets, '0', '0', '0', '0'].slice(0, 4).join('.'), octets.length * 8);
}

/**
 * The IPv4 addresses a tenant's host pattern admits; `undefined` for an IPv6 pattern, which no
 * client of the IPv4 address the server listens on can match. BadRequest for a pattern that is
 * not an address range (host names, wildcards inside an octet).
 */
export function parseUserHost(host: string): Ipv4Range | undefined {
  if (host === '%') return { network: 0, prefix: 0 };
  if (isIPv4(host)) return range(host, 32);
  if (isIPv6(host)) return undefined;
  const slash = /^([0-9a-fA-F:.]+)\/([0-9.]+)$/.exec(host);
  if (slash !== null) {
    const [, address, suffix] = slash as unknown as [string, string, string];
    if (isIPv6(address) && /^\d{1,3}$/.test(suffix) && Number(suffix) <= 128) return undefined;
    const prefix = /^\d{1,2}$/.test(suffix) ? (Number(suffix) <= 32 ? Number(suffix) : undefined) : prefixOfMask(suffix);
    const found = networkRange(address, prefix);
    if (found !== undefined) return found;
  }
  const wildcard = wildcardRange(host);
  if (wildcard !== undefined) return wildcard;
  throw new CofferError('BadRequest', `Invalid host "${host}": ${hostHelp}.`);
}

/** An allowed client range: IPv4 CIDRs give ranges, IPv6 ones none (the server listens on IPv4). */
export function parseCidr(cidr: string): Ipv4Range | undefined {
  const match = /^([0-9a-fA-F:.]+)\/(\d{1,3})$/.exec(cidr.trim());
  const address = match?.[1];
  const bits = Number(match?.[2]);
  if (address !== undefined && isIPv4(address) && bits <= 32) return range(address, bits);
  if (address !== undefined && address.includes(':') && bits <= 128) return undefined;
  throw new CofferError('BadRequest', `Invalid client address range "${cidr}": expected a CIDR such as 10.0.0.0/8.`);
}

/** The addresses in both ranges, which are nested or disjoint. */
export function intersect(a: Ipv4Range, b: Ipv4Range): Ipv4Range | undefined {
  const [wide, narrow] = a.prefix <= b.prefix ? [a, b] : [b, a];
  return ((narrow.network & maskOf(wide.prefix)) >>> 0) === wide.network ? narrow : undefined;
}

/** A range in the account host syntax both engines read: `%`, an address, or address/netmask. */
export function accountHost(value: Ipv4Range): string {
  if (value.prefix === 0) return '%';
  if (value.prefix === 32) return numberToIpv4(value.network);
  return `${numberToIpv4(value.network)}/${numberToIpv4(maskOf(value.prefix))}`;
}
