import { Redis } from 'ioredis';

/**
 * A tenant's client on `host`:`port`, authenticated with AUTH `auth` unless it is empty. One
 * connection with no retries or offline queue: a refused login or a server that is gone fails
 * the call at once. The client is disconnected when connecting or AUTH fails.
 */
export async function connectRedis(host: string, port: number, auth: readonly string[] = [], tls?: { ca: string }): Promise<Redis> {
  const client = new Redis({
    // verified as `redis-cli --tls --cacert` does: the chain up to `ca`, and the address in the certificate
    ...(tls === undefined ? {} : { tls: { ca: tls.ca, rejectUnauthorized: true } }),
    host,
    port,
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    enableReadyCheck: false,
    disableClientInfo: true,
    connectTimeout: 10_000,
  });
  // a server stopped under an open connection emits 'error'; unhandled, it would end the test run
  client.on('error', () => undefined);
  try {
    await client.connect();
    if (auth.length > 0) await client.call('AUTH', [...auth]);
    return client;
  } catch (err) {
    client.disconnect();
    throw err;
  }
}
