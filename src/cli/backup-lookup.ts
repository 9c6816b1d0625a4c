import type { ApiClient } from './api-client.js';
import type { BackupView } from './api-types.js';
import { ApiError, CliError } from './cli-error.js';
import { getInstance, listInstances } from './instance-lookup.js';
import { listAll } from './list-all.js';

// Finding backups, and the instances they were taken of (which may be gone by now).

export function backupPath(id: string): string {
  return `/backups/${encodeURIComponent(id)}`;
}

export interface BackupFilter {
  instanceId?: string;
  /** every project's (admins only) */
  allProjects?: boolean;
}

/** Trove's list, newest update first, every page of it. */
export function listBackups(client: ApiClient, filter: BackupFilter = {}): Promise<BackupView[]> {
  const query = new URLSearchParams();
  if (filter.instanceId !== undefined) query.set('instance_id', filter.instanceId);
  if (filter.allProjects === true) query.set('all_projects', 'true');
  const text = query.toString();
  return listAll<BackupView>(client, text === '' ? '/backups' : `/backups?${text}`, 'backups');
}

/** The backup's view; undefined when the API answers 404. */
export async function getBackup(client: ApiClient, id: string): Promise<BackupView | undefined> {
  try {
    return await client.getMember<BackupView>(backupPath(id), 'backup');
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return undefined;
    throw err;
  }
}

/**
 * A backup by ID or name, as instances are found: GET /backups/<x>, and only on 404 the list,
 * matched by name. A name two backups share is an error naming both ids.
 */
export async function findBackup(client: ApiClient, idOrName: string): Promise<BackupView> {
  if (idOrName === '') throw new CliError('A backup ID or name is required.');
  const byId = await getBackup(client, idOrName);
  if (byId !== undefined) return byId;
  const matches = (await listBackups(client)).filter((backup) => backup.name === idOrName);
  const [only] = matches;
  if (only === undefined) {
    throw new CliError(`No backup has the ID or name "${idOrName}".`, 'See them all with `coffer backup list`.');
  }
  if (matches.length > 1) {
    throw new CliError(
      `More than one backup is named "${idOrName}": ${matches.map((m) => m.id).join(', ')}.`,
      'Use the ID instead.',
    );
  }
  return only;
}

/** The backups that depend on `id` (its incrementals, theirs, ...), which a delete removes first. */
export function descendantsOf(all: readonly BackupView[], id: string): BackupView[] {
  const found: BackupView[] = [];
  for (let parents = new Set([id]); parents.size > 0; ) {
    const next = all.filter((b) => b.parent_id != null && parents.has(b.parent_id) && !found.includes(b));
    found.push(...next);
    parents = new Set(next.map((b) => b.id));
  }
  return found;
}

/** An instance a backup command names: its id, and its name when it still exists. */
export interface InstanceRef {
  id: string;
  name: string | undefined;
}

/**
 * An instance by ID or name, or, when none matches, the text taken as the ID of an instance
 * deleted since: its backups outlive it and are still listed by its ID.
 */
export async function instanceRef(client: ApiClient, idOrName: string): Promise<InstanceRef> {
  if (idOrName === '') throw new CliError('An instance ID or name is required.');
  const byId = await getInstance(client, idOrName);
  if (byId !== undefined) return { id: byId.id, name: byId.name };
  const matches = (await listInstances(client)).filter((instance) => instance.name === idOrName);
  if (matches.length > 1) {
    throw new CliError(`More than one instance is named "${idOrName}": ${matches.map((m) => m.id).join(', ')}.`, 'Use the ID instead.');
  }
  const [only] = matches;
  return only === undefined ? { id: idOrName, name: undefined } : { id: only.id, name: only.name };
}
