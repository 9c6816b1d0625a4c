// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import { Socket } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { Client, escapeIdentifier } from 'pg';
import { runEngineBackup, type EngineBackupFixture } from './engine-backup.suite.js';
import { runEngineConformance, type EngineConnectOptions } from './engine-conformance.suite.js';
import { cleanUp } from './engine-fixture.js';

// The engine conformance and backup suites for PostgreSQL, through pg as a tenant's client would connect.

/** A socket for pg that connects from `localAddress` (pg calls `connect(port, host)` itself). */
function boundSocket(localAddress: string): Socket {
  const socket = new Socket();
  const connect = socket.connect.bind(socket) as (options: { port: number; host: string; localAddress: string }) => Socket;
  Object.assign(socket, { connect: (port: number, host: string) => connect({ port, host, localAddress }) });
  return socket;
}

async function connect(options: EngineConnectOptions & { ca?: string }): Promise<Client> {
  const client = new Client({
    // verified as `sslmode=verify-full` does: the chain up to `ca`, and the address in the certificate
    ...(options.ca === undefined ? {} : { ssl: { ca: options.ca, rejectUnauthorized: true } }),
    host: options.address,
    port: options.port,
    // pg falls back to the OS user for an empty name: still no role of the instance's
    user: options.user,
    password: options.password,
    database: options.database ?? 'postgres',
    connectionTimeoutMillis: 10_000,
    ...(options.localAddress === undefined ? {} : { stream: () => boundSocket(options.localAddress!) }),
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
  return client;
}

/** one table per user: a table another user created is not writable without a grant */
function tableOf(client: Client): string {
  return `conformance ${client.user ?? ''}`;
}

const fixture: EngineBackupFixture<Client> = {
  engine: 'postgresql',
  loopbackPrefix: '127.91',
  connect,
  connectTls: connect,
  serverCertificateSerial: (client) =>
    ((client as unknown as { connection: { stream: TLSSocket } }).connection.stream).getPeerCertificate().serialNumber,
  async write(client, key, value) {
    const table = escapeIdentifier(tableOf(client));
    await client.query(`CREATE TABLE IF NOT EXISTS ${table} (key text PRIMARY KEY, value text)`);
    await client.query(`INSERT INTO ${table} VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = $2`, [key, value]);
  },
  async read(client, key) {
    const table = tableOf(client);
    const present = await client.query('SELECT to_regclass($1) IS NOT NULL AS present', [escapeIdentifier(table)]);
    if (!present.rows[0].present) return undefined;
    const result = await client.query<{ value: string }>(`SELECT value FROM ${escapeIdentifier(table)} WHERE key = $1`, [key]);
    return result.rows[0]?.value;
  },
  async memorySetting(client) {
    return (await client.query<{ shared_buffers: string }>('SHOW shared_buffers')).rows[0]!.shared_buffers;
  },
  adminUser: 'os_admin',
  rootUser: 'root',
  characterSet: { characterSet: 'LATIN1', collate: 'C' },
  configuration: {
    // not work_mem: the suite resizes between its checks, and work_mem follows the memory
    dynamic: { name: 'log_min_duration_statement', value: 250, live: '250ms', initial: '-1' },
    restartOnly: { name: 'max_locks_per_transaction', value: 128, live: '128', initial: '64' },
    rejected: { name: 'timezone', value: 'No/Such_Zone' },
    async setting(client, name) {
      return (await client.query<{ value: string }>('SELECT current_setting($1) AS value', [name])).rows[0]!.value;
    },
  },
  // the guest's own password is the one prepare was given
  adminPassword: async (_dir, input) => input.adminPassword,
  async adminLogin(dir, password) {
    // over the instance's socket, as the guest logs in (pg_hba refuses the admin over TCP)
    const client = new Client({ host: join(dir, 'data'), port: 5432, user: 'os_admin', password, database: 'postgres' });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
    } finally {
      await client.end().catch(() => undefined);
    }
  },
  cleanUp,
};

runEngineConformance(fixture);
runEngineBackup(fixture);
