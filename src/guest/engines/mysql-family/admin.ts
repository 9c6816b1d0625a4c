import type { Connection, RowDataPacket } from 'mysql2/promise';
import type { DatabaseSpec, UserSpec } from '../../../bus/index.js';
import { CofferError } from '../../../common/index.js';
import { AccountRegistry, tenantGrants, tenantUsers } from './account-registry.js';
import { withAdminConnection, type AdminEndpoint } from './connection.js';
import type { MysqlFamilyFlavor } from './flavor.js';
import { checkDatabaseName, checkUserName, createDatabaseStatement, parseUserHost, systemDatabases } from './sql.js';

// The guest's administration of one instance, over the admin socket: what prepare and the
// databases, users, root and configuration modules share. Calls run one at a time: each reads
// the registry, changes it and re-derives accounts, which must not interleave.

type Row = RowDataPacket & Record<string, unknown>;

// the server's answers to a bad character set or collation, which are the tenant's mistakes
const badCharsetErrors = new Set(['ER_UNKNOWN_CHARACTER_SET', 'ER_UNKNOWN_COLLATION', 'ER_COLLATION_CHARSET_MISMATCH']);

export function asBadRequest(err: unknown): unknown {
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
    readonly flavor: MysqlFamilyFlavor,
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
}
