// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import { dirname, join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { readdir, readFile } from 'node:fs/promises';
import type { Redis } from 'ioredis';
import { withAdminClient } from '../../src/guest/engines/redis/admin.js';
import { killServerProcesses } from '../../src/guest/engines/redis/server-process.js';
import { connectRedis } from '../support/redis-client.js';
import { runEngineBackup, type EngineBackupFixture } from './engine-backup.suite.js';
import { runEngineConformance, type EngineConnectOptions, type EngineSession } from './engine-conformance.suite.js';

// The engine conformance and backup suites for Redis, through ioredis as a tenant's client would connect.

interface RedisSession extends EngineSession {
  client: Redis;
}

async function connect(options: EngineConnectOptions & { ca?: string }): Promise<RedisSession> {
  // ioredis connects from the kernel's choice of address; the suite asks for a source address
  // only to check access rules and user hosts, which Redis has neither of
  if (options.localAddress !== undefined) throw new Error('the Redis fixture cannot choose a source address');
  const auth = options.password === undefined ? [] : [options.user, options.password];
  const client = await connectRedis(options.address, options.port, auth, options.ca === undefined ? undefined : { ca: options.ca });
  try {
    // the login counts once a command went through
    await client.ping();
    return {
      client,
      async end() {
        await client.quit();
      },
    };
  } catch (err) {
    client.disconnect();
    throw err;
  }
}

/**
 * A setting as the running server reports it (CONFIG GET). Tenants may not run CONFIG (it is
 * in @admin), and no INFO section shows most settings, so the tenant's session only finds the
 * instance (INFO server's config_file, a tenant's right) and the guest's own user reads the
 * setting over the instance's socket, as the guest does: the host's secret and socket, not a
 * right any tenant has.
 */
async function runningSetting(client: Redis, name: string): Promise<string> {
  const info = String(await client.call('INFO', ['server']));
  const configFile = /^config_file:(.+?)\r?$/m.exec(info)?.[1];
  if (configFile === undefined) throw new Error('INFO server shows no config_file');
  const dir = dirname(configFile);
  const endpoint = { socketPath: join(dir, 'data', 'redis.sock'), password: await readFile(join(dir, 'os_admin.password'), 'utf8') };
  const reply = (await withAdminClient(endpoint, (admin) => admin.call('CONFIG', ['GET', name]))) as string[];
  if (reply[0] !== name || reply[1] === undefined) throw new Error(`CONFIG GET ${name} answered ${JSON.stringify(reply)}`);
  return reply[1];
}

/** Every server process left in an instance's data directory under `root`. */
async function cleanUp(root: string): Promise<void> {
  for (const entry of await readdir(root, { withFileTypes: true })) {
    if (entry.isDirectory()) await killServerProcesses(join(root, entry.name, 'data')).catch(() => undefined);
  }
}

const fixture: EngineBackupFixture<RedisSession> = {
  engine: 'redis',
  loopbackPrefix: '127.93',
  connect,
  connectTls: connect,
  serverCertificateSerial: ({ client }) => (client.stream as TLSSocket).getPeerCertificate().serialNumber,
  async write({ client }, key, value) {
    await client.set(key, value);
  },
  async read({ client }, key) {
    return (await client.get(key)) ?? undefined;
  },
  async memorySetting({ client }) {
    // tenants may not run CONFIG GET; INFO shows maxmemory too
    const info = String(await client.call('INFO', ['memory']));
    const match = /^maxmemory:(\d+)\r?$/m.exec(info);
    if (match === null) throw new Error('INFO memory shows no maxmemory');
    return match[1]!;
  },
  // maxmemory changes on the running server: no restart, no reload of the dataset
  resizeRestarts: false,
  configuration: {
    // Coffer's own value is replaced: a cache's eviction instead of a datastore's refusal
    dynamic: { name: 'maxmemory-policy', value: 'allkeys-lru', live: 'allkeys-lru', initial: 'noeviction' },
    // IMMUTABLE_CONFIG in Redis 7: CONFIG SET refuses it, the next start reads it
    restartOnly: { name: 'databases', value: 32, live: '32', initial: '16' },
    // a string by Trove's rules; Redis knows no event class '!'
    rejected: { name: 'notify-keyspace-events', value: 'Kx!' },
    setting: ({ client }, name) => runningSetting(client, name),
  },
  adminUser: 'os_admin',
  rootUser: 'default',
  // Redis user names hold no whitespace (the server refuses it): the suite's defaults have
  // spaces, so these are the same kind of hostility without them, plus ACL rule syntax
  hostileUserNames: ["it's", 'say"hi"', 'back`tick', 'x;DROP_DATABASE_victim;--', '>pw', '~*', '&*', '+@all', 'nopass', 'ünïcødé☃名前'],
  // not prepare's adminPassword: the guest's own secret, made at prepare, kept in the instance directory
  adminPassword: (dir) => readFile(join(dir, 'os_admin.password'), 'utf8'),
  async adminLogin(dir, password) {
    await withAdminClient({ socketPath: join(dir, 'data', 'redis.sock'), password }, (client) => client.ping());
  },
  cleanUp,
};

runEngineConformance(fixture);
runEngineBackup(fixture);
