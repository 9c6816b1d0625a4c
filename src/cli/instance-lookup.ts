import type { ApiClient } from './api-client.js';
import type { InstanceView } from './api-types.js';
import { ApiError, CliError } from './cli-error.js';
import { listAll } from './list-all.js';

export function listInstances(client: ApiClient): Promise<InstanceView[]> {
  return listAll<InstanceView>(client, '/instances', 'instances');
}

/**
 * An instance by ID or name, as troveclient resolves it: GET /instances/<x>, and only on 404
 * the list, matched by name. A name two instances share is an error naming both ids.
 */
export async function findInstance(client: ApiClient, idOrName: string): Promise<InstanceView> {
  if (idOrName === '') throw new CliError('An instance ID or name is required.');
  const byId = await getInstance(client, idOrName);
  if (byId !== undefined) return byId;
  const matches = (await listInstances(client)).filter((instance) => instance.name === idOrName);
  const [only] = matches;
  if (only === undefined) {
    throw new CliError(`No instance has the ID or name "${idOrName}".`, 'See them all with `coffer instance list`.');
  }
  if (matches.length > 1) {
    throw new CliError(
      `More than one instance is named "${idOrName}": ${matches.map((m) => m.id).join(', ')}.`,
      'Use the ID instead.',
    );
  }
  // List items may be summaries; the detail view has the fault and timestamps.
  return (await getInstance(client, only.id)) ?? only;
}

/** The instance's detail view; undefined when the API answers 404. */
export async function getInstance(client: ApiClient, id: string): Promise<InstanceView | undefined> {
  try {
    return await client.getMember<InstanceView>(`/instances/${encodeURIComponent(id)}`, 'instance');
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return undefined;
    throw err;
  }
}
