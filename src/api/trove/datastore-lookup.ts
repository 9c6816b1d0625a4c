import { CofferError } from '../../common/index.js';
import type { DatastoreRow, DatastoreVersionRow, Repositories } from '../../db/index.js';

// Datastores and versions are addressed by id or by name, ids first (reference 2.2 step 3, 2.7).

const uuidLike = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

export function isUuidLike(value: string): boolean {
  return uuidLike.test(value);
}

/** Trove's message, then the datastores there are (names only: every project may know them). */
export function datastoreNotFound(idOrName: string, known: readonly string[] = []): CofferError {
  const list = known.length === 0 ? '' : ` Datastores: ${[...known].sort().join(', ')}.`;
  return new CofferError('DatastoreNotFound', `Datastore '${idOrName}' cannot be found.${list}`);
}

/** Trove's message, then why the version is inactive and what to install, as the agent reported it. */
export function versionInactive(version: DatastoreVersionRow): CofferError {
  const reason = version.inactiveReason === null ? '' : ` ${withStop(version.inactiveReason)}`;
  return new CofferError('DatastoreVersionInactive', `Datastore version '${version.name}' is not active.${reason}`);
}

/**
 * A datastore without a usable default: Trove's message, and why when its versions are all
 * inactive (the agents found no binaries for any).
 */
export async function defaultVersionNotFound(store: Repositories, datastore: DatastoreRow): Promise<CofferError> {
  const versions = await store.datastores.listVersions(datastore.id);
  const inactive = versions.filter((v) => !v.active);
  const why =
    versions.length > 0 && inactive.length === versions.length
      ? ` No version of it is active: ${inactive.map((v) => `${v.name}: ${withStop(v.inactiveReason ?? 'inactive')}`).join(' ')}`
      : '';
  return new CofferError('BadRequest', `Default version for datastore '${datastore.name}' not found.${why}`);
}

function withStop(text: string): string {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

export function versionNotFound(idOrName: string): CofferError {
  return new CofferError('DatastoreVersionNotFound', `Datastore version '${idOrName}' cannot be found.`);
}

/** The datastores with an active version: those a member sees in the list. */
async function usableDatastoreNames(store: Repositories): Promise<string[]> {
  const usable = new Set((await store.datastores.listVersions()).filter((v) => v.active).map((v) => v.datastoreId));
  return (await store.datastores.listDatastores()).filter((d) => usable.has(d.id)).map((d) => d.name);
}

export async function findDatastore(store: Repositories, idOrName: string): Promise<DatastoreRow> {
  const datastore =
    (await store.datastores.getDatastore(idOrName)) ?? (await store.datastores.getDatastoreByName(idOrName));
  if (datastore === undefined) throw datastoreNotFound(idOrName, await usableDatastoreNames(store));
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
