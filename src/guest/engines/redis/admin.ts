import { Redis } from 'ioredis';
import { CofferError } from '../../../common/index.js';
import type { KeptProbeOps } from '../kept-probe.js';
import { adminUser } from './acl.js';

// The guest's own connection to an instance, over its socket as the guest's user, and the ACL
// changes the users and root modules make through it. Every change is saved to the ACL file at
// once (ACL SAVE): the file is where users live across restarts.

export interface AdminEndpoint {
  socketPath: string;
  password: string;
}

/** What the users and root modules need of the instance's lifecycle. */
export interface AdminEndpointSource {
  /** the instance's administrative endpoint (its secret read once from the instance directory) */
  endpoint(): Promise<AdminEndpoint>;
}

function connection(socketPath: string, timeoutMs: number): Redis {
  const client = new Redis({
    path: socketPath,
    lazyConnect: true,
    // one connection per operation, authenticated below: no reconnects, queues or handshakes
    // that would run before AUTH and fail with NOAUTH
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    enableReadyCheck: false,
    disableClientInfo: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs * 6,
  });
  // a server that dies under an open connection emits 'error'; unhandled, it would kill the agent
  client.on('error', () => undefined);
  return client;
}

async function openAdminClient(endpoint: AdminEndpoint, timeoutMs: number): Promise<Redis> {
  const client = connection(endpoint.socketPath, timeoutMs);
  try {
    await client.connect();
    await client.call('AUTH', [adminUser, endpoint.password]);
  } catch (err) {
    client.disconnect();
    throw err;
  }
  return client;
}

export async function withAdminClient<T>(
  endpoint: AdminEndpoint,
  work: (client: Redis) => Promise<T>,
  timeoutMs = 10_000,
): Promise<T> {
  const client = await openAdminClient(endpoint, timeoutMs);
  try {
    return await work(client);
  } finally {
    client.disconnect();
  }
}

/**
 * The health check's connection, kept between checks (kept-probe.ts): PING as the guest's user.
 * A server still loading its data answers LOADING, which is not healthy. A configuration
 * group's `timeout` below the check interval ends it between checks; the next check opens another.
 */
export function healthProbeOps(endpoint: () => Promise<AdminEndpoint>): KeptProbeOps<Redis> {
  return {
    open: async (timeoutMs) => openAdminClient(await endpoint(), timeoutMs),
    ask: async (client) => (await client.call('PING')) === 'PONG',
    close: (client) => client.disconnect(),
  };
}

/** ready: answers PING; loading: up but still reading its data; down: no answer. */
export async function probeServer(endpoint: AdminEndpoint, timeoutMs: number): Promise<'ready' | 'loading' | 'down'> {
  try {
    return await withAdminClient(endpoint, async (client) => ((await client.call('PING')) === 'PONG' ? 'ready' : 'down'), timeoutMs);
  } catch (err) {
    return err instanceof Error && err.message.startsWith('LOADING') ? 'loading' : 'down';
  }
}

/** Runs ACL commands as one transaction, then persists the ACL file. */
export async function applyAcl(client: Redis, commands: string[][]): Promise<void> {
  const transaction = client.multi();
  for (const args of commands) transaction.call('ACL', args);
  const results = (await transaction.exec()) ?? [];
  const failed = results.find(([err]) => err !== null);
  if (failed !== undefined) throw new CofferError('EngineError', `Redis refused an ACL change: ${String(failed[0])}`);
  await client.call('ACL', ['SAVE']);
}

/** Sets maxmemory on the running server: a resize needs no restart. */
export async function setMaxmemory(endpoint: AdminEndpoint, megabytes: number): Promise<void> {
  await withAdminClient(endpoint, (client) => client.call('CONFIG', ['SET', 'maxmemory', `${megabytes}mb`]));
}

/** `field:value` lines of an INFO reply */
export function infoFields(reply: string): Map<string, string> {
  return new Map(
    reply
      .split(/\r?\n/)
      .map((line) => /^([a-z_0-9]+):(.*)$/.exec(line))
      .filter((match) => match !== null)
      .map((match) => [match[1]!, match[2]!.trim()]),
  );
}
