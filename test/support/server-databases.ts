import { randomBytes } from 'node:crypto';
import { createConnection } from 'mysql2/promise';
import pg from 'pg';

// Scratch databases on the shared PostgreSQL (trust auth) and MariaDB (root, no password) that
// .ci/run starts: each test works in its own coffer_test_<random> database, which openStateStore
// creates and `drop` removes. An integration test fails, rather than skips, when a server is missing.

export interface ScratchDatabase {
  url: string;
  drop(): Promise<void>;
}

const postgresHost = '127.0.0.1:5432';
const mariadb = { host: '127.0.0.1', port: 3306, user: 'root' };

const scratchName = () => `coffer_test_${randomBytes(6).toString('hex')}`;

async function withPostgres<T>(user: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: `postgres://${user}@${postgresHost}/postgres` });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

let postgresUser: Promise<string> | undefined;

/** The superuser to connect as: `postgres`, else `root` (as on this machine kind). */
function findPostgresUser(): Promise<string> {
  postgresUser ??= (async () => {
    const reasons: string[] = [];
    for (const user of ['postgres', 'root']) {
      try {
        await withPostgres(user, async () => {});
        return user;
      } catch (err) {
        reasons.push(`${user}: ${(err as Error).message}`);
      }
    }
    throw new Error(`no PostgreSQL at ${postgresHost} (${reasons.join('; ')})`);
  })();
  return postgresUser;
}

export async function scratchPostgresDatabase(): Promise<ScratchDatabase> {
  const user = await findPostgresUser();
  const name = scratchName();
  return {
    url: `postgres://${user}@${postgresHost}/${name}`,
    drop: () => withPostgres(user, async (c) => void (await c.query(`drop database if exists "${name}" with (force)`))),
  };
}

export async function scratchMariadbDatabase(): Promise<ScratchDatabase> {
  const conn = await createConnection(mariadb).catch((err: Error) => {
    throw new Error(`no MariaDB at ${mariadb.host}:${mariadb.port} (${err.message})`);
  });
  await conn.end();
  const name = scratchName();
  return {
    url: `mysql://${mariadb.user}@${mariadb.host}:${mariadb.port}/${name}`,
    drop: async () => {
      const c = await createConnection(mariadb);
      try {
        await c.query(`drop database if exists \`${name}\``);
      } finally {
        await c.end();
      }
    },
  };
}

/** Both server state databases, by the name tests print. */
export const serverDatabases: Record<'PostgreSQL' | 'MariaDB', () => Promise<ScratchDatabase>> = {
  PostgreSQL: scratchPostgresDatabase,
  MariaDB: scratchMariadbDatabase,
};
