import type { Connection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { DatabaseSpec, UserChanges, UserInfo, UserRef, UserSpec } from '../../../bus/index.js';
import { CofferError } from '../../../common/index.js';
import type { DatabaseAdmin, RootAdmin, UserAdmin } from '../engine.js';
import { AccountRegistry, tenantGrants, tenantUsers } from './account-registry.js';
import { withAdminConnection, type AdminEndpoint } from './connection.js';
import type { MysqlFamilyFlavor } from './flavor.js';
import {
  checkDatabaseName,
  checkUserName,
  createDatabaseStatement,
  dropDatabaseStatement,
  parseUserHost,
  rootUser,
  systemDatabases,
} from './sql.js';

// Databases, users and root of one instance, over the admin socket. Calls run one at a time:
// each reads the registry, changes it and re-derives accounts, which must not interleave.

type Row = RowDataPacket & Record<string, unknown>;

// the server's answers to a bad character set or collation, which are the tenant's mistakes
const badCharsetErrors = new Set(['ER_UNKNOWN_CHARACTER_SET', 'ER_UNKNOWN_COLLATION', 'ER_COLLATION_CHARSET_MISMATCH']);

function asBadRequest(err: unknown): unknown {
  const code = (err as { code?: string }).code;
  if (code !== undefined && badCharsetErrors.has(code)) {
    return new CofferError('BadRequest', (err as Error).message, { cause: err });
  }
  return err;
}

export class MysqlFamilyAdmin {
  readonly registry: AccountRegistry;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly flavor: MysqlFamilyFlavor,
    private readonly endpoint: () => Promise<AdminEndpoint>,
  ) {
    this.registry = new AccountRegistry(flavor);
  }

  /** runs `work` on an admin connection after every call before it has finished */
  run<T>(work: (connection: Connection) => Promise<T>): Promise<T> {
    const next = this.tail.then(async () => withAdminConnection(await this.endpoint(), work));
    this.tail = next.catch(() => undefined);
    return next;
  }

  checkUser(user: Pick<UserSpec, 'name' | 'host'>): string {
    checkUserName(user.name, this.flavor.maxUserNameLength, (name) => this.flavor.isSystemAccount(name));
    const host = user.host ?? '%';
    parseUserHost(host);
    return host;
  }

  checkUsers(users: readonly UserSpec[]): void {
    for (const user of users) {
      this.checkUser(user);
      for (const database of user.databases) checkDatabaseName(database.name);
    }
  }

  async databaseNames(connection: Connection): Promise<Set<string>> {
    const [found] = await connection.query<Row[]>('SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA');
    return new Set(found.map((row) => String(row.name)));
  }

  /** Creates what is missing; existing databases are kept as they are. */
  async ensureDatabases(connection: Connection, databases: readonly DatabaseSpec[]): Promise<void> {
    for (const database of databases) checkDatabaseName(database.name);
    for (const database of databases) {
      await connection.query(createDatabaseStatement(database, true)).catch((err: unknown) => {
        throw asBadRequest(err);
      });
    }
  }

  /**
   * Records tenant users as `users` says, creating or updating them (a redelivered prepare
   * converges); their accounts follow with the caller's reconcile.
   */
  async recordUsers(connection: Connection, users: readonly UserSpec[]): Promise<void> {
    this.checkUsers(users);
    await this.checkDatabasesExist(connection, users.flatMap((user) => user.databases.map((d) => d.name)));
    for (const user of users) {
      const host = user.host ?? '%';
      await connection.query(
        `INSERT INTO ${tenantUsers} (name, host, superuser, password_hash) VALUES (?, ?, FALSE, ?) ` +
          'ON DUPLICATE KEY UPDATE password_hash = VALUES(password_hash)',
        [user.name, host, this.flavor.hashPassword(user.password)],
      );
      for (const database of user.databases) {
        await connection.query(`INSERT IGNORE INTO ${tenantGrants} (name, host, db) VALUES (?, ?, ?)`, [user.name, host, database.name]);
      }
    }
  }

  async checkDatabasesExist(connection: Connection, names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    const existing = await this.databaseNames(connection);
    const missing = names.find((name) => !existing.has(name) || systemDatabases.has(name.toLowerCase()));
    if (missing !== undefined) throw new CofferError('DatabaseNotFound', `Database ${missing} does not exist.`);
  }

  /** UserNotFound unless a tenant user (not root) is `user` */
  private async tenantUser(connection: Connection, user: UserRef) {
    const found = await this.registry.user(connection, user.name, user.host);
    if (found === undefined || found.superuser) {
      throw new CofferError('UserNotFound', `User ${user.name}@${user.host} does not exist.`);
    }
    return found;
  }

  /** UserAlreadyExists when `name` has a user at `host`, or at a host pattern admitting the same addresses */
  private async checkUserFree(connection: Connection, name: string, host: string, except?: string): Promise<void> {
    const range = parseUserHost(host);
    const taken = (await this.registry.users(connection, name)).find((user) => {
      if (user.host === except) return false;
      const other = parseUserHost(user.host);
      const same = other !== undefined && range !== undefined && other.prefix === range.prefix && other.network === range.network;
      return user.host === host || same;
    });
    if (taken !== undefined) throw new CofferError('UserAlreadyExists', `User ${name}@${taken.host} already exists.`);
  }

  readonly databases: DatabaseAdmin = {
    list: () =>
      this.run(async (connection) => {
        const [found] = await connection.query<Row[]>(
          'SELECT SCHEMA_NAME AS name, DEFAULT_CHARACTER_SET_NAME AS charset, DEFAULT_COLLATION_NAME AS collation ' +
            'FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME',
        );
        return found
          .filter((row) => !systemDatabases.has(String(row.name).toLowerCase()))
          .map((row) => ({ name: String(row.name), characterSet: String(row.charset), collate: String(row.collation) }));
      }),
    create: (databases) =>
      this.run(async (connection) => {
        for (const database of databases) checkDatabaseName(database.name);
        const existing = await this.databaseNames(connection);
        const names = databases.map((database) => database.name);
        const taken = names.find((name, index) => existing.has(name) || names.indexOf(name) !== index);
        if (taken !== undefined) throw new CofferError('DatabaseAlreadyExists', `Database ${taken} already exists.`);
        const created: string[] = [];
        try {
          for (const database of databases) {
            await connection.query(createDatabaseStatement(database));
            created.push(database.name);
          }
        } catch (err) {
          // all or nothing: what this call created goes again
          for (const name of created) await connection.query(dropDatabaseStatement(name)).catch(() => undefined);
          throw asBadRequest(err);
        }
      }),
    delete: (name) =>
      this.run(async (connection) => {
        checkDatabaseName(name);
        if (!(await this.databaseNames(connection)).has(name)) {
          throw new CofferError('DatabaseNotFound', `Database ${name} does not exist.`);
        }
        await connection.query(dropDatabaseStatement(name));
        // the server keeps grants on a dropped database: a new one of the same name would inherit them
        const [grantees] = await connection.query<Row[]>(`SELECT DISTINCT name FROM ${tenantGrants} WHERE db = ?`, [name]);
        await connection.query(`DELETE FROM ${tenantGrants} WHERE db = ?`, [name]);
        for (const row of grantees) await this.registry.reconcile(connection, String(row.name));
      }),
  };

  readonly users: UserAdmin = {
    list: () =>
      this.run(async (connection) => {
        const grants = await this.registry.grants(connection);
        const users = (await this.registry.users(connection)).filter((user) => !user.superuser);
        return users.map(
          (user): UserInfo => ({
            name: user.name,
            host: user.host,
            databases: grants.filter((g) => g.name === user.name && g.host === user.host).map((g) => ({ name: g.db })),
          }),
        );
      }),
    create: (users) =>
      this.run(async (connection) => {
        this.checkUsers(users);
        for (const [index, user] of users.entries()) {
          await this.checkUserFree(connection, user.name, user.host ?? '%');
          const clash = users.findIndex((other) => other.name === user.name && (other.host ?? '%') === (user.host ?? '%'));
          if (clash !== index) throw new CofferError('UserAlreadyExists', `User ${user.name}@${user.host ?? '%'} is given twice.`);
        }
        await this.recordUsers(connection, users);
        for (const name of new Set(users.map((user) => user.name))) await this.registry.reconcile(connection, name);
      }),
    delete: (user) =>
      this.run(async (connection) => {
        await this.tenantUser(connection, user);
        await connection.query(`DELETE FROM ${tenantUsers} WHERE name = ? AND host = ?`, [user.name, user.host]);
        await connection.query(`DELETE FROM ${tenantGrants} WHERE name = ? AND host = ?`, [user.name, user.host]);
        await this.registry.reconcile(connection, user.name);
      }),
    update: (user, changes: UserChanges) =>
      this.run(async (connection) => {
        const current = await this.tenantUser(connection, user);
        const name = changes.name ?? current.name;
        const host = this.checkUser({ name, host: changes.host ?? current.host });
        if (name !== current.name || host !== current.host) {
          await this.checkUserFree(connection, name, host, name === current.name ? current.host : undefined);
        }
        const hash = changes.password === undefined ? current.passwordHash : this.flavor.hashPassword(changes.password);
        await connection.beginTransaction();
        try {
          await connection.query(`UPDATE ${tenantUsers} SET name = ?, host = ?, password_hash = ? WHERE name = ? AND host = ?`, [
            name,
            host,
            hash,
            current.name,
            current.host,
          ]);
          await connection.query(`UPDATE ${tenantGrants} SET name = ?, host = ? WHERE name = ? AND host = ?`, [
            name,
            host,
            current.name,
            current.host,
          ]);
          await connection.commit();
        } catch (err) {
          await connection.rollback().catch(() => undefined);
          throw err;
        }
        await this.registry.reconcile(connection, current.name);
        if (name !== current.name) await this.registry.reconcile(connection, name);
      }),
    access: {
      grant: (user, databases) =>
        this.run(async (connection) => {
          await this.tenantUser(connection, user);
          for (const database of databases) checkDatabaseName(database);
          await this.checkDatabasesExist(connection, databases);
          for (const database of databases) {
            await connection.query(`INSERT IGNORE INTO ${tenantGrants} (name, host, db) VALUES (?, ?, ?)`, [
              user.name,
              user.host,
              database,
            ]);
          }
          await this.registry.reconcile(connection, user.name);
        }),
      revoke: (user, database) =>
        this.run(async (connection) => {
          await this.tenantUser(connection, user);
          const [result] = await connection.query<ResultSetHeader>(
            `DELETE FROM ${tenantGrants} WHERE name = ? AND host = ? AND db = ?`,
            [user.name, user.host, database],
          );
          if (result.affectedRows === 0) {
            throw new CofferError('DatabaseNotFound', `User ${user.name}@${user.host} has no access to database ${database}.`);
          }
          await this.registry.reconcile(connection, user.name);
        }),
    },
  };

  readonly root: RootAdmin = {
    enable: (password) =>
      this.run(async (connection) => {
        await connection.query(
          `INSERT INTO ${tenantUsers} (name, host, superuser, password_hash) VALUES (?, '%', TRUE, ?) ` +
            'ON DUPLICATE KEY UPDATE superuser = TRUE, password_hash = VALUES(password_hash)',
          [rootUser, this.flavor.hashPassword(password)],
        );
        await this.registry.reconcile(connection, rootUser);
        return rootUser;
      }),
    disable: () =>
      this.run(async (connection) => {
        await connection.query(`DELETE FROM ${tenantUsers} WHERE name = ?`, [rootUser]);
        await this.registry.reconcile(connection, rootUser);
      }),
  };
}
