import type { Client } from 'pg';
import type { UserChanges, UserInfo, UserRef, UserSpec } from '../../../bus/index.js';
import { CofferError } from '../../../common/index.js';
import type { UserAccessAdmin, UserAdmin } from '../engine.js';
import type { UsersModule } from '../engine-modules.js';
import {
  alterRolePasswordStatement,
  checkName,
  createRoleStatement,
  dropOwnedStatement,
  dropRoleStatement,
  exists,
  grantDatabaseStatement,
  grantPublicSchemaStatement,
  passwordSql,
  reassignOwnedStatement,
  renameRoleStatement,
  reservedDatabases,
  reservedRoles,
  revokeDatabaseStatement,
  revokePublicSchemaStatement,
  withAdminClient,
  type AdminEndpoint,
  type AdminEndpointSource,
} from './admin.js';
import { pgErrorCode, sqlStates } from './sql-states.js';

// The users module: the tenant's users, roles with LOGIN. PostgreSQL roles have no host, so
// every user's host is `%` and asking for another is a BadRequest rather than a silently ignored
// setting (client addresses are limited by pg_hba.conf instead: the lifecycle's access rules). A
// user's databases are those it was granted CONNECT on by name (PUBLIC's grant does not count:
// the guest revokes it from every tenant database).

export const postgresqlUsers: UsersModule<AdminEndpointSource> = {
  userHosts: false,
  userAccess: true,
  create: (lifecycle) => new PostgresqlUserAdmin(() => lifecycle.endpoint()),
};

const anyHost = '%';

function checkHost(host: string | undefined): void {
  if (host !== undefined && host !== anyHost) {
    throw new CofferError(
      'BadRequest',
      `PostgreSQL users have no host: "${host}" cannot be set (client addresses are limited by the instance's allowed CIDRs).`,
    );
  }
}

function notFound(user: UserRef): CofferError {
  return new CofferError('UserNotFound', `User "${user.name}"@"${user.host}" not found.`);
}

function alreadyExists(name: string): CofferError {
  return new CofferError('UserAlreadyExists', `A user "${name}" already exists.`);
}

async function roleExists(client: Client, name: string): Promise<boolean> {
  return exists(client, 'SELECT 1 FROM pg_roles WHERE rolname = $1', name);
}

/** Sessions of a user being removed or locked out end now, not when they next reconnect. */
export async function terminateSessions(client: Client, role: string): Promise<void> {
  await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()', [
    role,
  ]);
}

async function inTransaction<T>(client: Client, work: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await work();
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

export class PostgresqlUserAdmin implements UserAdmin {
  readonly access: UserAccessAdmin;

  constructor(private readonly endpoint: () => Promise<AdminEndpoint>) {
    this.access = {
      grant: (user, databases) => this.grant(user, databases),
      revoke: (user, database) => this.revoke(user, database),
    };
  }

  private async admin<T>(work: (client: Client) => Promise<T>, database = 'postgres'): Promise<T> {
    return withAdminClient(await this.endpoint(), database, work);
  }

  /** The role of `user`, which must be a tenant's: the reserved ones are not found either. */
  private async existing(client: Client, user: UserRef): Promise<void> {
    checkName('user', user.name, reservedRoles);
    if (user.host !== anyHost || !(await roleExists(client, user.name))) throw notFound(user);
  }

  list(): Promise<UserInfo[]> {
    return this.admin(async (client) => {
      const result = await client.query<{ name: string; databases: string[] }>(
        `SELECT r.rolname AS name,
                COALESCE(ARRAY(
                  SELECT d.datname::text FROM pg_database d, aclexplode(d.datacl) a
                   WHERE a.grantee = r.oid AND a.privilege_type = 'CONNECT'
                     AND NOT d.datistemplate AND NOT (d.datname = ANY($2))
                   ORDER BY d.datname), '{}'::text[]) AS databases
           FROM pg_roles r
          WHERE r.rolcanlogin AND NOT r.rolreplication AND NOT (r.rolname = ANY($1)) AND left(r.rolname, 3) <> 'pg_'
          ORDER BY r.rolname`,
        [[...reservedRoles], [...reservedDatabases]],
      );
      return result.rows.map((row) => ({ name: row.name, host: anyHost, databases: row.databases.map((name) => ({ name })) }));
    });
  }

  async create(users: UserSpec[]): Promise<void> {
    for (const user of users) {
      checkName('user', user.name, reservedRoles);
      checkHost(user.host);
      for (const database of user.databases) checkName('database', database.name, reservedDatabases);
    }
    const names = users.map((user) => user.name);
    const repeated = names.find((name, index) => names.indexOf(name) !== index);
    if (repeated !== undefined) throw new CofferError('BadRequest', `The user "${repeated}" is named twice.`);
    const secrets = await Promise.all(users.map((user) => passwordSql(user.password)));
    // roles and database grants commit together; the schema grants need a session in each database
    await this.admin((client) =>
      inTransaction(client, async () => {
        const taken = await client.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname = ANY($1)', [names]);
        if (taken.rows.length > 0) throw alreadyExists(taken.rows[0]!.rolname);
        for (const [index, user] of users.entries()) {
          await client.query(createRoleStatement(user.name, secrets[index]!)).catch((err: unknown) => {
            throw pgErrorCode(err) === sqlStates.duplicateObject ? alreadyExists(user.name) : err;
          });
          for (const database of user.databases) await this.grantDatabase(client, user.name, database.name);
        }
      }),
    );
    try {
      const byDatabase = new Map<string, string[]>();
      for (const user of users) {
        for (const { name } of user.databases) byDatabase.set(name, [...(byDatabase.get(name) ?? []), user.name]);
      }
      for (const [database, members] of byDatabase) {
        await this.admin(async (client) => {
          for (const member of members) await client.query(grantPublicSchemaStatement(member));
        }, database);
      }
    } catch (err) {
      for (const user of users) await this.delete({ name: user.name, host: anyHost }).catch(() => undefined);
      throw err;
    }
  }

  private async grantDatabase(client: Client, user: string, database: string): Promise<void> {
    await client.query(grantDatabaseStatement(user, database)).catch((err: unknown) => {
      if (pgErrorCode(err) === sqlStates.invalidCatalogName) {
        throw new CofferError('DatabaseNotFound', `Database "${database}" not found.`);
      }
      throw err;
    });
  }

  async delete(user: UserRef): Promise<void> {
    // the databases where the role owns objects or holds privileges; 0 is the shared catalogs
    const databases = await this.admin(async (client) => {
      await this.existing(client, user);
      const result = await client.query<{ datname: string }>(
        `SELECT DISTINCT d.datname FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid
          WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = $1)
            AND d.datallowconn`,
        [user.name],
      );
      return result.rows.map((row) => row.datname);
    });
    for (const database of databases.filter((name) => name !== 'postgres')) {
      await this.admin(async (client) => {
        await client.query(reassignOwnedStatement(user.name));
        await client.query(dropOwnedStatement(user.name));
      }, database);
    }
    await this.admin(async (client) => {
      await client.query(reassignOwnedStatement(user.name));
      await client.query(dropOwnedStatement(user.name));
      await terminateSessions(client, user.name);
      await client.query(dropRoleStatement(user.name));
    });
  }

  async update(user: UserRef, changes: UserChanges): Promise<void> {
    checkHost(changes.host);
    if (changes.name !== undefined) checkName('user', changes.name, reservedRoles);
    const secret = changes.password === undefined ? undefined : await passwordSql(changes.password);
    await this.admin((client) =>
      inTransaction(client, async () => {
        await this.existing(client, user);
        let name = user.name;
        if (changes.name !== undefined && changes.name !== user.name) {
          if (await roleExists(client, changes.name)) throw alreadyExists(changes.name);
          await client.query(renameRoleStatement(user.name, changes.name)).catch((err: unknown) => {
            throw pgErrorCode(err) === sqlStates.duplicateObject ? alreadyExists(changes.name!) : err;
          });
          name = changes.name;
        }
        if (secret !== undefined) await client.query(alterRolePasswordStatement(name, secret));
      }),
    );
  }

  private async grant(user: UserRef, databases: string[]): Promise<void> {
    for (const database of databases) checkName('database', database, reservedDatabases);
    await this.admin((client) =>
      inTransaction(client, async () => {
        await this.existing(client, user);
        for (const database of databases) await this.grantDatabase(client, user.name, database);
      }),
    );
    for (const database of databases) {
      await this.admin((client) => client.query(grantPublicSchemaStatement(user.name)), database);
    }
  }

  private async revoke(user: UserRef, database: string): Promise<void> {
    checkName('database', database, reservedDatabases);
    await this.admin(async (client) => {
      await this.existing(client, user);
      const granted = await client.query(
        `SELECT 1 FROM pg_database d, aclexplode(d.datacl) a
          WHERE d.datname = $1 AND a.privilege_type = 'CONNECT'
            AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $2)`,
        [database, user.name],
      );
      if ((granted.rowCount ?? 0) === 0) {
        throw new CofferError('DatabaseNotFound', `User "${user.name}" has no access to database "${database}".`);
      }
      await client.query(revokeDatabaseStatement(user.name, database));
      await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND datname = $2', [
        user.name,
        database,
      ]);
    });
    // what the user was given in the database goes too; what it created stays its own
    await this.admin((client) => client.query(revokePublicSchemaStatement(user.name)), database);
  }
}
