// test-lane: parallel (namespaces, a /24, a RabbitMQ node and a data directory of its own; it checks processes under its own directory only)
// test-long (minutes: a broker, three roles and two agents as processes, each in a namespace)
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { request, trove, waitForInstance, type Session } from '../support/api-client.js';
import { startMultiHostCluster, type MultiHostCluster } from '../support/multi-host-cluster.js';
import type { NetnsHost } from '../support/netns-hosts.js';
import { appPassword, createInstance, waitActive } from './instance-lifecycle.js';

// Coffer over several machines, on one (issue 11): a control-plane host and two compute hosts
// (test/support/multi-host-cluster.ts). Instances spread over the compute hosts, listen on their
// host's address, and are reached from the other hosts; a compute host cut off the network and
// plugged back serves again.

let cluster: MultiHostCluster;
let control: NetnsHost;
let computes: readonly NetnsHost[];
let session: Session;

before(async () => {
  cluster = await startMultiHostCluster({ computeHosts: 2, apiPort: 8779, adminPassword: 'Multi-host-admin-1234', prefix: 'cf-mh' });
  ({ control, computes, session } = cluster);
});

after(async () => {
  await cluster?.stop();
});

const placement = (instance: { addresses?: Array<{ address: string; port?: number }> }) => cluster.placement(instance);

/** psql run on `from`, connecting over the network to the instance */
async function psqlFrom(from: NetnsHost, address: string, port: number, sql: string): Promise<string> {
  const out = await from.exec('psql', ['-h', address, '-p', String(port), '-U', 'app', '-d', 'app', '-tAc', sql], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', PGPASSWORD: appPassword, PGCONNECT_TIMEOUT: '3' },
  });
  return out.trim();
}

test('instances spread over the compute hosts, listen on their host’s address and are reached from the other hosts', async () => {
  const first = await waitActive(session, (await createInstance(session, 'mh-first')).id, 120_000);
  const second = await waitActive(session, (await createInstance(session, 'mh-second')).id, 120_000);
  const [a, b] = [placement(first), placement(second)];
  assert.notEqual(a.host.netns, b.host.netns, 'the second instance went to the host that had none');
  assert.ok(a.port >= 30000 && a.port <= 32767, `a port from the instance range: ${a.port}`);

  // the test reaches the first through its host; a client on the other compute host reaches it over the switch
  const client = new pg.Client({ host: '127.0.0.1', port: await a.host.forward(a.port), user: 'app', password: appPassword, database: 'app' });
  await client.connect();
  try {
    await client.query('CREATE TABLE notes (body text NOT NULL)');
    await client.query("INSERT INTO notes VALUES ('written through the relay')");
  } finally {
    await client.end();
  }
  assert.equal(await psqlFrom(b.host, a.host.address, a.port, 'SELECT body FROM notes'), 'written through the relay');
  assert.equal(await psqlFrom(control, b.host.address, b.port, 'SELECT 1'), '1');
});

test('a compute host cut off the network: its instance cannot be reached, the other host serves on; plugged back, it is managed again', async () => {
  const { instances } = (await request<{ instances: Array<{ id: string; name: string }> }>('GET', trove(session, '/instances'), { token: session.token })).body;
  const views = await Promise.all(instances.filter((i) => i.name.startsWith('mh-')).map(async (i) => (await waitForInstance(session, i.id, () => true, 5_000)).instance));
  const [cut, kept] = [views.find((v) => placement(v).host === computes[0]), views.find((v) => placement(v).host === computes[1])];
  assert.ok(cut !== undefined && kept !== undefined, 'one instance on each compute host');
  const at = placement(cut);

  await at.host.linkDown();
  try {
    await assert.rejects(psqlFrom(computes[1]!, at.host.address, at.port, 'SELECT 1'), /timeout|could not connect|Connection timed out/i);
    // the other host's instance takes a change through the control plane meanwhile
    const res = await request('POST', trove(session, `/instances/${kept.id}/databases`), { token: session.token, body: { databases: [{ name: 'while_cut' }] } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    await waitForInstance(session, kept.id, () => true, 5_000);
  } finally {
    await at.host.linkUp();
  }

  // back on the network: its agent takes requests again
  let status = 0;
  for (let attempt = 0; attempt < 30 && status !== 202; attempt++) {
    const res = await request('POST', trove(session, `/instances/${cut.id}/databases`), { token: session.token, body: { databases: [{ name: `after_cut_${attempt}` }] } });
    status = res.status;
    if (status !== 202) await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  assert.equal(status, 202);
  const listed = await request<{ databases: Array<{ name: string }> }>('GET', trove(session, `/instances/${cut.id}/databases`), { token: session.token });
  assert.equal(listed.status, 200);
  assert.ok(listed.body.databases.some((d) => d.name.startsWith('after_cut_')), JSON.stringify(listed.body));
  assert.equal(await psqlFrom(computes[1]!, at.host.address, at.port, 'SELECT 1'), '1', 'reachable again over the switch');
});

test('a replica goes to the other compute host and streams its source’s data over the switch', async () => {
  const source = await waitActive(session, (await createInstance(session, 'mh-source')).id, 120_000);
  const at = placement(source);
  await psqlFrom(control, at.host.address, at.port, "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders VALUES (1), (2)");
  const res = await request<{ instance: { id: string } }>('POST', trove(session, '/instances'), { token: session.token, body: { instance: { name: 'mh-replica', replica_of: source.id } } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const replica = await waitActive(session, res.body.instance.id, 180_000);
  const there = placement(replica);
  assert.notEqual(there.host.netns, at.host.netns, 'anti-affinity: not beside its source');
  assert.equal(replica.replica_of.id, source.id);
  assert.equal(await psqlFrom(control, there.host.address, there.port, 'SELECT count(*) FROM orders'), '2');
  await psqlFrom(control, at.host.address, at.port, 'INSERT INTO orders VALUES (3)');
  let count = '';
  for (let i = 0; i < 50 && count !== '3'; i++) {
    count = await psqlFrom(control, there.host.address, there.port, 'SELECT count(*) FROM orders');
    if (count !== '3') await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.equal(count, '3', 'a row written on the source reaches the replica on the other host');
  await assert.rejects(psqlFrom(control, there.host.address, there.port, 'INSERT INTO orders VALUES (4)'), /read-only transaction/);
});
