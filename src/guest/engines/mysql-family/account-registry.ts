import type { Connection, RowDataPacket } from 'mysql2/promise';
import { escape } from 'mysql2';
import type { MysqlFamilyFlavor } from './flavor.js';
import {
  accountHost,
  alterUserPasswordStatement,
  createUserStatement,
  dropUserStatement,
  grantDatabaseStatement,
  grantSuperuserStatement,
  guestDatabase,
  intersect,
  parseCidr,
  parseUserHost,
  quoteId,
  revokeAllStatement,
  rootUser,
  type Ipv4Range,
} from './sql.js';

// Tenant users live in two places. The guest's tables in `os_admin` say what the tenant asked
// for: name, host pattern, password hash, databases. The engine's accounts are derived from
// them and the allowed client ranges: one account per range, at the part of the tenant's host
// that lies in the range (`alice`@`%` with 10.0.0.0/8 allowed is `alice`@`10.0.0.0/255.0.0.0`).
// The engine itself thus refuses a client outside the ranges, for every tenant user and root,
// and a change of ranges re-derives the accounts on the running server. Users list as the
// tenant gave them. Accounts made by a tenant's root in SQL are the tenant's own business.

const table = (name: string) => `${quoteId(guestDatabase)}.${quoteId(name)}`;
export const tenantUsers = table('tenant_user');
export const tenantGrants = table('tenant_grant');
const tenantAccounts = table('tenant_account');
export const accessRules = table('access_rule');

const options = 'ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin';

export const registrySchema = [
  `CREATE DATABASE IF NOT EXISTS ${quoteId(guestDatabase)} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
  `CREATE TABLE IF NOT EXISTS ${tenantUsers} (name VARCHAR(128) NOT NULL, host VARCHAR(255) NOT NULL, ` +
    `superuser BOOLEAN NOT NULL DEFAULT FALSE, password_hash VARCHAR(255) NOT NULL, PRIMARY KEY (name, host)) ${options}`,
  `CREATE TABLE IF NOT EXISTS ${tenantGrants} (name VARCHAR(128) NOT NULL, host VARCHAR(255) NOT NULL, ` +
    `db VARCHAR(64) NOT NULL, PRIMARY KEY (name, host, db)) ${options}`,
  `CREATE TABLE IF NOT EXISTS ${tenantAccounts} (name VARCHAR(128) NOT NULL, account_host VARCHAR(255) NOT NULL, ` +
    `host VARCHAR(255) NOT NULL, PRIMARY KEY (name, account_host)) ${options}`,
  `CREATE TABLE IF NOT EXISTS ${accessRules} (cidr VARCHAR(64) NOT NULL, PRIMARY KEY (cidr)) ${options}`,
];

export interface TenantUser {
  name: string;
  host: string;
  superuser: boolean;
  passwordHash: string;
}

export interface DerivedAccount {
  accountHost: string;
  /** the tenant user's own host pattern */
  host: string;
}

/**
 * Which accounts the tenant users of one name need: one per allowed range they reach. Where
 * two of them reach the same addresses, the more specific host pattern takes them, as the
 * server itself would pick it.
 */
export function deriveAccounts(users: readonly Pick<TenantUser, 'host'>[], ranges: readonly Ipv4Range[]): DerivedAccount[] {
  const prefix = (host: string) => parseUserHost(host)?.prefix ?? 128;
  const bySpecificity = [...users].sort((a, b) => prefix(b.host) - prefix(a.host));
  const derived = new Map<string, DerivedAccount>();
  for (const user of bySpecificity) {
    const own = parseUserHost(user.host);
    // an IPv6 host: no client of the server's IPv4 address is one
    if (own === undefined) continue;
    for (const range of ranges) {
      const both = intersect(own, range);
      if (both === undefined) continue;
      const host = accountHost(both);
      if (!derived.has(host)) derived.set(host, { accountHost: host, host: user.host });
    }
  }
  return [...derived.values()];
}

export function rangesOf(cidrs: readonly string[]): Ipv4Range[] {
  return cidrs.flatMap((cidr) => parseCidr(cidr) ?? []);
}

type Row = RowDataPacket & Record<string, unknown>;

async function rows(connection: Connection, sql: string, values: unknown[] = []): Promise<Row[]> {
  const [result] = await connection.query<Row[]>(sql, values);
  return result;
}

export class AccountRegistry {
  constructor(private readonly flavor: MysqlFamilyFlavor) {}

  async ensureSchema(connection: Connection): Promise<void> {
    for (const statement of registrySchema) await connection.query(statement);
  }

  async setAccessRules(connection: Connection, cidrs: readonly string[]): Promise<void> {
    rangesOf(cidrs); // BadRequest before anything changes
    await connection.beginTransaction();
    try {
      await connection.query(`DELETE FROM ${accessRules}`);
      for (const cidr of new Set(cidrs.map((c) => c.trim()))) await connection.query(`INSERT INTO ${accessRules} (cidr) VALUES (?)`, [cidr]);
      await connection.commit();
    } catch (err) {
      await connection.rollback().catch(() => undefined);
      throw err;
    }
  }

  async ranges(connection: Connection): Promise<Ipv4Range[]> {
    return rangesOf((await rows(connection, `SELECT cidr FROM ${accessRules}`)).map((row) => String(row.cidr)));
  }

  async users(connection: Connection, name?: string): Promise<TenantUser[]> {
    const found = await rows(
      connection,
      `SELECT name, host, superuser, password_hash FROM ${tenantUsers}${name === undefined ? '' : ' WHERE name = ?'} ORDER BY name, host`,
      name === undefined ? [] : [name],
    );
    return found.map((row) => ({
      name: String(row.name),
      host: String(row.host),
      superuser: Boolean(row.superuser),
      passwordHash: String(row.password_hash),
    }));
  }

  async user(connection: Connection, name: string, host: string): Promise<TenantUser | undefined> {
    return (await this.users(connection, name)).find((user) => user.host === host);
  }

  async grants(connection: Connection, name?: string): Promise<{ name: string; host: string; db: string }[]> {
    const found = await rows(
      connection,
      `SELECT name, host, db FROM ${tenantGrants}${name === undefined ? '' : ' WHERE name = ?'} ORDER BY db`,
      name === undefined ? [] : [name],
    );
    return found.map((row) => ({ name: String(row.name), host: String(row.host), db: String(row.db) }));
  }

  /** every name that has tenant users or accounts derived from them */
  async names(connection: Connection): Promise<string[]> {
    const found = await rows(connection, `SELECT name FROM ${tenantUsers} UNION SELECT name FROM ${tenantAccounts}`);
    return found.map((row) => String(row.name));
  }

  /**
   * Makes the accounts of `name` what its tenant users and the access rules say: missing ones
   * created, others dropped, each with the tenant's password hash and exactly its grants.
   * Idempotent, so an interrupted run is finished by the next.
   */
  async reconcile(connection: Connection, name: string): Promise<void> {
    const users = await this.users(connection, name);
    const grants = await this.grants(connection, name);
    const wanted = deriveAccounts(users, await this.ranges(connection));
    const existing = await rows(connection, `SELECT account_host, host FROM ${tenantAccounts} WHERE name = ?`, [name]);
    for (const row of existing) {
      const host = String(row.account_host);
      if (wanted.some((account) => account.accountHost === host)) continue;
      await connection.query(dropUserStatement(name, host));
      await connection.query(`DELETE FROM ${tenantAccounts} WHERE name = ? AND account_host = ?`, [name, host]);
    }
    for (const account of wanted) {
      const user = users.find((candidate) => candidate.host === account.host)!;
      const identified = this.flavor.identifiedClause(user.passwordHash);
      const known = existing.find((row) => String(row.account_host) === account.accountHost);
      if (known === undefined) {
        // a leftover of an interrupted run, or of another owner: it takes the tenant's settings
        await connection.query(dropUserStatement(name, account.accountHost));
        await connection.query(createUserStatement(name, account.accountHost, identified));
        await connection.query(`INSERT INTO ${tenantAccounts} (name, account_host, host) VALUES (?, ?, ?)`, [
          name,
          account.accountHost,
          account.host,
        ]);
      } else {
        await connection.query(alterUserPasswordStatement(name, account.accountHost, identified));
        if (String(known.host) !== account.host) {
          await connection.query(`UPDATE ${tenantAccounts} SET host = ? WHERE name = ? AND account_host = ?`, [
            account.host,
            name,
            account.accountHost,
          ]);
        }
      }
      await connection.query(revokeAllStatement(name, account.accountHost));
      if (user.superuser) await connection.query(grantSuperuserStatement(name, account.accountHost));
      for (const grant of grants) {
        if (grant.host === account.host) await connection.query(grantDatabaseStatement(name, account.accountHost, grant.db));
      }
    }
  }

  async reconcileAll(connection: Connection): Promise<void> {
    for (const name of await this.names(connection)) await this.reconcile(connection, name);
  }

  /**
   * What install scripts leave and a tenant must never find: anonymous accounts (they shadow
   * real users connecting from 127.x), and root accounts other than the ones root enable made.
   */
  async lockDown(connection: Connection): Promise<void> {
    const managed = new Set(
      (await rows(connection, `SELECT account_host FROM ${tenantAccounts} WHERE name = ?`, [rootUser])).map((row) =>
        String(row.account_host),
      ),
    );
    const accounts = await rows(connection, "SELECT User AS user, Host AS host FROM mysql.user WHERE User IN ('', 'root')");
    for (const row of accounts) {
      const user = String(row.user);
      const host = String(row.host);
      if (user === rootUser && managed.has(host)) continue;
      await connection.query(`DROP USER ${escape(user)}@${escape(host)}`);
    }
  }
}
