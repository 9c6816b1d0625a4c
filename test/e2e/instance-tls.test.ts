// test-lane: parallel (coffer serve on a loopback range, a port and a data directory of its own; it checks processes of its own instances only)
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { createConnection } from 'mysql2/promise';
import pg from 'pg';
import { checkServerIdentity } from 'node:tls';
import { request, trove, waitForInstance, type Session } from '../support/api-client.js';
import { eventually } from '../support/wait.js';
import { waitActive } from './instance-lifecycle.js';
import { startServe, type ServeRun } from './serve-run.js';

// TLS end to end through `coffer serve`: each engine's instance serves a certificate that real
// clients verify with the CA certificate the API shows (and nothing else: no file of the host),
// refuses plaintext when the API is asked to require TLS, and allows it again. The CA's key
// stays private to Coffer, the instance's key to the instance's OS user.

const adminPassword = 'Tls-e2e-admin-pass-1234';
const appPassword = 'Tls-app-pass-1234';
// MariaDB's install-db and first start are slow on a busy two-core host
const activeTimeoutMs = 240_000;
let run: ServeRun;
let admin: Session;
const created = new Set<string>();

before(async () => {
  run = await startServe('coffer-e2e-tls', adminPassword, ['--address-pool', '127.90.7.0/24']);
  admin = run.session;
});

after(async () => {
  for (const id of created) {
    await request('DELETE', trove(admin, `/instances/${id}`), { token: admin.token }).catch(() => undefined);
    await waitForInstance(admin, id, (_i, status) => status === 404, 60_000).catch(() => undefined);
  }
  await run?.stop();
});

async function call(method: string, path: string, body?: unknown) {
  return request<any>(method, trove(admin, path), { token: admin.token, ...(body === undefined ? {} : { body }) });
}

async function create(instance: Record<string, unknown>): Promise<string> {
  const res = await call('POST', '/instances', { instance: { flavorRef: '1', volume: { size: 1 }, ...instance } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  created.add(res.body.instance.id);
  return res.body.instance.id as string;
}

/** What a client needs, taken from GET /instances/{id} only. */
async function shown(id: string): Promise<{ host: string; ca: string; port: number; required: boolean; expires: string }> {
  const instance = await waitActive(admin, id, activeTimeoutMs);
  const { tls } = instance;
  assert.match(tls.ca_certificate, /^-----BEGIN CERTIFICATE-----/);
  assert.match(tls.expires, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
  return { host: instance.addresses[0].address, ca: tls.ca_certificate, port: tls.port, required: tls.required, expires: tls.expires };
}

async function deleteInstance(id: string): Promise<void> {
  assert.equal((await call('DELETE', `/instances/${id}`)).status, 202);
  await waitForInstance(admin, id, (_i, status) => status === 404, 60_000);
  created.delete(id);
}

async function pgLogin(host: string, ca?: string): Promise<string | undefined> {
  const client = new pg.Client({
    host,
    port: 5432,
    user: 'app',
    password: appPassword,
    database: 'app',
    ...(ca === undefined ? {} : { ssl: { ca, rejectUnauthorized: true } }),
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    const stream = (client as unknown as { connection: { stream: TLSSocket } }).connection.stream;
    return ca === undefined ? undefined : stream.getPeerCertificate().serialNumber;
  } finally {
    await client.end().catch(() => undefined);
  }
}

test('PostgreSQL: TLS required from create, verified with the CA from the API; plaintext allowed again on request', async () => {
  const id = await create({
    name: 'tls-pg',
    datastore: { type: 'postgresql' },
    databases: [{ name: 'app' }],
    users: [{ name: 'app', password: appPassword, databases: [{ name: 'app' }] }],
    tls: { required: true },
  });
  const tls = await shown(id);
  assert.equal(tls.required, true);
  assert.equal(tls.port, 5432);
  assert.ok(await pgLogin(tls.host, tls.ca), 'a verified TLS login');
  await assert.rejects(pgLogin(tls.host), /no encryption|pg_hba/, 'plaintext refused');

  // the files behind it: the CA key Coffer's alone, the instance's key its OS user's alone
  const caKey = statSync(join(run.dataDir.path, 'ca', 'ca.key'));
  assert.equal(caKey.mode & 0o777, 0o600);
  assert.equal(caKey.uid, process.getuid!());
  const instanceKey = statSync(join(run.dataDir.path, 'instances', id, 'server.key'));
  assert.equal(instanceKey.mode & 0o777, 0o600);
  if (process.getuid!() === 0) assert.notEqual(instanceKey.uid, 0, "the instance's own user");

  assert.equal((await call('PUT', `/instances/${id}`, { instance: { tls: { required: false } } })).status, 202);
  await eventually('plaintext allowed', () => pgLogin(tls.host).then(() => true, () => false), (ok) => ok, 60_000);
  assert.equal((await waitActive(admin, id)).tls.required, false);
  assert.ok(await pgLogin(tls.host, tls.ca), 'TLS still served');
  await deleteInstance(id);
});

test('Redis and MariaDB: verified TLS with the CA from the API; TLS required refuses plaintext', async () => {
  const redisId = await create({ name: 'tls-redis', datastore: { type: 'redis' }, users: [{ name: 'app', password: appPassword }] });
  const mariaId = await create({
    name: 'tls-maria',
    datastore: { type: 'mariadb' },
    databases: [{ name: 'app' }],
    users: [{ name: 'app', password: appPassword, databases: [{ name: 'app' }] }],
  });

  const redis = await shown(redisId);
  assert.equal(redis.port, 6380, 'TLS beside plaintext 6379');
  const redisTls = async () => {
    const client = new Redis({
      host: redis.host,
      port: redis.port,
      tls: { ca: redis.ca, rejectUnauthorized: true },
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      enableReadyCheck: false,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.call('AUTH', ['app', appPassword]);
      return await client.ping();
    } finally {
      client.disconnect();
    }
  };
  assert.equal(await redisTls(), 'PONG');
  const serial = new X509Certificate(redis.ca).serialNumber;
  assert.ok(serial.length > 0);

  const maria = await shown(mariaId);
  assert.equal(maria.port, 3306);
  const connection = await createConnection({
    host: maria.host,
    port: maria.port,
    user: 'app',
    password: appPassword,
    database: 'app',
    ssl: { ca: maria.ca, rejectUnauthorized: true, verifyIdentity: false },
  });
  try {
    const stream = (connection as unknown as { connection: { stream: TLSSocket } }).connection.stream;
    assert.equal(checkServerIdentity(maria.host, stream.getPeerCertificate()), undefined, 'the certificate names the address');
    const [rows] = await connection.query("SHOW SESSION STATUS LIKE 'Ssl_version'");
    assert.match(String((rows as Array<{ Value: string }>)[0]?.Value), /^TLSv1\.[23]$/);
  } finally {
    await connection.end();
  }

  assert.equal((await call('PUT', `/instances/${mariaId}`, { instance: { tls: { required: true } } })).status, 202);
  const plain = () =>
    createConnection({ host: maria.host, port: maria.port, user: 'app', password: appPassword, database: 'app' }).then(
      async (c) => {
        await c.end();
        return 'accepted';
      },
      (err: Error) => err.message,
    );
  // while the access task re-derives the accounts a login may be refused for a moment otherwise
  const overTls = () =>
    createConnection({
      host: maria.host,
      port: maria.port,
      user: 'app',
      password: appPassword,
      database: 'app',
      ssl: { ca: maria.ca, rejectUnauthorized: true, verifyIdentity: false },
    }).then(async (c) => {
      await c.end();
      return 'accepted';
    }, (err: Error) => err.message);
  // MariaDB answers an insecure login "Access denied": the same login over TLS shows why
  await eventually(
    'plaintext refused while TLS is accepted',
    async () => [await plain(), await overTls()],
    ([plainAnswer, tlsAnswer]) => plainAnswer !== 'accepted' && tlsAnswer === 'accepted',
    60_000,
  );
  assert.equal((await waitActive(admin, mariaId)).tls.required, true);

  await deleteInstance(redisId);
  await deleteInstance(mariaId);
});
