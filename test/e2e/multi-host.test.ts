// test-lane: parallel (namespaces, a /24, a RabbitMQ node and a data directory of its own; it checks processes under its own directory only)
// test-long (minutes: a broker, three roles and two agents as processes, each in a namespace)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { request, trove, waitForInstance, type Session } from '../support/api-client.js';
import { startRole, type RoleProcess } from '../support/coffer-process.js';
import { createHostNetwork, type HostNetwork, type NetnsHost } from '../support/netns-hosts.js';
import { processesMentioning } from '../support/processes.js';
import { startRabbitmqNode, type RabbitmqNode } from '../support/rabbitmq-node.js';
import { makeDataDir } from '../support/temp-dir.js';
import { adminSession, appPassword, createInstance, waitActive } from './instance-lifecycle.js';

// Coffer over several machines, on one (issue 11): a control-plane host (RabbitMQ, the state
// database, the API, conductor and taskmanager) and two compute hosts, each a network namespace
// on a switch, each running its own `coffer agent --host-address` that reaches the bus over the
// network. Instances spread over the compute hosts, listen on their host's address, and are
// reached from the other hosts; a compute host cut off the network and plugged back serves again.

const adminPassword = 'Multi-host-admin-1234';
const apiPort = 8779;
let net: HostNetwork;
let control: NetnsHost;
let computes: NetnsHost[];
let rabbit: RabbitmqNode;
let dataDir: { path: string; remove: () => Promise<void> };
let session: Session;
const roles: RoleProcess[] = [];

before(async () => {
  net = await createHostNetwork(3);
  control = net.hosts[0]!;
  computes = net.hosts.slice(1);
  rabbit = await startRabbitmqNode({ host: control });
  dataDir = await makeDataDir('cf-mh');
  const busKeyFile = join(dataDir.path, 'bus.key');
  await writeFile(busKeyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  const env = {
    COFFER_DATABASE_URL: `sqlite:${join(dataDir.path, 'state.db')}`,
    COFFER_BUS_URL: rabbit.url,
    COFFER_BUS_KEY_FILE: busKeyFile,
    COFFER_ADMIN_PASSWORD: adminPassword,
    COFFER_LOG_LEVEL: 'info',
  };
  const start = async (args: string[], host: NetnsHost, ready: RegExp) => {
    const role = startRole(args, env, { host });
    roles.push(role);
    await role.waitFor(ready, 90_000);
  };
  // the state database is created by the first role that opens it
  await start(['conductor'], control, /conductor running/);
  await start(['taskmanager'], control, /taskmanager running/);
  await mkdir(join(dataDir.path, 'api'));
  await start(['api', '--host', control.address, '--port', String(apiPort), '--data-dir', join(dataDir.path, 'api')], control, /api listening/);
  for (const [i, host] of computes.entries()) {
    // short: instances keep their engine's Unix socket below it
    const dir = join(dataDir.path, `h${i + 1}`);
    await mkdir(dir);
    await start(['agent', '--data-dir', dir, '--agent-host', host.netns, '--host-address', host.address], host, /agent running/);
  }
  session = await adminSession(`http://127.0.0.1:${await control.forward(apiPort)}`, adminPassword);
});

after(async () => {
  for (const role of roles.reverse()) await role.stop().catch(() => undefined);
  // engines outlive their agent by design: what this test started goes with its namespaces
  await net?.remove();
  await rabbit?.stop().catch(() => undefined);
  for (const pid of processesMentioning(dataDir.path)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await dataDir?.remove();
});

/** where an instance landed: the compute host whose address its view shows, and its port */
function placement(instance: { addresses?: Array<{ address: string; port?: number }> }): { host: NetnsHost; port: number } {
  const entry = instance.addresses?.[0];
  assert.ok(entry !== undefined && entry.port !== undefined, `the view shows an address and a port: ${JSON.stringify(instance.addresses)}`);
  const host = computes.find((h) => h.address === entry.address);
  assert.ok(host !== undefined, `${entry.address} is one of the compute hosts'`);
  return { host, port: entry.port };
}

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
