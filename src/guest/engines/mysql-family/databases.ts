import type { RowDataPacket } from 'mysql2/promise';
import { CofferError } from '../../../common/index.js';
import type { DatabaseAdmin } from '../engine.js';
import type { DatabasesModule } from '../engine-modules.js';
import { tenantGrants } from './account-registry.js';
import { asBadRequest, type MysqlFamilyAdmin } from './admin.js';
import { checkDatabaseName, createDatabaseStatement, dropDatabaseStatement, systemDatabases } from './sql.js';

// The databases module: the tenant's databases (schemas), each with its character set and
// collation. A user's access to one is a row of the guest's registry (account-registry.ts),
// which a dropped database's rows leave with it.

type Row = RowDataPacket & Record<string, unknown>;

export const mysqlFamilyDatabases: DatabasesModule<{ readonly admin: MysqlFamilyAdmin }> = {
  characterSets: true,
  create: (lifecycle) => databaseAdmin(lifecycle.admin),
};

function databaseAdmin(admin: MysqlFamilyAdmin): DatabaseAdmin {
  return {
    list: () =>
      admin.run(async (connection) => {
        const [found] = await connection.query<Row[]>(
          'SELECT SCHEMA_NAME AS name, DEFAULT_CHARACTER_SET_NAME AS charset, DEFAULT_COLLATION_NAME AS collation ' +
            'FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME',
        );
        return found
          .filter((row) => !systemDatabases.has(String(row.name).toLowerCase()))
          .map((row) => ({ name: String(row.name), characterSet: String(row.charset), collate: String(row.collation) }));
      }),
    create: (databases) =>
      admin.run(async (connection) => {
        for (const database of databases) checkDatabaseName(database.name);
        const existing = await admin.databaseNames(connection);
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
      admin.run(async (connection) => {
        checkDatabaseName(name);
        if (!(await admin.databaseNames(connection)).has(name)) {
          throw new CofferError('DatabaseNotFound', `Database ${name} does not exist.`);
        }
        await connection.query(dropDatabaseStatement(name));
        // the server keeps grants on a dropped database: a new one of the same name would inherit them
        const [grantees] = await connection.query<Row[]>(`SELECT DISTINCT name FROM ${tenantGrants} WHERE db = ?`, [name]);
        await connection.query(`DELETE FROM ${tenantGrants} WHERE db = ?`, [name]);
        for (const row of grantees) await admin.registry.reconcile(connection, String(row.name));
      }),
  };
}
