import type { ApiClient } from './api-client.js';
import { ApiError } from './cli-error.js';
import type { CliIo } from './cli-io.js';
import { findInstance } from './instance-lookup.js';
import { openSession } from './session.js';

// What the database, user and root commands share: the instance they act on (by ID or name),
// the API path of a user, and errors turned into the next thing to try.

export interface AdminTarget {
  client: ApiClient;
  id: string;
  name: string;
  /** `/instances/<id>` */
  path: string;
  /** the instance's datastore type, e.g. `postgresql` */
  datastore: string | undefined;
}

/**
 * Whether users of this datastore have host patterns (`user@host`). The API's capabilities are
 * per version and not in the instance view; MySQL and MariaDB are the engines that have them.
 */
export function hasUserHosts(target: AdminTarget): boolean {
  return target.datastore === 'mysql' || target.datastore === 'mariadb';
}

export async function adminTarget(io: CliIo, idOrName: string): Promise<AdminTarget> {
  const client = await openSession(io);
  const { id, name, datastore } = await findInstance(client, idOrName);
  return { client, id, name, path: `/instances/${encodeURIComponent(id)}`, datastore: datastore?.type ?? undefined };
}

/**
 * `/users/<name@host>`: always with the host (`%` when none is given), so that a name holding
 * `@` is not split by the server, which takes the host from after the last one.
 */
export function userPath(target: AdminTarget, name: string, host: string | undefined): string {
  return `${target.path}/users/${encodeURIComponent(`${name}@${host ?? '%'}`)}`;
}

/** Hints by HTTP status for the errors a command expects; 422s get theirs here. */
export type Hints = Partial<Record<400 | 404, string>>;

/** Runs `work`; an API error without a hint gets the one that says what to do next. */
export async function withHints<T>(target: AdminTarget, hints: Hints, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (!(err instanceof ApiError) || err.hint !== undefined) throw err;
    const hint = err.status === 422 ? unprocessableHint(target, err.message) : hints[err.status as 400 | 404];
    throw hint === undefined ? err : new ApiError(err.status, err.message, hint);
  }
}

function unprocessableHint(target: AdminTarget, message: string): string | undefined {
  if (/not supported for datastore/i.test(message)) {
    return `The datastore of ${target.name} does not support this; \`coffer datastore list\` shows the others.`;
  }
  if (/not ready/i.test(message)) {
    return `Wait until \`coffer instance show ${target.name}\` says ACTIVE / HEALTHY (or ACTIVE / ACTIVE), then try again.`;
  }
  return undefined;
}
