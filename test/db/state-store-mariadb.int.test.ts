import { randomBytes } from 'node:crypto';
import { createConnection } from 'mysql2/promise';
import { openStateStore } from '../../src/db/index.js';
import { openStateStoreSuite, type FreshDatabase } from './open-state-store.suite.js';
import { stateStoreSuite } from './state-store.suite.js';

// The shared MariaDB (root, no password). Each run works in its own coffer_test_<random>
// database, which openStateStore creates and the test drops.

const server = { host: '127.0.0.1', port: 3306, user: 'root' };
const serverUrl = `mysql://${server.user}@${server.host}:${server.port}`;

async function dropDatabase(name: string): Promise<void> {
  const conn = await createConnection(server);
  try {
    await conn.query(`drop database if exists \`${name}\``);
  } finally {
    await conn.end();
  }
}

async function fresh(): Promise<FreshDatabase> {
  const name = `coffer_test_${randomBytes(6).toString('hex')}`;
  return { url: `${serverUrl}/${name}`, drop: () => dropDatabase(name) };
}

const unavailable = await createConnection(server).then(
  async (conn) => {
    await conn.end();
    return undefined;
  },
  (err: Error) => `no MariaDB at ${server.host}:${server.port} (${err.message})`,
);

// An integration test fails, rather than skips, when its server is missing: .ci/run starts it.
if (unavailable !== undefined) throw new Error(unavailable);
stateStoreSuite('MariaDB', async () => {
  const db = await fresh();
  const store = await openStateStore(db.url.replace(/^mysql:/, 'mariadb:'));
  return {
    store,
    drop: async () => {
      await store.close();
      await db.drop();
    },
  };
});
openStateStoreSuite('MariaDB', fresh);
