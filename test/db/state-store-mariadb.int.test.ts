// test-lane: parallel (a scratch database of its own)
import { openStateStore } from '../../src/db/index.js';
import { scratchMariadbDatabase } from '../support/server-databases.js';
import { openStateStoreSuite } from './open-state-store.suite.js';
import { stateStoreSuite } from './state-store.suite.js';

// The shared MariaDB: each run works in a scratch database of its own.

stateStoreSuite('MariaDB', async () => {
  const db = await scratchMariadbDatabase();
  const store = await openStateStore(db.url.replace(/^mysql:/, 'mariadb:'));
  return {
    store,
    drop: async () => {
      await store.close();
      await db.drop();
    },
  };
});
openStateStoreSuite('MariaDB', scratchMariadbDatabase);
