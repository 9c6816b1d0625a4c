// test-lane: parallel (coffer serve on a loopback range, a port and a data directory of its own; it checks processes under its own instances' directories only)
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { createConnection } from 'mysql2/promise';
import pg from 'pg';
import { request, trove, waitForInstance, type Session } from '../support/api-client.js';
import { runCli } from '../support/coffer-process.js';
import { processesMentioning } from '../support/processes.js';
import { until } from '../support/wait.js';
import { waitActive } from './instance-lifecycle.js';
import { startServe, type ServeRun } from './serve-run.js';

// Stop and start (issue 13) end to end on every engine: `coffer serve` with a real PostgreSQL,
// MariaDB and Redis instance; each stopped (Redis through the CLI), found SHUTOFF with no process
// under its directory, still stopped after `coffer serve` restarts and adopts it, then started
// again with its data and its address; one deleted while stopped.

const adminPassword = 'StopStart-admin-pass-1234';
const userPassword = 'StopStart-user-pass-1234';
let run: ServeRun;
let admin: Session;
const created = new Set<string>();

// MariaDB's install-db and first start are slow on a busy two-core host.
const activeTimeoutMs = 240_000;

before(async () => {
  run = await startServe('coffer-e2e-stopstart', adminPassword, ['--address-pool', '127.96.17.0/24']);
  admin = run.session;
});

after(async () => {
  for (const id of created) {
    await request('DELETE', trove(admin, `/instances/${id}`), { token: admin.token }).catch(() => undefined);
    await waitForInstance(admin, id, (_i, status) => status === 404, 60_000).catch(() => undefined);
  }
  await run?.stop();
});

interface EngineCase {
  datastore: 'postgresql' | 'mariadb' | 'redis';
  create: Record<string, unknown>;
  write(host: string): Promise<void>;
  read(host: string): Promise<string | undefined>;
}

const cases: EngineCase[] = [
  {
    datastore: 'postgresql',
    create: { databases: [{ name: 'app' }], users: [{ name: 'app', password: userPassword, databases: [{ name: 'app' }] }] },
    async write(host) {
      await withPg(host, (c) => c.query("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before the stop')"));
    },
    async read(host) {
      return withPg(host, async (c) => (await c.query<{ v: string }>('SELECT v FROM kept')).rows[0]?.v);
    },
  },
  {
    datastore: 'mariadb',
    create: { databases: [{ name: 'shop' }], users: [{ name: 'clerk', password: userPassword, databases: [{ name: 'shop' }] }] },
    async write(host) {
      const c = await createConnection({ host, port: 3306, user: 'clerk', password: userPassword, database: 'shop' });
      try {
        await c.query('CREATE TABLE kept (v varchar(40))');
        await c.query("INSERT INTO kept VALUES ('before the stop')");
      } finally {
        await c.end();
      }
    },
    async read(host) {
      const c = await createConnection({ host, port: 3306, user: 'clerk', password: userPassword, database: 'shop' });
      try {
        const [rows] = await c.query('SELECT v FROM kept');
        return (rows as Array<{ v: string }>)[0]?.v;
      } finally {
        await c.end();
      }
    },
  },
  {
    datastore: 'redis',
    create: { users: [{ name: 'cache', password: userPassword }] },
    async write(host) {
      await withRedis(host, async (r) => void (await r.set('kept', 'before the stop')));
    },
    async read(host) {
      return withRedis(host, async (r) => (await r.get('kept')) ?? undefined);
    },
  },
];

async function withPg<T>(host: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ host, port: 5432, user: 'app', password: userPassword, database: 'app', connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function withRedis<T>(host: string, work: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis({ host, port: 6379, username: 'cache', password: userPassword, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    client.disconnect();
  }
}

async function call(method: string, path: string, body?: unknown) {
  return request<any>(method, trove(admin, path), { token: admin.token, ...(body === undefined ? {} : { body }) });
}

/** Processes under the instance's own directory (engines run from their data directory; Redis renames its title). */
const processesOf = (id: string) => processesMentioning(join(run.dataDir.path, 'instances', id));

const shutoff = (id: string) =>
  waitForInstance(admin, id, (i) => i?.status === 'ERROR' || (i?.status === 'SHUTOFF' && i?.operating_status === 'SHUTDOWN'), 120_000).then(({ instance }) => {
    assert.equal(instance.status, 'SHUTOFF', JSON.stringify(instance.fault));
    return instance;
  });

test('stop and start on PostgreSQL, MariaDB and Redis: data, address and stop kept across a restart of coffer serve', async () => {
  const ids = await Promise.all(
    cases.map(async (c) => {
      const res = await call('POST', '/instances', { instance: { name: `ss-${c.datastore}`, flavorRef: '1', volume: { size: 1 }, datastore: { type: c.datastore }, ...c.create } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      created.add(res.body.instance.id);
      return res.body.instance.id as string;
    }),
  );
  const addresses: string[] = [];
  for (const [i, c] of cases.entries()) {
    const instance = await waitActive(admin, ids[i]!, activeTimeoutMs);
    addresses.push(instance.addresses[0].address);
    await c.write(addresses[i]!);
    assert.ok(processesOf(ids[i]!).length > 0, `${c.datastore}: the engine runs under its instance directory`);
    // Coffer's 409 for a start of a running instance
    const early = await call('POST', `/instances/${ids[i]}/action`, { start: {} });
    assert.equal(early.status, 409, JSON.stringify(early.body));
    assert.match(early.body.conflict.message, /\(instance status was ACTIVE\)\. It is not stopped\.$/);
  }

  // stop: PostgreSQL and MariaDB through the API, Redis through the CLI
  for (const id of ids.slice(0, 2)) assert.equal((await call('POST', `/instances/${id}/action`, { stop: {} })).status, 202);
  const env = { COFFER_CONFIG_DIR: join(run.dataDir.path, 'cli') };
  const login = await runCli(['login', '--url', run.baseUrl, '--user', 'admin', '--project', 'admin', '--password-stdin'], { env, input: `${adminPassword}\n` });
  assert.equal(login.code, 0, login.stderr);
  const cliStop = await runCli(['instance', 'stop', 'ss-redis'], { env });
  assert.equal(cliStop.code, 0, cliStop.stderr + cliStop.stdout);
  assert.match(cliStop.stdout, /^Instance ss-redis stopped; `coffer instance start ss-redis` starts it again\. \(SHUTOFF \/ SHUTDOWN, /);
  for (const [i, c] of cases.entries()) {
    const instance = await shutoff(ids[i]!);
    assert.equal(instance.addresses[0].address, addresses[i], `${c.datastore}: the address is kept`);
    assert.deepEqual(processesOf(ids[i]!), [], `${c.datastore}: no process under the instance directory while stopped`);
    await assert.rejects(c.read(addresses[i]!), `${c.datastore}: nothing answers on the address`);
    const again = await call('POST', `/instances/${ids[i]}/action`, { stop: {} });
    assert.equal(again.status, 409, JSON.stringify(again.body));
    const restart = await call('POST', `/instances/${ids[i]}/action`, { restart: {} });
    assert.equal(restart.status, 422, JSON.stringify(restart.body));
    assert.match(restart.body.unprocessableEntity.message, /It is stopped: start it first\.$/);
  }

  // coffer serve restarts: its agent adopts the instances, and they stay stopped
  const logFile = join(run.dataDir.path, 'coffer.log');
  const logBefore = (await readFile(logFile, 'utf8')).length;
  const logSince = async () => (await readFile(logFile, 'utf8')).slice(logBefore);
  await run.restart();
  await until('every instance adopted by the new agent', async () => {
    const log = await logSince();
    return ids.every((id) => new RegExp(`"instanceId":"${id}"[^\\n]*"desired":"stopped"[^\\n]*"msg":"instance adopted"`).test(log));
  }, 60_000);
  for (const [i, c] of cases.entries()) {
    const instance = await shutoff(ids[i]!);
    assert.equal(instance.addresses[0].address, addresses[i]);
    assert.deepEqual(processesOf(ids[i]!), [], `${c.datastore}: adoption did not start the engine`);
  }
  assert.doesNotMatch(await logSince(), /engine should run but does not: starting it/);

  // start: ACTIVE again, on the same address, with the data written before the stop
  const cliStart = await runCli(['instance', 'start', 'ss-redis'], { env });
  assert.equal(cliStart.code, 0, cliStart.stderr + cliStart.stdout);
  assert.match(cliStart.stdout, /^Instance ss-redis started\. \(ACTIVE \/ HEALTHY, /);
  for (const id of ids.slice(0, 2)) assert.equal((await call('POST', `/instances/${id}/action`, { start: {} })).status, 202);
  for (const [i, c] of cases.entries()) {
    const instance = await waitActive(admin, ids[i]!, activeTimeoutMs);
    assert.equal(instance.addresses[0].address, addresses[i]);
    assert.equal(await c.read(addresses[i]!), 'before the stop', `${c.datastore}: the data is kept`);
    assert.ok(processesOf(ids[i]!).length > 0);
  }

  // a stopped instance is deleted as a running one is: nothing of it is left
  const redisId = ids[2]!;
  assert.equal((await call('POST', `/instances/${redisId}/action`, { stop: {} })).status, 202);
  await shutoff(redisId);
  for (const id of ids) {
    assert.equal((await call('DELETE', `/instances/${id}`)).status, 202);
    await waitForInstance(admin, id, (_i, status) => status === 404, 120_000);
    assert.deepEqual(processesOf(id), []);
    assert.equal(existsSync(join(run.dataDir.path, 'instances', id)), false, 'the instance directory is removed');
    created.delete(id);
  }
});
