// test-lane: parallel (namespaces, a /24, a RabbitMQ node and a data directory of its own; it checks processes under its own directory only)
// test-long (minutes: a broker, three roles and three agents as processes, each in a namespace, and groups failing over)
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { request, trove, waitForInstance, type Session } from '../support/api-client.js';
import { startMultiHostCluster, type MultiHostCluster } from '../support/multi-host-cluster.js';
import { processesMentioning } from '../support/processes.js';
import { appPassword, createInstance, waitActive } from './instance-lifecycle.js';

// Automatic failover on three namespace hosts (issue 11): a PostgreSQL primary with a replica on
// each other host. A writer commits continuously; the primary's host is cut off the network (or
// its agent and engine are killed). The old primary stops its own engine when its lease runs out;
// the taskmanager then promotes the replica furthest ahead and the other replica follows it.
// Measured: the time from the cut to the first write the new primary acknowledges, and the
// acknowledged commits it lacks (none with synchronous replication). The old primary never takes
// a write again as a primary: plugged back, it rejoins as a replica of the new one.

let cluster: MultiHostCluster;
let session: Session;

before(async () => {
  cluster = await startMultiHostCluster({ computeHosts: 3, apiPort: 8781, adminPassword: 'Failover-admin-1234', prefix: 'cf-fo' });
  session = cluster.session;
});

after(async () => {
  await cluster?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function show(id: string): Promise<any> {
  return (await waitForInstance(session, id, () => true, 10_000)).instance;
}

/** a primary (`name`) and two replicas, one on each compute host */
async function group(name: string): Promise<{ primary: any; replicas: any[] }> {
  const primary = await waitActive(session, (await createInstance(session, name)).id, 120_000);
  const replicas = [];
  for (const suffix of ['a', 'b']) {
    const res = await request<{ instance: { id: string } }>('POST', trove(session, '/instances'), { token: session.token, body: { instance: { name: `${name}-${suffix}`, replica_of: primary.id } } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    replicas.push(await waitActive(session, res.body.instance.id, 180_000));
  }
  const hosts = new Set([primary, ...replicas].map((i) => cluster.placement(i).index));
  assert.equal(hosts.size, 3, 'anti-affinity: the primary and each replica on a host of its own');
  return { primary, replicas };
}

/** a client of the instance, reached through its own host (as a client on that machine would) */
async function clientOf(instance: any): Promise<pg.Client> {
  const { host, port } = cluster.placement(instance);
  const client = new pg.Client({ host: '127.0.0.1', port: await host.forward(port), user: 'app', password: appPassword, database: 'app', connectionTimeoutMillis: 3_000, query_timeout: 3_000 });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/**
 * Commits one row after another on `client` until it fails; `acked` holds every id the primary
 * acknowledged. Resolves with the time of the first failure.
 */
function writeUntilRefused(client: pg.Client, acked: number[], firstId: number): Promise<number> {
  return (async () => {
    for (let id = firstId; ; id++) {
      try {
        await client.query('INSERT INTO ticks VALUES ($1)', [id]);
        acked.push(id);
      } catch {
        return Date.now();
      }
    }
  })();
}

/** polls until the group's primary changed: the new primary's view, once `oldId` names it as its source */
async function newPrimaryOf(oldId: string, timeoutMs: number): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const old = await show(oldId);
    if (old.replica_of?.id !== undefined) return show(old.replica_of.id);
    assert.ok(Date.now() < deadline, `no failover within ${timeoutMs / 1000} s: ${JSON.stringify({ status: old.status, fault: old.fault })}`);
    await sleep(100);
  }
}

/** the first write the new primary acknowledges, retried until then; answers its time */
async function firstWrite(instance: any, id: number): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      const client = await clientOf(instance);
      try {
        await client.query('INSERT INTO ticks VALUES ($1)', [id]);
        return Date.now();
      } finally {
        await client.end().catch(() => undefined);
      }
    } catch (err) {
      assert.ok(attempt < 200, `the new primary never took a write: ${String(err)}`);
      await sleep(50);
    }
  }
}

async function missingOn(instance: any, acked: readonly number[]): Promise<number[]> {
  const client = await clientOf(instance);
  try {
    const { rows } = await client.query<{ id: number }>('SELECT id FROM ticks');
    const present = new Set(rows.map((row) => row.id));
    return acked.filter((id) => !present.has(id));
  } finally {
    await client.end();
  }
}

/** the old primary, on its own host, refuses every write: its engine is down or read-only */
async function refusesWrites(instance: any): Promise<void> {
  let client: pg.Client | undefined;
  try {
    client = await clientOf(instance);
  } catch {
    return; // not even listening
  }
  try {
    await assert.rejects(client.query('INSERT INTO ticks VALUES (-1)'), /read-only|terminat|shut|connection|timeout/i);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function waitRejoined(oldId: string, newId: string, timeoutMs: number): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const old = await show(oldId);
    if (old.replica_of?.id === newId && old.status === 'ACTIVE' && old.operating_status === 'HEALTHY') return old;
    assert.ok(Date.now() < deadline, `the old primary did not rejoin: ${JSON.stringify({ status: old.status, operating_status: old.operating_status, fault: old.fault })}`);
    await sleep(500);
  }
}

async function events(id: string): Promise<Array<{ type: string; name: string; message: string | null }>> {
  const res = await request<{ events: Array<{ type: string; name: string; message: string | null }> }>('GET', trove(session, `/instances/${id}/events`), { token: session.token });
  assert.equal(res.status, 200);
  return res.body.events;
}

test('PostgreSQL: the primary’s host cut off the network: a replica takes writes within seconds, the old primary never does, and back on the network it rejoins as a replica', async () => {
  const { primary, replicas } = await group('fo-pg');
  const setup = await clientOf(primary);
  await setup.query('CREATE TABLE ticks (id int PRIMARY KEY)');
  const acked: number[] = [];
  const refused = writeUntilRefused(setup, acked, 1);
  while (acked.length < 200) await sleep(20);

  const at = cluster.placement(primary);
  const cutAt = Date.now();
  await at.host.linkDown();
  try {
    const refusedAt = await refused;
    await setup.end().catch(() => undefined);
    const promoted = await newPrimaryOf(primary.id, 60_000);
    assert.ok(replicas.some((r) => r.id === promoted.id), 'a replica became the primary');
    const writtenAt = await firstWrite(promoted, 1_000_000);
    const missing = await missingOn(promoted, acked);
    console.log(
      `failover (postgresql, asynchronous, link down): old primary refused writes ${refusedAt - cutAt} ms after the cut; ` +
        `writes accepted on the new primary ${writtenAt - cutAt} ms after it; acknowledged ${acked.length}, missing on the new primary ${missing.length}`,
    );
    // asynchronous: what is missing is the last of what the old primary acknowledged, nothing before
    assert.deepEqual(missing, acked.slice(acked.length - missing.length), 'only a tail of the acknowledged commits is missing');

    // fenced: the old primary, reached on its own host, takes no write
    await refusesWrites(primary);
    const other = replicas.find((r) => r.id !== promoted.id)!;
    assert.equal((await show(other.id)).replica_of?.id, promoted.id, 'the other replica names the new primary');
    const failovers = (await events(promoted.id)).filter((e) => e.type === 'replication.failover');
    assert.equal(failovers.length, 1);
    assert.match(failovers[0]!.message ?? '', /takes writes/);

    // the other replica streams from the new primary
    const check = await clientOf(promoted);
    await check.query('INSERT INTO ticks VALUES (2000000)');
    await check.end();
    let seen = false;
    for (let i = 0; i < 100 && !seen; i++) {
      const c = await clientOf(other);
      seen = (await c.query('SELECT 1 FROM ticks WHERE id = 2000000')).rowCount === 1;
      await c.end();
      if (!seen) await sleep(100);
    }
    assert.ok(seen, 'a row written on the new primary reaches the other replica');
  } finally {
    await at.host.linkUp();
  }

  // plugged back: it rejoins as a replica of the new primary, with what the new primary has
  const promotedId = (await show(primary.id)).replica_of.id as string;
  await waitRejoined(primary.id, promotedId, 120_000);
  await refusesWrites(primary);
  const back = await clientOf(primary);
  let has = false;
  for (let i = 0; i < 100 && !has; i++) {
    has = (await back.query('SELECT 1 FROM ticks WHERE id = 1000000')).rowCount === 1;
    if (!has) await sleep(100);
  }
  await back.end();
  assert.ok(has, 'the rejoined old primary streams the new primary’s writes');
  assert.ok((await events(primary.id)).some((e) => e.type === 'replication.rejoined'));
});

test('PostgreSQL, synchronous: the primary’s agent and engine killed, no acknowledged commit is lost; the agent back, the old primary rejoins', async () => {
  const { primary } = await group('fo-pgs');
  const setting = await request<any>('PATCH', trove(session, `/instances/${primary.id}/replication`), { token: session.token, body: { replication: { synchronous: true } } });
  assert.equal(setting.status, 200, JSON.stringify(setting.body));
  assert.equal(setting.body.replication.synchronous, true);
  const setup = await clientOf(primary);
  await setup.query('CREATE TABLE ticks (id int PRIMARY KEY)');
  const acked: number[] = [];
  const refused = writeUntilRefused(setup, acked, 1);
  while (acked.length < 200) await sleep(20);

  const at = cluster.placement(primary);
  const cutAt = Date.now();
  // the host dies: its agent and every engine it ran
  await cluster.agents[at.index]!.kill();
  for (const pid of processesMentioning(cluster.agentDir(at.index))) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await refused;
  await setup.end().catch(() => undefined);
  const promoted = await newPrimaryOf(primary.id, 60_000);
  const writtenAt = await firstWrite(promoted, 1_000_000);
  const missing = await missingOn(promoted, acked);
  console.log(
    `failover (postgresql, synchronous, host killed): writes accepted on the new primary ${writtenAt - cutAt} ms after the kill; ` +
      `acknowledged ${acked.length}, missing on the new primary ${missing.length}`,
  );
  assert.deepEqual(missing, [], 'synchronous: every acknowledged commit is on the new primary');
  assert.equal((await request<any>('GET', trove(session, `/instances/${promoted.id}/replication`), { token: session.token })).body.replication.synchronous, true, 'the group keeps its setting');

  await cluster.restartAgent(at.index);
  await waitRejoined(primary.id, promoted.id, 120_000);
  await refusesWrites(primary);

  // its replicas detached one by one, the primary is left without any: it stops waiting for one
  for (const replica of (await show(promoted.id)).replicas as Array<{ id: string }>) {
    const res = await request('PUT', trove(session, `/instances/${replica.id}`), { token: session.token, body: { instance: { replica_of: null } } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    await waitForInstance(session, replica.id, (i) => i?.status === 'ACTIVE' && i.replica_of === undefined, 60_000);
  }
  const alone = await request<any>('GET', trove(session, `/instances/${promoted.id}/replication`), { token: session.token });
  assert.equal(alone.body.replication.synchronous, false, 'no replica left: not synchronous any more');
  const client = await clientOf(promoted);
  await client.query('INSERT INTO ticks VALUES (3000000)');
  await client.end();
});
