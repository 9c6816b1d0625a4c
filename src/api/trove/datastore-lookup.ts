import { CofferError } from '../../common/index.js';
import type { DatastoreRow, DatastoreVersionRow, Repositories } from '../../db/index.js';

// Datastores and versions are addressed by id or by name, ids first (reference 2.2 step 3, 2.7).

const uuidLike = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

export function isUuidLike(value: string): boolean {
  return uuidLike.test(value);
}

export function datastoreNotFound(idOrName: string): CofferError {
  return new CofferError('DatastoreNotFound', `Datastore '${idOrName}' cannot be found.`);
}

export function versionNotFound(idOrName: string): CofferError {
  return new CofferError('DatastoreVersionNotFound', `Datastore version '${idOrName}' cannot be found.`);
}

export async function findDatastore(store: Repositories, idOrName: string): Promise<DatastoreRow> {
  const datastore =
    (await store.datastores.getDatastore(idOrName)) ?? (await store.datastores.getDatastoreByName(idOrName));
  if (datastore === undefined) throw datastoreNotFound(idOrName);
  return datastore;
}

/**
 * A version of `datastore` by id, else by name. Unknown → undefined; a version of another
 * datastore given by id → Trove's DatastoreNoVersion (400).
 */
export async function findVersionOf(
  store: Repositories,
  datastore: DatastoreRow,
  idOrName: string,
): Promise<DatastoreVersionRow | undefined> {
  const byId = isUuidLike(idOrName) ? await store.datastores.getVersion(idOrName) : undefined;
  if (byId !== undefined) {
    if (byId.datastoreId !== datastore.id) {
      throw new CofferError('BadRequest', `Datastore '${datastore.name}' has no version '${idOrName}'.`);
    }
    return byId;
  }
  return store.datastores.getVersionByName(datastore.id, idOrName);
}
