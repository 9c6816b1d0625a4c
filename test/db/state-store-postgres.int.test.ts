// test-lane: parallel (a scratch database of its own)
import { openStateStore } from '../../src/db/index.js';
import { scratchPostgresDatabase } from '../support/server-databases.js';
import { openStateStoreSuite } from './open-state-store.suite.js';
import { stateStoreSuite } from './state-store.suite.js';

// The shared PostgreSQL: each run works in a scratch database of its own.

stateStoreSuite('PostgreSQL', async () => {
  const db = await scratchPostgresDatabase();
  const store = await openStateStore(db.url.replace(/^postgres:/, 'postgresql:'));
  return {
    store,
    drop: async () => {
      await store.close();
      await db.drop();
    },
  };
});
openStateStoreSuite('PostgreSQL', scratchPostgresDatabase);
