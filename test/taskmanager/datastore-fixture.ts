import { randomUUID } from 'node:crypto';
import type { DatastoreVersionRow, StateStore } from '../../src/db/index.js';

/** An active PostgreSQL 15 version, in a datastore of its own, for the instances a test creates. */
export async function activePostgresql15(store: StateStore): Promise<DatastoreVersionRow> {
  const datastore = await store.datastores.ensureDatastore('postgresql', randomUUID());
  return store.datastores.upsertVersion({
    id: randomUUID(),
    datastoreId: datastore.id,
    name: '15',
    version: '15.19',
    manager: 'postgresql',
    active: true,
    inactiveReason: null,
    updatedAt: new Date(),
  });
}
