// test-lane: parallel (agents as root: they add and remove OS users and their walls; it checks processes only under its own directories)
import assert from 'node:assert/strict';
import { access, lstat, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createConnection, type RowDataPacket } from 'mysql2/promise';
import { Client } from 'pg';
import type { AgentOptions } from '../../src/agent/index.js';
import { lookupUser } from '../../src/agent/engine-user.js';
import {
  agentContract,
  agentTopic,
  createRpcClient,
  type RpcClient,
  type ServerInfo,
} from '../../src/bus/index.js';
import { withAdminConnection } from '../../src/guest/engines/mysql-family/connection.js';
import { nativePasswordHash } from '../../src/guest/engines/mysql-family/password-hash.js';
import { withAdminClient } from '../../src/guest/engines/postgresql/admin.js';
import { ownerOf, suffix } from '../guest/engine-fixture.js';
import { tempDataDir } from '../support/temp-dir.js';
import { until, waitUntil } from '../support/wait.js';
import { agentHarness, engine, processesUsing } from './agent-harness.js';

// The agent's warm pool with real PostgreSQL: clusters made ahead of time by initdb, each
// handed to one create only, refilled, cleaned after a crash, stopped with the agent; and a
// MariaDB create served from the pool's MariaDB data directories the same way.

const kind = `postgresql-${engine.version}`;
/** a pool initdb runs at low priority next to other tests: give it time */
const fillTimeoutMs = 60_000;

const isComplete = (name: string) => /^[0-9a-f]{16}$/.test(name);
const isRoot = process.getuid?.() === 0;

/** The OS user the instance in `dir` runs as, from its record. */
async function instanceUser(dir: string) {
  const { osUser } = JSON.parse(await readFile(join(dir, 'instance.json'), 'utf8')) as { osUser: string };
  return (await lookupUser(osUser))!;
}

/** The uids owning `root` and everything below it (links not followed). */
async function ownersUnder(root: string): Promise<Set<number>> {
  const owners = new Set([(await lstat(root)).uid]);
  for (const entry of await readdir(root, { recursive: true })) owners.add((await lstat(join(root, entry))).uid);
  return owners;
}

describe('agent warm pool', () => {
  const harness = agentHarness('coffer-wpa-');
  const { transport, roots, agents } = harness;

  async function newAgent(overrides: Partial<AgentOptions> = {}) {
    const { agent, options } = await harness.newAgent(overrides);
    return { agent, options, kindDir: join(options.dataDir, 'pool', kind), agentRpc: createRpcClient(transport, agentContract, agentTopic(options.host)) };
  }

  const entries = async (kindDir: string) => (await readdir(kindDir).catch(() => [] as string[])).filter(isComplete);
  const filled = (kindDir: string, size: number) =>
    until(`${size} warm clusters`, async () => (await entries(kindDir)).length === size, fillTimeoutMs);

  /** creates and prepares an instance; resolves once it is HEALTHY */
  async function prepared(agentRpc: RpcClient<typeof agentContract>, adminPassword: string) {
    const instanceId = `inst-${suffix()}`;
    return { instanceId, server: await harness.prepared(agentRpc, instanceId, adminPassword) };
  }

  const connect = async (server: ServerInfo, user: string, password: string, database = 'appdb') => {
    const client = new Client({ host: server.address, port: server.port, user, password, database, connectionTimeoutMillis: 5000 });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  };

  it('hands each of two concurrent creates its own pre-made cluster, refills, and never adopts an entry', async (t) => {
    const { options, kindDir, agentRpc } = await newAgent({ warmPoolSize: 2 });
    await filled(kindDir, 2);
    const inodes = new Set(await Promise.all((await entries(kindDir)).map(async (e) => (await stat(join(kindDir, e, 'data'))).ino)));
    const instancesDir = join(options.dataDir, 'instances');
    const poolDir = join(options.dataDir, 'pool');
    // the instances' layout: the host's directories, the engine user's data directory, the host's secret
    // the agent's host engine user runs the pool's initdb
    const poolUser = isRoot ? await lookupUser('coffer-db') : undefined;
    const engineUid = poolUser?.uid ?? process.getuid!();
    const entry = join(kindDir, (await entries(kindDir))[0]!);
    // the host's directories: only the pool's user may traverse them (by its group), no instance's user
    for (const dir of [poolDir, kindDir, entry]) {
      assert.deepEqual(await ownerOf(dir), { uid: process.getuid!(), mode: isRoot ? '710' : '700' }, dir);
      if (isRoot) assert.equal((await stat(dir)).gid, poolUser!.gid, dir);
    }
    assert.deepEqual(await ownerOf(join(entry, 'data')), { uid: engineUid, mode: '700' });
    assert.deepEqual(await ownerOf(join(entry, 'os_admin.pool-password')), { uid: process.getuid!(), mode: '600' });
    assert.deepEqual((await readdir(entry)).sort(), ['data', 'os_admin.pool-password'], 'no initdb password file is left');

    const admins = [`adm-${suffix()}-1`, `adm-${suffix()}-2`];
    const began = performance.now();
    const instances = await Promise.all(admins.map((admin) => prepared(agentRpc, admin)));
    t.diagnostic(`two creates + prepares from the pool: ${(performance.now() - began).toFixed(0)} ms`);

    const identifiers = new Set<string>();
    const verifiers = new Set<string>();
    for (const [i, { instanceId, server }] of instances.entries()) {
      const dir = join(instancesDir, instanceId);
      const ino = (await stat(join(dir, 'data'))).ino;
      assert.ok(inodes.delete(ino), 'the data directory is a pool entry no other instance got');
      const app = await connect(server, 'app', 'app-Secret-1');
      await app.query('SELECT 1');
      await app.end();
      await assert.rejects(connect(server, 'app', 'wrong'), /password authentication failed/);
      await assert.rejects(connect(server, 'os_admin', admins[i]!, 'postgres'), /pg_hba\.conf rejects/);
      const rows = await withAdminClient({ socketDir: join(dir, 'data'), port: server.port, password: admins[i]! }, 'postgres', async (c) =>
        (
          await c.query(
            "SELECT (SELECT system_identifier::text FROM pg_control_system()) AS id, rolpassword FROM pg_authid WHERE rolname = 'os_admin'",
          )
        ).rows,
      );
      identifiers.add(rows[0].id);
      verifiers.add(rows[0].rolpassword);
      assert.equal(await readFile(join(dir, 'os_admin.password'), 'utf8'), admins[i]);
      if (isRoot) {
        // taken from the pool user, given to the instance's own before its engine started
        const owner = await instanceUser(dir);
        assert.notEqual(owner.uid, engineUid);
        assert.deepEqual(await ownersUnder(join(dir, 'data')), new Set([owner.uid]), 'every file of the cluster is the instance user\'s');
        assert.deepEqual(await ownerOf(join(dir, 'os_admin.password')), { uid: 0, mode: '600' });
      }
    }
    assert.equal(identifiers.size, 2, 'different system identifiers');
    assert.equal(verifiers.size, 2, 'different os_admin passwords');

    await filled(kindDir, 2);
    const servers = async () => (await agentRpc.listServers({})).map((s) => s.instanceId).sort();
    const ids = instances.map((x) => x.instanceId).sort();
    assert.deepEqual(await servers(), ids, 'pool entries are not servers');

    // a restarted agent re-adopts the instances and nothing of the pool
    await agents.pop()!.stop();
    const second = await newAgent({ dataDir: options.dataDir, host: options.host, addressPool: options.addressPool, warmPoolSize: 2 });
    assert.deepEqual((await second.agentRpc.listServers({})).map((s) => s.instanceId).sort(), ids);
    assert.equal((await entries(kindDir)).length, 2, 'complete entries are kept across restarts');
    for (const id of ids) await second.agentRpc.deleteServer({ instanceId: id });
  });

  it('hands a MariaDB create a data directory installed ahead of time, given to the instance\'s own user, and refills', async (t) => {
    const { options, agentRpc } = await newAgent({ warmPoolSize: 1 });
    const poolDir = join(options.dataDir, 'pool');
    const mariadbKind = await waitUntil('a MariaDB pool', async () => (await readdir(poolDir).catch(() => [] as string[])).find((name) => name.startsWith('mariadb-')), fillTimeoutMs);
    const kindDir = join(poolDir, mariadbKind);
    await filled(kindDir, 1);
    const entryIno = (await stat(join(kindDir, (await entries(kindDir))[0]!, 'data'))).ino;
    const admin = `adm-${suffix()}`;
    const instanceId = `inst-${suffix()}`;
    const began = performance.now();
    const server = await harness.prepared(agentRpc, instanceId, admin, { manager: 'mariadb', version: mariadbKind.slice('mariadb-'.length) });
    t.diagnostic(`a MariaDB create + prepare from the pool: ${(performance.now() - began).toFixed(0)} ms`);
    const dir = join(options.dataDir, 'instances', instanceId);
    assert.equal((await stat(join(dir, 'data'))).ino, entryIno, 'the data directory is the pool entry');

    const app = await createConnection({ host: server.address, port: server.port, user: 'app', password: 'app-Secret-1', database: 'appdb' });
    await app.query('CREATE TABLE t (v INT)');
    await app.query('INSERT INTO t VALUES (1)');
    await app.end();
    const [row] = await withAdminConnection({ socketPath: join(dir, 'data', 'mysqld.sock'), password: admin }, async (c) =>
      (await c.query<RowDataPacket[]>("SELECT authentication_string AS hash FROM mysql.user WHERE User = 'os_admin'"))[0],
    );
    assert.equal(row!.hash, nativePasswordHash(admin));
    if (isRoot) {
      const owner = await instanceUser(dir);
      assert.deepEqual(await ownersUnder(join(dir, 'data')), new Set([owner.uid]), 'every file of the data directory is the instance user\'s');
      assert.deepEqual(await ownerOf(join(dir, 'os_admin.password')), { uid: 0, mode: '600' });
    }
    await filled(kindDir, 1);
    await agentRpc.deleteServer({ instanceId });
  });

  it('removes a half-made entry at start and never hands it out', async () => {
    const dataDir = await tempDataDir('coffer-wpa-');
    roots.push(dataDir);
    // what an agent killed during initdb leaves
    const half = join(dataDir, 'pool', kind, '.building-00000000000000aa');
    await mkdir(join(half, 'data'), { recursive: true });
    await writeFile(join(half, 'data', 'PG_VERSION'), '15\n');
    await writeFile(join(half, 'data', 'half-made'), '');
    await writeFile(join(half, 'os_admin.pool-password'), 'half-made');

    const { kindDir, agentRpc } = await newAgent({ dataDir, warmPoolSize: 1 });
    await filled(kindDir, 1);
    await assert.rejects(access(half));
    const [entry] = await entries(kindDir);
    const entryIno = (await stat(join(kindDir, entry!, 'data'))).ino;
    const { instanceId, server } = await prepared(agentRpc, `adm-${suffix()}`);
    const data = join(dataDir, 'instances', instanceId, 'data');
    assert.equal((await stat(data)).ino, entryIno, 'the complete entry was taken');
    await assert.rejects(access(join(data, 'half-made')));
    const app = await connect(server, 'app', 'app-Secret-1');
    await app.end();
    await agentRpc.deleteServer({ instanceId });
  });

  it('stops an initdb in progress when the agent stops, leaving no process and no half-made entry', async () => {
    const { agent, kindDir, options } = await newAgent({ warmPoolSize: 2 });
    const poolDir = join(options.dataDir, 'pool');
    await until(
      'a pool initdb',
      async () => (await processesUsing(poolDir)).length > 0,
      fillTimeoutMs,
    );
    await agent.stop();
    assert.deepEqual(await processesUsing(poolDir), [], 'no initdb or postgres of the pool is left');
    assert.deepEqual((await readdir(kindDir)).filter((name) => !isComplete(name)), [], 'no half-made entry is left');
  });

  it('with a pool size of 0 creates by initdb as before and keeps no pool', async () => {
    await assert.rejects(newAgent({ warmPoolSize: -1 }), /warm pool size/);
    const { options, agentRpc } = await newAgent({ warmPoolSize: 0 });
    const { instanceId, server } = await prepared(agentRpc, `adm-${suffix()}`);
    const app = await connect(server, 'app', 'app-Secret-1');
    await app.end();
    await assert.rejects(access(join(options.dataDir, 'pool')), 'no pool directory');
    await agentRpc.deleteServer({ instanceId });
  });
});
