import { troveTimestamp, type ConfigurationValue } from '../../common/index.js';
import type { ConfigurationRow, DatastoreRow, DatastoreVersionRow, Repositories } from '../../db/index.js';

// Trove's configuration group views (reference 2.8, trove/configuration/views.py). The list item
// carries the version number too, so that the OpenStack client does not fetch every group again.

export interface ConfigurationViewData {
  group: ConfigurationRow;
  version: DatastoreVersionRow | undefined;
  datastore: DatastoreRow | undefined;
}

export function configurationView({ group, version, datastore }: ConfigurationViewData) {
  return {
    id: group.id,
    name: group.name,
    description: group.description,
    created: troveTimestamp(group.createdAt),
    updated: troveTimestamp(group.updatedAt),
    datastore_version_id: group.datastoreVersionId,
    datastore_name: datastore?.name ?? null,
    datastore_version_name: version?.name ?? null,
    datastore_version_number: version?.version ?? null,
  };
}

/** Values of settings named like passwords are never shown back (Trove masks them as `***`). */
export function maskedValues(values: Record<string, ConfigurationValue>): Record<string, ConfigurationValue> {
  return Object.fromEntries(Object.entries(values).map(([key, value]) => [key, key.toLowerCase().includes('password') ? '***' : value]));
}

export function configurationDetailView(data: ConfigurationViewData, instanceCount: number) {
  return { ...configurationView(data), values: maskedValues(data.group.values), instance_count: instanceCount };
}

/** The version and datastore of groups, each read once per request. */
export class ConfigurationViewLoader {
  private readonly versions = new Map<string, Promise<DatastoreVersionRow | undefined>>();
  private readonly datastores = new Map<string, Promise<DatastoreRow | undefined>>();

  constructor(private readonly store: Repositories) {}

  async load(group: ConfigurationRow): Promise<ConfigurationViewData> {
    let version = this.versions.get(group.datastoreVersionId);
    if (version === undefined) {
      version = this.store.datastores.getVersion(group.datastoreVersionId);
      this.versions.set(group.datastoreVersionId, version);
    }
    const v = await version;
    if (v === undefined) return { group, version: undefined, datastore: undefined };
    let datastore = this.datastores.get(v.datastoreId);
    if (datastore === undefined) {
      datastore = this.store.datastores.getDatastore(v.datastoreId);
      this.datastores.set(v.datastoreId, datastore);
    }
    return { group, version: v, datastore: await datastore };
  }
}
