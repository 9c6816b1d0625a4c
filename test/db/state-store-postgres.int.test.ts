import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openStateStore } from '../../src/db/index.js';
import { openStateStoreSuite, type FreshDatabase } from './open-state-store.suite.js';
import { stateStoreSuite } from './state-store.suite.js';

// The shared PostgreSQL (trust auth). Each run works in its own coffer_test_<random> database,
// which openStateStore creates and the test drops.

const host = '127.0.0.1:5432';

async function withClient<T>(user: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: `postgres://${user}@${host}/postgres` });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** The superuser to connect as: `postgres`, else `root`; undefined when neither can. */
async function findUser(): Promise<{ user?: string; reason: string }> {
  const reasons: string[] = [];
  for (const user of ['postgres', 'root']) {
    try {
      await withClient(user, async () => {});
      return { user, reason: '' };
    } catch (err) {
      reasons.push(`${user}: ${(err as Error).message}`);
    }
  }
  return { reason: `no PostgreSQL at ${host} (${reasons.join('; ')})` };
}

const { user, reason } = await findUser();

// An integration test fails, rather than skips, when its server is missing: .ci/run starts it.
if (user === undefined) throw new Error(reason);
const fresh = async (): Promise<FreshDatabase> => {
  const name = `coffer_test_${randomBytes(6).toString('hex')}`;
  return {
    url: `postgres://${user}@${host}/${name}`,
    drop: () => withClient(user, async (c) => void (await c.query(`drop database if exists "${name}" with (force)`))),
  };
};
stateStoreSuite('PostgreSQL', async () => {
  const db = await fresh();
  const store = await openStateStore(db.url.replace(/^postgres:/, 'postgresql:'));
  return {
    store,
    drop: async () => {
      await store.close();
      await db.drop();
    },
  };
});
openStateStoreSuite('PostgreSQL', fresh);
