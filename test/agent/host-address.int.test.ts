// test-lane: serial (as root it adds and removes OS users and walls them; ports from a random range of 127.0.0.1)
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as tcpConnect, createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import { agentContract, agentTopic, createRpcClient, guestContract, guestTopic, type ServerInfo } from '../../src/bus/index.js';
import { withAdminClient } from '../../src/guest/engines/postgresql/admin.js';
import { suffix } from '../guest/engine-fixture.js';
import { agentHarness } from './agent-harness.js';

// An agent in host-address mode, as on a host of several: every engine listens on the host's own
// address (127.0.0.1 here) with a port of its own from the configured range, instead of on a
// loopback address of its own with the standard port. Real PostgreSQL: clients reach each
// instance at address:port, TLS verifies the instance by that address, a restarted agent adopts
// them at the same ports, and the network wall still lets an engine's OS user (here through
// PostgreSQL's COPY ... PROGRAM, as a tenant's superuser would) reach its own port and nothing
// else: not the other instance on the same address, not the control plane's ports. Redis takes
// two ports (plaintext, then TLS), MariaDB one.

const run = promisify(execFile);
const notRoot = process.getuid?.() !== 0 && 'only root gives each instance an OS user of its own and can set nftables';

/** Connects to each host:port target and prints 'open' or the error code, as JSON. */
const probeSource = `
const net = require('node:net');
const tryTarget = (target) => new Promise((resolve) => {
  const i = target.lastIndexOf(':');
  const socket = net.connect({ host: target.slice(0, i), port: Number(target.slice(i + 1)) });
  socket.setTimeout(5000, () => { socket.destroy(); resolve([target, 'timeout']); });
  socket.once('connect', () => { socket.destroy(); resolve([target, 'open']); });
  socket.once('error', (err) => resolve([target, err.code]));
});
Promise.all(process.argv.slice(2).map(tryTarget)).then((r) => console.log(JSON.stringify(Object.fromEntries(r))));
`;

function listen(host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => resolve(server));
  });
}

describe('agent with a host address', { skip: notRoot }, () => {
  const { transport, beat, beats, newAgent, prepared } = agentHarness('coffer-hostaddr-');
  // a random block of 50 in 43000-49999, so parallel runs rarely meet
  const first = 43_000 + Math.floor(Math.random() * 140) * 50;
  const instancePorts = `${first}-${first + 49}`;
  let probeDir: string;
  let probe: string;
  // a stand-in for the API or the bus: on the host's address, at a port the instances do not have
  let controlPlane: Server;

  before(async () => {
    probeDir = await mkdtemp(join(tmpdir(), 'coffer-hostaddr-probe-'));
    await chmod(probeDir, 0o755);
    probe = join(probeDir, 'probe.cjs');
    await writeFile(probe, probeSource, { mode: 0o644 });
    controlPlane = await listen('127.0.0.1');
  });

  after(async () => {
    controlPlane.close();
    await rm(probeDir, { recursive: true, force: true });
  });

  it('runs PostgreSQL on the host address at a port each, walled, verified by TLS and adopted at the same ports', async () => {
    const { agent, options } = await newAgent({ hostAddress: '127.0.0.1', instancePorts, warmPoolSize: 0 });
    const agentRpc = createRpcClient(transport, agentContract, agentTopic(options.host));
    const aPassword = `adm-${suffix()}`;
    const a = await prepared(agentRpc, `host-a-${suffix()}`, aPassword);
    const b = await prepared(agentRpc, `host-b-${suffix()}`, `adm-${suffix()}`);
    for (const server of [a, b]) {
      assert.equal(server.address, '127.0.0.1');
      assert.ok(server.port >= first && server.port <= first + 49, `port ${server.port} in ${instancePorts}`);
    }
    assert.notEqual(a.port, b.port);

    // clients reach each instance at the host's address and its own port, and it is that instance
    const query = async (server: ServerInfo, sql: string, ssl?: { ca: string }) => {
      const client = new Client({ host: server.address, port: server.port, user: 'app', password: 'app-Secret-1', database: 'appdb', ...(ssl === undefined ? {} : { ssl }) });
      await client.connect();
      try {
        return (await client.query(sql)).rows;
      } finally {
        await client.end();
      }
    };
    await query(a, 'CREATE TABLE marker (v text)');
    await query(a, "INSERT INTO marker VALUES ('a')");
    assert.deepEqual(await query(a, 'SELECT v FROM marker'), [{ v: 'a' }]);
    await assert.rejects(query(b, 'SELECT v FROM marker'), /relation "marker" does not exist/);
    assert.deepEqual(await query(a, "SELECT current_setting('port') AS port"), [{ port: String(a.port) }]);

    // TLS: the certificate names the address, and the client verifies it (verify-full) at the instance's port
    const ca = await readFile(join(options.dataDir, 'ca', 'ca.crt'), 'utf8');
    assert.deepEqual(await query(a, 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()', { ca }), [{ ssl: true }]);

    // the wall: a's engine user reaches a's port and nothing else on the same address
    const controlPort = (controlPlane.address() as AddressInfo).port;
    const own = `127.0.0.1:${a.port}`;
    const others = [`127.0.0.1:${b.port}`, `127.0.0.1:${controlPort}`];
    const asRoot = JSON.parse((await run(process.execPath, [probe, own, ...others])).stdout) as Record<string, string>;
    for (const target of [own, ...others]) assert.equal(asRoot[target], 'open', `as root ${target}`);
    const endpoint = { socketDir: join(options.dataDir, 'instances', a.instanceId, 'data'), port: a.port, password: aPassword };
    const fromEngine = await withAdminClient(endpoint, 'postgres', async (client: Client) => {
      await client.query('CREATE TEMP TABLE out (line text)');
      await client.query(`COPY out FROM PROGRAM '${process.execPath} ${probe} ${[own, ...others].join(' ')}'`);
      return JSON.parse((await client.query<{ line: string }>('SELECT line FROM out')).rows[0]!.line) as Record<string, string>;
    });
    assert.equal(fromEngine[own], 'open', 'its own port');
    for (const target of others) assert.match(fromEngine[target]!, /^E(CONNREFUSED|PERM|ACCES)/, `COPY FROM PROGRAM to ${target}`);

    // a restarted agent adopts both at their ports; a new instance gets neither
    await agent.stop();
    const restarted = await newAgent({ dataDir: options.dataDir, host: options.host, hostAddress: '127.0.0.1', instancePorts, warmPoolSize: 0 });
    await restarted.agent.adopted;
    const listed = await agentRpc.listServers({});
    for (const server of [a, b]) assert.deepEqual(listed.find((s) => s.instanceId === server.instanceId), server);
    assert.deepEqual(await query(a, 'SELECT v FROM marker'), [{ v: 'a' }]);
    const c = await agentRpc.createServer({ instanceId: `host-c-${suffix()}`, engine: { manager: 'postgresql', version: '15' }, flavor: { id: 'small', ramMb: 512, vcpus: 1 }, volumeSizeGb: 1 });
    assert.equal(c.address, '127.0.0.1');
    assert.ok(![a.port, b.port].includes(c.port), `c's port ${c.port} is its own`);

    for (const server of [a, b, c]) assert.deepEqual(await agentRpc.deleteServer({ instanceId: server.instanceId }), { deleted: true });
    await assert.rejects(query(a, 'SELECT 1'), /ECONNREFUSED/);
  });

  it("gives Redis two ports (plaintext and TLS) and MariaDB one, on the host's address", async () => {
    const { options } = await newAgent({ hostAddress: '127.0.0.1', instancePorts, warmPoolSize: 0 });
    const agentRpc = createRpcClient(transport, agentContract, agentTopic(options.host));
    const preparedOf = async (manager: string, version: string) => {
      const instanceId = `host-${manager.slice(0, 2)}-${suffix()}`;
      const server = await agentRpc.createServer({ instanceId, engine: { manager, version }, flavor: { id: 'small', ramMb: 512, vcpus: 1 }, volumeSizeGb: 1 });
      const mark = beats.length;
      await createRpcClient(transport, guestContract, guestTopic(instanceId)).prepare({ memoryMb: 512, adminPassword: `adm-${suffix()}` });
      await beat(instanceId, 'HEALTHY', mark, 120_000);
      return server;
    };
    const opens = (port: number) =>
      new Promise<boolean>((resolve) => {
        const socket = tcpConnect({ host: '127.0.0.1', port });
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
    const redis = await preparedOf('redis', '7.0');
    const mariadb = await preparedOf('mariadb', '10.11');
    for (const server of [redis, mariadb]) assert.equal(server.address, '127.0.0.1');
    // the port after Redis's is its TLS port: MariaDB gets neither
    assert.ok(![redis.port, redis.port + 1].includes(mariadb.port), `MariaDB at ${mariadb.port}, Redis at ${redis.port}`);
    assert.ok(await opens(redis.port), 'Redis plaintext');
    assert.ok(await opens(redis.port + 1), 'Redis TLS, the next port');
    assert.ok(await opens(mariadb.port), 'MariaDB');
    for (const server of [redis, mariadb]) assert.deepEqual(await agentRpc.deleteServer({ instanceId: server.instanceId }), { deleted: true });
    assert.equal(await opens(redis.port), false);
  });
});
