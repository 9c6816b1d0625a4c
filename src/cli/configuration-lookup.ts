import type { ApiClient } from './api-client.js';
import type { ConfigurationGroupView, ConfigurationParameterView, DatastoreVersionView, DatastoreView } from './api-types.js';
import { ApiError, CliError } from './cli-error.js';
import { listAll } from './list-all.js';

// Finding configuration groups and the parameters their datastore version publishes.

export function listConfigurations(client: ApiClient): Promise<ConfigurationGroupView[]> {
  return listAll<ConfigurationGroupView>(client, '/configurations', 'configurations');
}

export function groupPath(id: string): string {
  return `/configurations/${encodeURIComponent(id)}`;
}

/** The group's detail view (with `values`); undefined when the API answers 404. */
export async function getConfiguration(client: ApiClient, id: string): Promise<ConfigurationGroupView | undefined> {
  try {
    return await client.getMember<ConfigurationGroupView>(groupPath(id), 'configuration');
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return undefined;
    throw err;
  }
}

/**
 * A group by ID or name, as instances are found: GET /configurations/<x>, and only on 404 the
 * list, matched by name. A name two groups share is an error naming both ids.
 */
export async function findConfiguration(client: ApiClient, idOrName: string): Promise<ConfigurationGroupView> {
  if (idOrName === '') throw new CliError('A configuration group ID or name is required.');
  const byId = await getConfiguration(client, idOrName);
  if (byId !== undefined) return byId;
  const matches = (await listConfigurations(client)).filter((group) => group.name === idOrName);
  const [only] = matches;
  if (only === undefined) {
    throw new CliError(`No configuration group has the ID or name "${idOrName}".`, 'See them all with `coffer configuration list`.');
  }
  if (matches.length > 1) {
    throw new CliError(
      `More than one configuration group is named "${idOrName}": ${matches.map((m) => m.id).join(', ')}.`,
      'Use the ID instead.',
    );
  }
  // List items have no values.
  return (await getConfiguration(client, only.id)) ?? only;
}

/** The parameters of a datastore version, and how to name it to a user. */
export interface ParameterSet {
  /** `postgresql 15`, as Trove's errors name a datastore version */
  label: string;
  /** `coffer datastore parameters postgresql 15`: where the user reads the list */
  listCommand: string;
  parameters: ConfigurationParameterView[];
}

function parameterSet(datastore: string, version: string, parameters: ConfigurationParameterView[]): ParameterSet {
  return { label: `${datastore} ${version}`, listCommand: `coffer datastore parameters ${datastore} ${version}`, parameters };
}

/** The parameters of a group's datastore version (by its id, as the group names it). */
export async function groupParameters(client: ApiClient, group: ConfigurationGroupView): Promise<ParameterSet> {
  const datastore = group.datastore_name ?? 'datastore';
  const version = group.datastore_version_name ?? group.datastore_version_id ?? '?';
  if (group.datastore_version_id === undefined) return parameterSet(datastore, version, []);
  const parameters = await client.getMember<ConfigurationParameterView[]>(
    `/datastores/versions/${encodeURIComponent(group.datastore_version_id)}/parameters`,
    'configuration-parameters',
  );
  return parameterSet(datastore, version, parameters);
}

/**
 * The same, or none when the API cannot list them (a version gone inactive): where the list only
 * marks which values take a restart, that is worth having, not worth failing for.
 */
export async function groupParametersIfKnown(client: ApiClient, group: ConfigurationGroupView): Promise<ParameterSet> {
  try {
    return await groupParameters(client, group);
  } catch (err) {
    if (err instanceof ApiError) return parameterSet(group.datastore_name ?? '?', group.datastore_version_name ?? '?', []);
    throw err;
  }
}

/**
 * A datastore and version by name or ID, from the datastore list; without a version, the
 * datastore's default. Errors list what there is to choose from.
 */
export async function resolveDatastoreVersion(
  client: ApiClient,
  datastoreRef: string,
  versionRef: string | undefined,
): Promise<{ datastore: DatastoreView; version: DatastoreVersionView }> {
  const datastores = await client.getMember<DatastoreView[]>('/datastores', 'datastores');
  const datastore = datastores.find((ds) => ds.name === datastoreRef) ?? datastores.find((ds) => ds.id === datastoreRef);
  if (datastore === undefined) {
    throw new CliError(`No datastore is named "${datastoreRef}".`, `Available: ${datastores.map((ds) => ds.name).join(', ') || 'none'} (see \`coffer datastore list\`).`);
  }
  const versions = datastore.versions ?? [];
  const wanted = versionRef ?? datastore.default_version;
  if (wanted === undefined) {
    throw new CliError(`${datastore.name} has no default version.`, 'Give --datastore-version (see `coffer datastore list`).');
  }
  const version = versions.find((v) => v.name === wanted) ?? versions.find((v) => v.id === wanted);
  if (version === undefined) {
    throw new CliError(
      `${datastore.name} has no version "${wanted}".`,
      `Available: ${versions.map((v) => v.name).join(', ') || 'none'} (see \`coffer datastore list\`).`,
    );
  }
  return { datastore, version };
}

/** The parameters of a datastore version given by names, as `coffer datastore parameters` takes them. */
export async function versionParameters(client: ApiClient, datastore: string, version: string): Promise<ParameterSet> {
  const path = `/datastores/${encodeURIComponent(datastore)}/versions/${encodeURIComponent(version)}/parameters`;
  try {
    return parameterSet(datastore, version, await client.getMember<ConfigurationParameterView[]>(path, 'configuration-parameters'));
  } catch (err) {
    // Trove answers an unknown datastore with 404 and a version unknown by name with 400.
    if (err instanceof ApiError && (err.status === 404 || err.status === 400) && err.hint === undefined) {
      throw new ApiError(err.status, err.message, 'See the datastores and their versions with `coffer datastore list`.');
    }
    throw err;
  }
}
