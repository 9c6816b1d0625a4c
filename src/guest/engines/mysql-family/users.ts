import type { Connection, ResultSetHeader } from 'mysql2/promise';
import type { UserChanges, UserInfo, UserRef } from '../../../bus/index.js';
import { CofferError } from '../../../common/index.js';
import type { UserAccessAdmin, UserAdmin } from '../engine.js';
import type { UsersModule } from '../engine-modules.js';
import { tenantGrants, tenantUsers } from './account-registry.js';
import type { MysqlFamilyAdmin } from './admin.js';
import { checkDatabaseName, parseUserHost } from './sql.js';

// The users module: tenant accounts `name@host`, each a row of the guest's registry from which
// the server's accounts are derived again after every change (account-registry.ts), with the
// databases each may use.

export const mysqlFamilyUsers: UsersModule<{ readonly admin: MysqlFamilyAdmin }> = {
  userHosts: true,
  userAccess: true,
  create: (lifecycle) => userAdmin(lifecycle.admin),
};

/** UserNotFound unless a tenant user (not root) is `user` */
async function tenantUser(admin: MysqlFamilyAdmin, connection: Connection, user: UserRef) {
  const found = await admin.registry.user(connection, user.name, user.host);
  if (found === undefined || found.superuser) {
    throw new CofferError('UserNotFound', `User ${user.name}@${user.host} does not exist.`);
  }
  return found;
}

/** UserAlreadyExists when `name` has a user at `host`, or at a host pattern admitting the same addresses */
async function checkUserFree(admin: MysqlFamilyAdmin, connection: Connection, name: string, host: string, except?: string): Promise<void> {
  const range = parseUserHost(host);
  const taken = (await admin.registry.users(connection, name)).find((user) => {
    if (user.host === except) return false;
    const other = parseUserHost(user.host);
    const same = other !== undefined && range !== undefined && other.prefix === range.prefix && other.network === range.network;
    return user.host === host || same;
  });
  if (taken !== undefined) throw new CofferError('UserAlreadyExists', `User ${name}@${taken.host} already exists.`);
}

function userAdmin(admin: MysqlFamilyAdmin): UserAdmin & { readonly access: UserAccessAdmin } {
  return {
    list: () =>
      admin.run(async (connection) => {
        const grants = await admin.registry.grants(connection);
        const users = (await admin.registry.users(connection)).filter((user) => !user.superuser);
        return users.map(
          (user): UserInfo => ({
            name: user.name,
            host: user.host,
            databases: grants.filter((g) => g.name === user.name && g.host === user.host).map((g) => ({ name: g.db })),
          }),
        );
      }),
    create: (users) =>
      admin.run(async (connection) => {
        admin.checkUsers(users);
        for (const [index, user] of users.entries()) {
          await checkUserFree(admin, connection, user.name, user.host ?? '%');
          const clash = users.findIndex((other) => other.name === user.name && (other.host ?? '%') === (user.host ?? '%'));
          if (clash !== index) throw new CofferError('UserAlreadyExists', `User ${user.name}@${user.host ?? '%'} is given twice.`);
        }
        await admin.recordUsers(connection, users);
        for (const name of new Set(users.map((user) => user.name))) await admin.registry.reconcile(connection, name);
      }),
    delete: (user) =>
      admin.run(async (connection) => {
        await tenantUser(admin, connection, user);
        await connection.query(`DELETE FROM ${tenantUsers} WHERE name = ? AND host = ?`, [user.name, user.host]);
        await connection.query(`DELETE FROM ${tenantGrants} WHERE name = ? AND host = ?`, [user.name, user.host]);
        await admin.registry.reconcile(connection, user.name);
      }),
    update: (user, changes: UserChanges) =>
      admin.run(async (connection) => {
        const current = await tenantUser(admin, connection, user);
        const name = changes.name ?? current.name;
        const host = admin.checkUser({ name, host: changes.host ?? current.host });
        if (name !== current.name || host !== current.host) {
          await checkUserFree(admin, connection, name, host, name === current.name ? current.host : undefined);
        }
        const hash = changes.password === undefined ? current.passwordHash : admin.flavor.hashPassword(changes.password);
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
        await admin.registry.reconcile(connection, current.name);
        if (name !== current.name) await admin.registry.reconcile(connection, name);
      }),
    access: {
      grant: (user, databases) =>
        admin.run(async (connection) => {
          await tenantUser(admin, connection, user);
          for (const database of databases) checkDatabaseName(database);
          await admin.checkDatabasesExist(connection, databases);
          for (const database of databases) {
            await connection.query(`INSERT IGNORE INTO ${tenantGrants} (name, host, db) VALUES (?, ?, ?)`, [
              user.name,
              user.host,
              database,
            ]);
          }
          await admin.registry.reconcile(connection, user.name);
        }),
      revoke: (user, database) =>
        admin.run(async (connection) => {
          await tenantUser(admin, connection, user);
          const [result] = await connection.query<ResultSetHeader>(
            `DELETE FROM ${tenantGrants} WHERE name = ? AND host = ? AND db = ?`,
            [user.name, user.host, database],
          );
          if (result.affectedRows === 0) {
            throw new CofferError('DatabaseNotFound', `User ${user.name}@${user.host} has no access to database ${database}.`);
          }
          await admin.registry.reconcile(connection, user.name);
        }),
    },
  };
}
