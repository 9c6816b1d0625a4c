// test-lane: parallel (its own vhost, database, loopback range and data directory; it checks processes under its own directory only)
// test-long (minutes: four roles as processes, restarted)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import mysql from 'mysql2/promise';
import { makeDataDir } from '../support/temp-dir.js';
import { freePort, startRole, type RoleProcess } from '../support/coffer-process.js';
import { makeVhost } from '../support/rabbitmq-vhost.js';
import { processesMentioning } from '../support/processes.js';
import { request, trove, waitForInstance, type Session } from '../support/api-client.js';
import { adminSession, connectAndWrite, createInstance, deleteAndVerifyGone, waitActive } from './instance-lifecycle.js';

// The four roles as separate processes over RabbitMQ (a vhost and user of their own, as the
// README sets it up) and a MariaDB state database, sharing one bus key file, including the
// faults the design promises to survive.

const adminPassword = 'Dist-admin-pass-1234';
const suffix = randomBytes(3).toString('hex');
const databaseName = `coffer_e2e_${suffix}`;
const databaseUrl = `mysql://root@127.0.0.1:3306/${databaseName}`;
let busUrl: string;
let busKeyFile: string;
let removeVhost: () => void;
let dataDir: { path: string; remove: () => Promise<void> };
let baseUrl: string;
let apiPort: number;
let session: Session;
const roles: Record<string, RoleProcess> = {};

const env = () => ({ COFFER_DATABASE_URL: databaseUrl, COFFER_BUS_URL: busUrl, COFFER_BUS_KEY_FILE: busKeyFile, COFFER_LOG_LEVEL: 'info' });

async function start(role: 'conductor' | 'taskmanager' | 'agent' | 'api', port?: number): Promise<void> {
  const args =
    role === 'agent'
      ? ['agent', '--data-dir', dataDir.path, '--agent-host', `e2e-${suffix}`, '--address-pool', '127.78.0.0/24']
      : role === 'api'
        ? ['api', '--port', String(port), '--data-dir', dataDir.path]
        : [role];
  roles[role] = startRole(args, { ...env(), COFFER_ADMIN_PASSWORD: adminPassword });
  await roles[role].waitFor(role === 'api' ? /api listening/ : new RegExp(`${role} running`), 60_000);
}

before(async () => {
  const vhost = makeVhost({ ownUser: true });
  busUrl = vhost.url;
  removeVhost = vhost.remove;
  dataDir = await makeDataDir('coffer-e2e-dist');
  busKeyFile = join(dataDir.path, 'bus.key');
  await writeFile(busKeyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  apiPort = await freePort();
  baseUrl = `http://127.0.0.1:${apiPort}`;
  await start('conductor');
  await start('agent');
  await start('taskmanager');
  await start('api', apiPort);
  session = await adminSession(baseUrl, adminPassword);
});

after(async () => {
  for (const role of Object.values(roles)) await role.stop();
  // Engines outlive their agent by design: stop any this test left behind.
  for (const pid of processesMentioning(dataDir.path)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await dataDir.remove();
  removeVhost();
  const connection = await mysql.createConnection({ host: '127.0.0.1', user: 'root' });
  await connection.query(`DROP DATABASE IF EXISTS \`${databaseName}\``);
  await connection.end();
});

test('the four roles as processes create, serve and delete an instance', async () => {
  const created = await createInstance(session, 'e2e-dist');
  const instance = await waitActive(session, created.id);
  await connectAndWrite(instance);

  // The control plane can go away without taking the database with it.
  await roles['agent']!.kill();
  await connectAndWriteAgain(instance);
  await start('agent');
  const again = await waitForInstance(session, created.id, (i) => i?.operating_status === 'HEALTHY', 30_000);
  assert.equal(again.instance.status, 'ACTIVE');

  await deleteAndVerifyGone(session, created.id, dataDir.path);
});

for (const moment of ['right after the create request', 'while the guest prepares the engine'] as const) {
  test(`killing the agent and the taskmanager ${moment} neither loses nor strands the instance`, async (t) => {
    const created = await createInstance(session, `e2e-fault-${moment.length}`);
    if (moment === 'while the guest prepares the engine') {
      await waitForInstance(session, created.id, (i) => (i?.addresses?.length ?? 0) > 0 || i?.status !== 'BUILD', 30_000);
    }
    await Promise.all([roles['taskmanager']!.kill(), roles['agent']!.kill()]);
    await new Promise((r) => setTimeout(r, 500));
    await start('agent');
    await start('taskmanager');
    const { instance } = await waitForInstance(
      session,
      created.id,
      (i) => i?.status === 'ERROR' || (i?.status === 'ACTIVE' && i?.operating_status === 'HEALTHY'),
      120_000,
    );
    t.diagnostic(`outcome: ${instance.status}${instance.fault ? ` (${instance.fault.message})` : ''}`);
    if (instance.status === 'ERROR') {
      assert.ok(instance.fault?.message, 'an instance in ERROR says why');
    } else {
      await connectAndWrite(instance);
    }
    await deleteAndVerifyGone(session, created.id, dataDir.path);
  });
}

test('the conductor and the API can die during a create: heartbeats wait in the bus, the instance becomes ACTIVE', async () => {
  const created = await createInstance(session, 'e2e-fault-conductor');
  await Promise.all([roles['conductor']!.kill(), roles['api']!.kill()]);
  await new Promise((r) => setTimeout(r, 1500));
  await start('conductor');
  await start('api', apiPort);
  const instance = await waitActive(session, created.id);
  await connectAndWrite(instance);
  await deleteAndVerifyGone(session, created.id, dataDir.path);
});

test('a wrong token and another project are refused', async () => {
  const res = await request('GET', trove(session, '/instances'), { token: 'not-a-token' });
  assert.equal(res.status, 401);
  const other = await request('GET', `${baseUrl}/v1.0/${'0'.repeat(32)}/instances`, { token: session.token });
  assert.equal(other.status, 403);
});

async function connectAndWriteAgain(instance: any): Promise<void> {
  const pg = (await import('pg')).default;
  const address = instance.addresses?.[0]?.address ?? instance.ip?.[0];
  const client = new pg.Client({ host: address, port: 5432, user: 'app', password: 'App-user-pass-1234', database: 'app' });
  await client.connect();
  const { rows } = await client.query('SELECT count(*)::int AS n FROM notes');
  assert.equal(rows[0].n, 1);
  await client.end();
}
