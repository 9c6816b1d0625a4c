import type { Client } from 'pg';
import type { DatabaseSpec } from '../../../bus/index.js';
import { CofferError } from '../../../common/index.js';
import type { DatabaseAdmin } from '../engine.js';
import type { DatabasesModule } from '../engine-modules.js';
import {
  checkName,
  createDatabaseStatement,
  dropDatabaseStatement,
  reservedDatabases,
  revokePublicConnectStatement,
  withAdminClient,
  type AdminEndpoint,
  type AdminEndpointSource,
} from './admin.js';
import { pgErrorCode, sqlStates } from './sql-states.js';

// The databases module: the tenant's databases, each with its encoding and collation. CREATE
// DATABASE cannot run inside a transaction, so a batch is all or nothing by checking first and
// dropping what this call created when a later one fails.

export const postgresqlDatabases: DatabasesModule<AdminEndpointSource> = {
  characterSets: true,
  create: (lifecycle) => new PostgresqlDatabaseAdmin(() => lifecycle.endpoint()),
};

export class PostgresqlDatabaseAdmin implements DatabaseAdmin {
  constructor(private readonly endpoint: () => Promise<AdminEndpoint>) {}

  private async admin<T>(work: (client: Client) => Promise<T>): Promise<T> {
    return withAdminClient(await this.endpoint(), 'postgres', work);
  }

  list(): Promise<DatabaseSpec[]> {
    return this.admin(async (client) => {
      const result = await client.query<{ name: string; encoding: string; collate: string }>(
        `SELECT datname AS name, pg_encoding_to_char(encoding) AS encoding, datcollate AS collate
           FROM pg_database WHERE NOT datistemplate AND NOT (datname = ANY($1)) ORDER BY datname`,
        [[...reservedDatabases]],
      );
      return result.rows.map((row) => ({ name: row.name, characterSet: row.encoding, collate: row.collate }));
    });
  }

  async create(databases: DatabaseSpec[]): Promise<void> {
    for (const database of databases) checkName('database', database.name, reservedDatabases);
    const names = databases.map((database) => database.name);
    const repeated = names.find((name, index) => names.indexOf(name) !== index);
    if (repeated !== undefined) throw new CofferError('BadRequest', `The database "${repeated}" is named twice.`);
    await this.admin(async (client) => {
      const taken = await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname = ANY($1)', [names]);
      if (taken.rows.length > 0) throw alreadyExists(taken.rows[0]!.datname);
      const created: string[] = [];
      try {
        for (const database of databases) {
          await client.query(createDatabaseStatement(database)).catch((err: unknown) => {
            throw translateCreateError(err, database);
          });
          created.push(database.name);
          await client.query(revokePublicConnectStatement(database.name));
        }
      } catch (err) {
        for (const name of created) await drop(client, name).catch(() => undefined);
        throw err;
      }
    });
  }

  async delete(name: string): Promise<void> {
    checkName('database', name, reservedDatabases);
    await this.admin(async (client) => {
      await drop(client, name).catch((err: unknown) => {
        if (pgErrorCode(err) === sqlStates.invalidCatalogName) {
          throw new CofferError('DatabaseNotFound', `Database "${name}" not found.`);
        }
        throw err;
      });
    });
  }
}

async function drop(client: Client, name: string): Promise<void> {
  const version = await client.query<{ version: string }>("SELECT current_setting('server_version_num') AS version");
  const force = Number(version.rows[0]!.version) >= 130_000;
  if (!force) await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name]);
  await client.query(dropDatabaseStatement(name, force));
}

function alreadyExists(name: string): CofferError {
  return new CofferError('DatabaseAlreadyExists', `A database "${name}" already exists.`);
}

/** An unknown encoding or locale is the request's fault, a name taken meanwhile a conflict. */
function translateCreateError(err: unknown, database: DatabaseSpec): unknown {
  const code = pgErrorCode(err);
  if (code === sqlStates.duplicateDatabase) return alreadyExists(database.name);
  if (code === sqlStates.undefinedObject || code === sqlStates.invalidParameterValue || code === sqlStates.featureNotSupported) {
    return new CofferError('BadRequest', `Cannot create database "${database.name}": ${(err as Error).message}.`, { cause: err });
  }
  return err;
}
