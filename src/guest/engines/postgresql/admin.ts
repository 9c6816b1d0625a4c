import { Client, escapeIdentifier, escapeLiteral } from 'pg';
import { activityQuery, parseActivity, type ServerActivity } from './idle-activity.js';
import type { PrepareInput } from '../../../bus/index.js';
import { CofferError } from '../../../common/index.js';
import type { KeptProbeOps } from '../kept-probe.js';
import { scramVerifier } from './scram-verifier.js';

// Databases, users and grants, over the instance's own socket as the administrative role.
// Every statement is built from quoted identifiers and literals (pg's escapeIdentifier and
// escapeLiteral): names and passwords come from API users.

type DatabaseSpec = PrepareInput['databases'][number];
type UserSpec = PrepareInput['users'][number];

/** The superuser initdb creates; the guest's own, never handed to users (Trove's os_admin). */
export const adminRole = 'os_admin';

/** The superuser `root.enable` creates (Trove's root user on PostgreSQL). */
export const rootRole = 'root';

// Trove's ignore_users / ignore_dbs for PostgreSQL, plus the templates.
export const reservedRoles: ReadonlySet<string> = new Set([adminRole, rootRole, 'postgres']);
export const reservedDatabases: ReadonlySet<string> = new Set([adminRole, 'postgres', 'template0', 'template1']);

/** PostgreSQL silently truncates longer names to 63 bytes, which would create a different name. */
export function checkName(kind: 'database' | 'user', name: string, reserved: ReadonlySet<string>): void {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0 || bytes > 63 || name.includes('\0')) {
    throw new CofferError('BadRequest', `Invalid ${kind} name "${name}": 1 to 63 bytes, no NUL character.`);
  }
  // os_repl_: each replica's replication role on its primary (replication.ts)
  if (reserved.has(name) || name.startsWith('pg_') || (kind === 'user' && name.startsWith('os_repl_'))) {
    throw new CofferError('BadRequest', `The ${kind} name "${name}" is reserved.`);
  }
}

export function checkPrepareNames(input: Pick<PrepareInput, 'databases' | 'users'>): void {
  for (const database of input.databases) checkName('database', database.name, reservedDatabases);
  for (const user of input.users) {
    checkName('user', user.name, reservedRoles);
    for (const database of user.databases) checkName('database', database.name, reservedDatabases);
  }
}

export function createDatabaseStatement(database: DatabaseSpec): string {
  const parts = [`CREATE DATABASE ${escapeIdentifier(database.name)}`];
  if (database.characterSet !== undefined) parts.push(`ENCODING ${escapeLiteral(database.characterSet)}`);
  if (database.collate !== undefined) {
    parts.push(`LC_COLLATE ${escapeLiteral(database.collate)} LC_CTYPE ${escapeLiteral(database.collate)}`);
  }
  // template1's encoding and locale are fixed; only the pristine template0 can take others
  if (parts.length > 1) parts.push('TEMPLATE template0');
  return parts.join(' ');
}

/** `passwordSql` is a verifier or the password itself, quoted here. */
export function createRoleStatement(name: string, passwordSql: string): string {
  return `CREATE ROLE ${escapeIdentifier(name)} WITH LOGIN PASSWORD ${escapeLiteral(passwordSql)}`;
}

export function alterRolePasswordStatement(name: string, passwordSql: string): string {
  return `ALTER ROLE ${escapeIdentifier(name)} WITH LOGIN PASSWORD ${escapeLiteral(passwordSql)}`;
}

export function grantDatabaseStatement(user: string, database: string): string {
  return `GRANT ALL PRIVILEGES ON DATABASE ${escapeIdentifier(database)} TO ${escapeIdentifier(user)}`;
}

/** Since PostgreSQL 15 only the database owner may create in `public`: users get it granted. */
export function grantPublicSchemaStatement(user: string): string {
  return `GRANT ALL ON SCHEMA public TO ${escapeIdentifier(user)}`;
}

/** Without this every role may connect to every database, and a user's database list means nothing. */
export function revokePublicConnectStatement(database: string): string {
  return `REVOKE CONNECT, TEMPORARY ON DATABASE ${escapeIdentifier(database)} FROM PUBLIC`;
}

/**
 * WITH (FORCE) (PostgreSQL 13 and later): the tenant's open sessions would otherwise keep the
 * database from being dropped. Older servers have their sessions ended first, by the caller.
 */
export function dropDatabaseStatement(database: string, force = true): string {
  return `DROP DATABASE ${escapeIdentifier(database)}${force ? ' WITH (FORCE)' : ''}`;
}

export function revokeDatabaseStatement(user: string, database: string): string {
  return `REVOKE ALL PRIVILEGES ON DATABASE ${escapeIdentifier(database)} FROM ${escapeIdentifier(user)}`;
}

export function revokePublicSchemaStatement(user: string): string {
  return `REVOKE ALL ON SCHEMA public FROM ${escapeIdentifier(user)}`;
}

export function renameRoleStatement(from: string, to: string): string {
  return `ALTER ROLE ${escapeIdentifier(from)} RENAME TO ${escapeIdentifier(to)}`;
}

/** A deleted user's tables stay, given to the administrative role (as MySQL keeps them on DROP USER). */
export function reassignOwnedStatement(user: string): string {
  return `REASSIGN OWNED BY ${escapeIdentifier(user)} TO ${escapeIdentifier(adminRole)}`;
}

/** After REASSIGN OWNED only the user's privileges are left for this to remove. */
export function dropOwnedStatement(user: string): string {
  return `DROP OWNED BY ${escapeIdentifier(user)}`;
}

export function dropRoleStatement(user: string): string {
  return `DROP ROLE ${escapeIdentifier(user)}`;
}

export function enableRootStatement(exists: boolean, passwordSql: string): string {
  const verb = exists ? 'ALTER' : 'CREATE';
  return `${verb} ROLE ${escapeIdentifier(rootRole)} WITH SUPERUSER LOGIN PASSWORD ${escapeLiteral(passwordSql)}`;
}

export function disableRootStatement(passwordSql: string): string {
  return `ALTER ROLE ${escapeIdentifier(rootRole)} WITH NOLOGIN PASSWORD ${escapeLiteral(passwordSql)}`;
}

export interface AdminEndpoint {
  socketDir: string;
  port: number;
  password: string;
}

/** What the databases, users and root modules need of the instance's lifecycle. */
export interface AdminEndpointSource {
  /** the instance's administrative endpoint (its password read once from the instance directory) */
  endpoint(): Promise<AdminEndpoint>;
}

/**
 * The guest's own sessions run without the limits and statement logging a configuration group
 * may set for everyone: a tenant's 1 ms statement_timeout must not cancel CREATE DATABASE, and
 * log_statement = 'all' must not write the ALTER ROLE ... PASSWORD the guest sends into the log
 * (which the tenant may read). Parameters that exist since PostgreSQL 9.6, the oldest served.
 */
export const adminSessionOptions = [
  'statement_timeout=0',
  'lock_timeout=0',
  'idle_in_transaction_session_timeout=0',
  'log_statement=none',
  'log_min_duration_statement=-1',
  // an error would otherwise write the statement that failed (an ALTER ROLE ... PASSWORD) into the log
  'log_min_error_statement=panic',
]
  .map((setting) => `-c ${setting}`)
  .join(' ');

export async function openAdminClient(endpoint: AdminEndpoint, database: string, timeoutMs = 10_000): Promise<Client> {
  const client = new Client({
    host: endpoint.socketDir,
    port: endpoint.port,
    user: adminRole,
    password: endpoint.password,
    database,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs * 6,
    application_name: 'coffer-guest',
    options: adminSessionOptions,
  });
  // a server that dies under an open connection emits 'error'; unhandled, it would kill the agent
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
  return client;
}

export async function withAdminClient<T>(
  endpoint: AdminEndpoint,
  database: string,
  work: (client: Client) => Promise<T>,
  timeoutMs = 10_000,
): Promise<T> {
  const client = await openAdminClient(endpoint, database, timeoutMs);
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function exists(client: Client, sql: string, value: string): Promise<boolean> {
  const result = await client.query(sql, [value]);
  return (result.rowCount ?? 0) > 0;
}

/** What `PASSWORD` is given: the SCRAM verifier, or the password itself for the server to hash. */
export async function passwordSql(password: string): Promise<string> {
  // a NUL ends a string literal in PostgreSQL: refused rather than cut short
  if (password.includes('\0')) throw new CofferError('BadRequest', 'A password cannot contain a NUL character.');
  return (await scramVerifier(password)) ?? password;
}

/**
 * Creates what is missing and resets passwords of what exists, so that a redelivered prepare
 * converges on the same state.
 */
export async function ensureDatabasesAndUsers(
  endpoint: AdminEndpoint,
  input: Pick<PrepareInput, 'databases' | 'users'>,
): Promise<void> {
  checkPrepareNames(input);
  const verifiers = await Promise.all(input.users.map((user: UserSpec) => passwordSql(user.password)));
  const usersByDatabase = new Map<string, string[]>();
  await withAdminClient(endpoint, 'postgres', async (client) => {
    for (const database of input.databases) {
      if (!(await exists(client, 'SELECT 1 FROM pg_database WHERE datname = $1', database.name))) {
        await client.query(createDatabaseStatement(database));
      }
      // also for a database found: a prepare interrupted between the two statements left it open
      await client.query(revokePublicConnectStatement(database.name));
    }
    for (const [index, user] of input.users.entries()) {
      const secret = verifiers[index]!;
      const known = await exists(client, 'SELECT 1 FROM pg_roles WHERE rolname = $1', user.name);
      await client.query(known ? alterRolePasswordStatement(user.name, secret) : createRoleStatement(user.name, secret));
      for (const { name } of user.databases) {
        await client.query(grantDatabaseStatement(user.name, name));
        usersByDatabase.set(name, [...(usersByDatabase.get(name) ?? []), user.name]);
      }
    }
  });
  for (const [database, users] of usersByDatabase) {
    await withAdminClient(endpoint, database, async (client) => {
      for (const user of users) await client.query(grantPublicSchemaStatement(user));
    });
  }
}

/** Gives the administrative role `password`, logging in with the one it has (`current.password`). */
export async function rotateAdminPassword(current: AdminEndpoint, password: string): Promise<void> {
  const secret = await passwordSql(password);
  await withAdminClient(current, 'postgres', async (client) => {
    await client.query(alterRolePasswordStatement(adminRole, secret));
  });
}

/** How long a closing session may take to say goodbye before its socket is cut (a hung server never answers). */
const closeGraceMs = 1_000;

/**
 * The health check's session, kept between checks (kept-probe.ts): one query as the
 * administrative role, which also reads whether others use the server (idle-activity.ts), handed
 * to `observe` (undefined when the check failed). A configuration group's idle_session_timeout
 * (PostgreSQL 14 and later) would end it between checks, so the session turns it off for itself
 * where the server has it.
 */
export function healthProbeOps(endpoint: () => Promise<AdminEndpoint>, observe: (activity: ServerActivity | undefined) => void = () => {}): KeptProbeOps<Client> {
  return {
    open: async (timeoutMs) => {
      const client = await openAdminClient(await endpoint(), 'postgres', timeoutMs);
      try {
        await client.query(
          "SELECT set_config('idle_session_timeout', '0', false) WHERE current_setting('idle_session_timeout', true) IS NOT NULL",
        );
      } catch (err) {
        await client.end().catch(() => undefined);
        throw err;
      }
      return client;
    },
    ask: async (client) => {
      const result = await client.query<Parameters<typeof parseActivity>[0]>(activityQuery).catch((err: unknown) => {
        observe(undefined);
        throw err;
      });
      const row = result.rows[0];
      observe(row === undefined ? undefined : parseActivity(row));
      return row !== undefined;
    },
    close: (client) => {
      const stream = (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream;
      const cut = setTimeout(() => stream.destroy(), closeGraceMs);
      cut.unref();
      client.end().then(
        () => clearTimeout(cut),
        () => undefined,
      );
    },
  };
}

const reloadPollMs = 20;

/**
 * Makes the server read its configuration files again (pg_hba.conf among them) and resolves once
 * a new session runs with what was read: a signal alone returns before the postmaster has acted,
 * and a client let in or refused right after would still meet the old rules.
 */
export async function reloadConfiguration(endpoint: AdminEndpoint, timeoutMs = 30_000): Promise<void> {
  const loadedAt = await withAdminClient(endpoint, 'postgres', async (client) => {
    const result = await client.query<{ loaded: string }>('SELECT pg_conf_load_time()::text AS loaded');
    await client.query('SELECT pg_reload_conf()');
    return result.rows[0]!.loaded;
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // a backend inherits the postmaster's load time when it is forked, so only a new session tells
    const reloaded = await withAdminClient(endpoint, 'postgres', async (client) => {
      const result = await client.query<{ reloaded: boolean }>('SELECT pg_conf_load_time() > $1::timestamptz AS reloaded', [loadedAt]);
      return result.rows[0]!.reloaded;
    });
    if (reloaded) return;
    if (Date.now() > deadline) throw new CofferError('EngineError', `PostgreSQL did not reload its configuration within ${timeoutMs} ms.`);
    await new Promise((resolve) => setTimeout(resolve, reloadPollMs));
  }
}
