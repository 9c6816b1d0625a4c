import type { DatastoreRow, DatastoreVersionRow, Repositories } from '../../db/index.js';
import { findDatastore, findVersionOf, versionInactive, versionNotFound } from './datastore-lookup.js';

/**
 * Trove's get_datastore_version, which the per-version flavors, volume types and configuration
 * parameters go through: unknown datastore 404, unknown version 400 (by id or by name), and an
 * inactive version 400.
 */
export async function findActiveVersion(
  store: Repositories,
  datastoreIdOrName: string,
  versionIdOrName: string,
): Promise<{ datastore: DatastoreRow; version: DatastoreVersionRow }> {
  const datastore = await findDatastore(store, datastoreIdOrName);
  const version = await findVersionOf(store, datastore, versionIdOrName);
  if (version === undefined) throw versionNotFound(versionIdOrName);
  if (!version.active) throw versionInactive(version);
  return { datastore, version };
}
