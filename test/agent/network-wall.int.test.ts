// test-lane: alone (it checks the whole `inet coffer` table and processes by uid after userdel, and uids are reused by the next useradd anywhere: no agent may run beside it)
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import { lookupUser } from '../../src/agent/engine-user.js';
import { LocalProcessRunner } from '../../src/agent/index.js';
import { removeInstanceUser } from '../../src/agent/instance-user.js';
import { NetworkWall } from '../../src/agent/network-wall.js';
import { silentLogger } from '../../src/common/logger.js';
import { agentContract, agentTopic, createRpcClient, guestContract, guestTopic, type RpcClient, type ServerInfo } from '../../src/bus/index.js';
import { withAdminClient } from '../../src/guest/engines/postgresql/admin.js';
import { suffix } from '../guest/engine-fixture.js';
import { agentHarness, engine, flavor } from './agent-harness.js';

// The attack of issue 8, as a tenant who enabled root would make it: a program running as its
// engine's OS user (through PostgreSQL's COPY ... PROGRAM, or run directly as that user for
// MariaDB and Redis, since the threat is "any program as the engine's OS user") tries the bus,
// the state databases, the API's port and another instance. The wall (nftables, as root) lets
// it reach its own instance's address and nothing else. The same probe run as root first
// shows that each target really answers, so each refusal is the wall's doing.

const run = promisify(execFile);
const notRoot = process.getuid?.() !== 0 && 'only root gives each instance an OS user of its own and can set nftables';

/** Tries each target (tcp:host:port, udp:host:port, unix:path) and prints what happened to each, as JSON. */
const probeSource = `
const net = require('node:net');
const dgram = require('node:dgram');
const tryTarget = (target) => new Promise((resolve) => {
  const [kind, ...rest] = target.split(':');
  const done = (result) => resolve([target, result]);
  if (kind === 'udp') {
    const port = Number(rest.pop()); const host = rest.join(':');
    const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    socket.send('x', port, host, (err) => { socket.close(); done(err ? 'refused:' + err.code : 'open'); });
    return;
  }
  const options = kind === 'unix' ? { path: rest.join(':') } : { port: Number(rest.pop()), host: rest.join(':') };
  const socket = net.connect(options);
  socket.setTimeout(5000, () => { socket.destroy(); done('refused:timeout'); });
  socket.once('connect', () => { socket.destroy(); done('open'); });
  socket.once('error', (err) => done('refused:' + err.code));
});
Promise.all(process.argv.slice(2).map(tryTarget)).then((results) => console.log(JSON.stringify(Object.fromEntries(results))));
`;

type ProbeResults = Record<string, string>;
/** this very Node.js: the engines' users must be able to run it (a Node.js installed under /root would not do) */
const node = process.execPath;

function listen(host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => resolve(server));
  });
}

/** Pids (not zombies) whose uid is `uid`. */
async function processesOf(uid: number): Promise<number[]> {
  const found: number[] = [];
  for (const pid of (await readdir('/proc')).filter((name) => /^\d+$/.test(name))) {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    if (/^State:\s+Z/m.test(status)) continue;
    if (new RegExp(`^Uid:\\s+${uid}\\s`, 'm').test(status)) found.push(Number(pid));
  }
  return found;
}

/** The uids in Coffer's wall (the keys of its map of uids to their chains). */
async function walledUids(): Promise<number[]> {
  const { stdout } = await run('nft', ['-j', 'list', 'map', 'inet', 'coffer', 'walls']);
  const parsed = JSON.parse(stdout) as { nftables: { map?: { elem?: [number, unknown][] } }[] };
  return parsed.nftables.flatMap((item) => item.map?.elem ?? []).map(([uid]) => uid);
}

/** A wall lost, as after an operator's flush: the uid's packets no longer go to its chain. */
async function dropWall(uid: number): Promise<void> {
  await run('nft', ['delete', 'element', 'inet', 'coffer', 'walls', `{ ${uid} }`]);
}

describe('network wall', { skip: notRoot }, () => {
  const { transport, beat, beats, newAgent, prepared } = agentHarness('coffer-wall-');
  let probeDir: string;
  let probe: string;
  // stand-ins for Coffer's API port and anything else on loopback: a packet filter judges the
  // address and port, not what listens there
  let api: Server;
  let ipv6: Server;
  // as a broker listens by default: on every address, the instances' own included
  let everywhere: Server;

  before(async () => {
    probeDir = await mkdtemp(join(tmpdir(), 'coffer-wall-probe-'));
    await chmod(probeDir, 0o755);
    probe = join(probeDir, 'probe.cjs');
    await writeFile(probe, probeSource, { mode: 0o644 });
    api = await listen('127.0.0.1');
    ipv6 = await listen('::1');
    everywhere = await listen('0.0.0.0');
  });

  /** uids this suite walled, taken out again even when a test fails half way (uids are reused) */
  const walled = new Set<number>();

  after(async () => {
    const wall = new NetworkWall(new LocalProcessRunner(undefined));
    for (const uid of walled) await wall.remove(uid);
    api.close();
    ipv6.close();
    everywhere.close();
    await rm(probeDir, { recursive: true, force: true });
  });

  const probeArgs = (targets: string[]) => [probe, ...targets];
  const asRoot = async (targets: string[]) => JSON.parse((await run(node, probeArgs(targets))).stdout) as ProbeResults;
  const asUser = async (user: string, targets: string[]) =>
    JSON.parse((await run('runuser', ['-u', user, '--', node, ...probeArgs(targets)], { timeout: 30_000 })).stdout) as ProbeResults;

  /** Creates and prepares an instance of `manager`, resolves once it is HEALTHY. */
  async function preparedOf(agentRpc: RpcClient<typeof agentContract>, manager: string, version: string) {
    const instanceId = `wall-${manager.slice(0, 2)}-${suffix()}`;
    const server = await agentRpc.createServer({ instanceId, engine: { manager, version }, flavor, volumeSizeGb: 1 });
    const mark = beats.length;
    await createRpcClient(transport, guestContract, guestTopic(instanceId)).prepare({ memoryMb: flavor.ramMb, adminPassword: `adm-${suffix()}` });
    await beat(instanceId, 'HEALTHY', mark, 60_000);
    return server;
  }

  it("lets a program run as an engine's OS user reach its own instance and nothing else, on every engine", async (t) => {
    const { agent, options } = await newAgent({ warmPoolSize: 0 });
    const agentRpc = createRpcClient(transport, agentContract, agentTopic(options.host));
    const instanceDir = (id: string) => join(options.dataDir, 'instances', id);
    const osUserOf = async (id: string) => (JSON.parse(await readFile(join(instanceDir(id), 'instance.json'), 'utf8')) as { osUser: string }).osUser;

    const aId = `wall-pg-${suffix()}`;
    const aPassword = `adm-${suffix()}`;
    const a = await prepared(agentRpc, aId, aPassword);
    const bId = `wall-pg-${suffix()}`;
    const b = await prepared(agentRpc, bId, `adm-${suffix()}`);
    const m = await preparedOf(agentRpc, 'mariadb', '10.11');
    const r = await preparedOf(agentRpc, 'redis', '7.0');
    const bSocket = join(instanceDir(bId), 'data', '.s.PGSQL.5432');
    // each engine's admin socket, which only its own user may reach
    const sockets = new Map([
      [a.instanceId, join(instanceDir(aId), 'data', '.s.PGSQL.5432')],
      [b.instanceId, bSocket],
      [m.instanceId, join(instanceDir(m.instanceId), 'data', 'mysqld.sock')],
      [r.instanceId, join(instanceDir(r.instanceId), 'data', 'redis.sock')],
    ]);

    const apiPort = (api.address() as AddressInfo).port;
    const ipv6Port = (ipv6.address() as AddressInfo).port;
    const everywherePort = (everywhere.address() as AddressInfo).port;
    const outside = (self: ServerInfo, other: ServerInfo) => [
      'tcp:127.0.0.1:5672', // RabbitMQ
      'tcp:127.0.0.1:5432', // the PostgreSQL state database
      'tcp:127.0.0.1:3306', // the MariaDB state database
      `tcp:127.0.0.1:${apiPort}`, // the API
      `tcp:::1:${ipv6Port}`, // IPv6 loopback
      `tcp:${other.address}:${other.port}`, // another instance
      `tcp:${self.address}:${everywherePort}`, // a service bound to every address, at the instance's own
      `udp:127.0.0.1:${apiPort}`,
      `udp:::1:${ipv6Port}`,
    ].filter((target) => !target.endsWith(`${self.address}:${self.port}`));
    const own = (self: ServerInfo) => `tcp:${self.address}:${self.port}`;

    // the probe itself works: as root every target answers (UDP only says it was sent)
    const control = await asRoot([...outside(a, b), own(a), ...[...sockets.values()].map((path) => `unix:${path}`)]);
    for (const [target, result] of Object.entries(control)) assert.equal(result, 'open', `as root ${target}`);

    for (const [self, other] of [
      [a, b],
      [b, m],
      [m, r],
      [r, a],
    ] as const) {
      const user = await osUserOf(self.instanceId);
      const socketTargets = [...sockets].map(([id, path]) => [id, `unix:${path}`] as const);
      const results = await asUser(user, [...outside(self, other), own(self), ...socketTargets.map(([, target]) => target)]);
      t.diagnostic(`${user}: ${JSON.stringify(results)}`);
      assert.equal(results[own(self)], 'open', `${user} reaches its own instance`);
      for (const target of outside(self, other)) assert.match(results[target]!, /^refused:E(CONNREFUSED|PERM|ACCES)/, `${user} to ${target}`);
      for (const [id, target] of socketTargets) {
        if (id === self.instanceId) assert.equal(results[target], 'open', `${user} reaches its own socket`);
        else assert.match(results[target]!, /^refused:EACCES/, `${user} to ${target}`);
      }
    }

    // the host's engine user, which fills the warm pool, reaches nothing at all
    const poolUid = (await lookupUser('coffer-db'))!.uid;
    walled.add(poolUid);
    assert.ok((await walledUids()).includes(poolUid));
    const pool = await asUser('coffer-db', outside(a, b));
    for (const target of outside(a, b)) assert.match(pool[target]!, /^refused:/, `coffer-db to ${target}`);

    // the same through PostgreSQL's COPY ... FROM PROGRAM, as a tenant's superuser runs it
    const endpoint = { socketDir: join(instanceDir(aId), 'data'), port: a.port, password: aPassword };
    const targets = [...outside(a, b), own(a), `unix:${bSocket}`];
    const fromEngine = await withAdminClient(endpoint, 'postgres', async (client: Client) => {
      await client.query('CREATE TEMP TABLE out (line text)');
      await client.query(`COPY out FROM PROGRAM '${node} ${probe} ${targets.join(' ')}'`);
      return JSON.parse((await client.query<{ line: string }>('SELECT line FROM out')).rows[0]!.line) as ProbeResults;
    });
    assert.equal(fromEngine[own(a)], 'open');
    for (const target of [...outside(a, b), `unix:${bSocket}`]) assert.match(fromEngine[target]!, /^refused:/, `COPY FROM PROGRAM to ${target}`);

    // clients and the guest still reach every instance (replies to connections others open pass)
    const app = new Client({ host: a.address, port: a.port, user: 'app', password: 'app-Secret-1', database: 'appdb' });
    await app.connect();
    assert.deepEqual((await app.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
    await app.end();

    // nothing in what any user sees in ps names an instance: not the engines' command lines, not their users
    const ids = [a, b, m, r].map((server) => server.instanceId);
    const { stdout: ps } = await run('runuser', ['-u', 'nobody', '--', 'ps', '-eo', 'user:32,args']);
    for (const server of [a, b, m, r]) {
      const user = await osUserOf(server.instanceId);
      assert.ok(ps.includes(user), `${user}'s engine shows in ps`);
      for (const id of ids) {
        assert.ok(!ps.includes(id), `ps shows ${id}`);
        assert.ok(!user.includes(id.replaceAll('-', '').slice(-12)), `${user} carries part of ${id}`);
      }
    }

    // a wall lost (as after a reboot, or an operator's flush) is put up again when an agent adopts the instance
    const uids = await Promise.all([a, b, m, r].map(async (server) => (await lookupUser(await osUserOf(server.instanceId)))!.uid));
    for (const uid of uids) walled.add(uid);
    for (const uid of uids) assert.ok((await walledUids()).includes(uid), `uid ${uid} is walled`);
    await dropWall(uids[0]!);
    assert.ok(!(await walledUids()).includes(uids[0]!));
    await agent.stop();
    // adoption runs in the background once the agent has started
    await (await newAgent({ dataDir: options.dataDir, host: options.host, addressPool: options.addressPool, warmPoolSize: 0 })).agent.adopted;
    assert.ok((await walledUids()).includes(uids[0]!), 'walled again at adoption');
    assert.match((await asUser(await osUserOf(aId), ['tcp:127.0.0.1:5672']))['tcp:127.0.0.1:5672']!, /^refused:/);

    // delete takes each user out of the wall once nothing runs as it
    for (const [i, server] of [a, b, m, r].entries()) {
      assert.deepEqual(await agentRpc.deleteServer({ instanceId: server.instanceId }), { deleted: true });
      assert.ok(!(await walledUids()).includes(uids[i]!), `uid ${uids[i]} left the wall`);
    }
  });

  it('adopts, walls and deletes an instance whose OS user is named after its id, as before random names', async () => {
    const { agent, options } = await newAgent({ warmPoolSize: 0 });
    const agentRpc = createRpcClient(transport, agentContract, agentTopic(options.host));
    const instanceId = `0123456789ab-wall-${suffix()}`;
    // not prepared yet: usermod renames no user that runs a process
    const server = await agentRpc.createServer({ instanceId, engine, flavor, volumeSizeGb: 1 });
    await agent.stop();
    // what the agent made before: `coffer-` and the start of the id (a stray one from an earlier run is removed first)
    const recordFile = join(options.dataDir, 'instances', instanceId, 'instance.json');
    const record = JSON.parse(await readFile(recordFile, 'utf8')) as { osUser: string };
    const oldName = 'coffer-0123456789ab';
    await removeInstanceUser(oldName, silentLogger());
    await run('usermod', ['-l', oldName, record.osUser]);
    await run('groupmod', ['-n', oldName, record.osUser]);
    await writeFile(recordFile, JSON.stringify({ ...record, osUser: oldName }), { mode: 0o600 });
    const uid = (await lookupUser(oldName))!.uid;
    walled.add(uid);
    await dropWall(uid);

    await (await newAgent({ dataDir: options.dataDir, host: options.host, addressPool: options.addressPool, warmPoolSize: 0 })).agent.adopted;
    assert.ok((await walledUids()).includes(uid), 'walled at adoption');
    const mark = beats.length;
    await createRpcClient(transport, guestContract, guestTopic(instanceId)).prepare({ memoryMb: flavor.ramMb, adminPassword: `adm-${suffix()}` });
    await beat(instanceId, 'HEALTHY', mark, 60_000);
    const results = await asUser(oldName, ['tcp:127.0.0.1:5672', `tcp:${server.address}:${server.port}`]);
    assert.deepEqual(results, { 'tcp:127.0.0.1:5672': 'refused:ECONNREFUSED', [`tcp:${server.address}:${server.port}`]: 'open' });
    assert.deepEqual(await agentRpc.deleteServer({ instanceId }), { deleted: true });
    assert.equal(await lookupUser(oldName), undefined, 'the old-style user is removed');
    assert.deepEqual(await processesOf(uid), []);
    assert.ok(!(await walledUids()).includes(uid));
  });

  it('fails closed: without nftables a create fails with a fault that says what to install, and nothing runs as the instance user', async () => {
    const { options } = await newAgent({ warmPoolSize: 0, nftPath: '/nonexistent/nft' });
    const agentRpc = createRpcClient(transport, agentContract, agentTopic(options.host));
    const instanceId = `wall-closed-${suffix()}`;
    // the wall goes up beside the create (agent.ts): the create is placed, its prepare fails with why
    await agentRpc.createServer({ instanceId, engine, flavor, volumeSizeGb: 1 });
    const mark = beats.length;
    await createRpcClient(transport, guestContract, guestTopic(instanceId)).prepare({ memoryMb: flavor.ramMb, adminPassword: `adm-${suffix()}` });
    const failed = beats[await beat(instanceId, 'FAILED', mark, 60_000)]!;
    assert.match(failed.message ?? '', /network wall .* could not be put up/);
    assert.match(failed.message ?? '', /apt-get install nftables/);
    const dir = join(options.dataDir, 'instances', instanceId);
    const { osUser } = JSON.parse(await readFile(join(dir, 'instance.json'), 'utf8')) as { osUser: string };
    const identity = (await lookupUser(osUser))!;
    assert.deepEqual(await processesOf(identity.uid), [], 'nothing runs as the instance user');
    // the host made the data directory for initdb, which never ran in it
    assert.deepEqual(await readdir(join(dir, 'data')).catch(() => []), [], 'no initdb ran');
    // and the instance whose wall never went up is still deleted cleanly
    assert.deepEqual(await agentRpc.deleteServer({ instanceId }), { deleted: true });
    assert.equal(await lookupUser(osUser), undefined);
  });
});
