// test-lane: parallel (engines as coffer-test-db, a user no agent walls, replicate between random loopback addresses; their own directories)
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import type { PrepareInput } from '../../src/bus/index.js';
import { silentLogger } from '../../src/common/index.js';
import { LocalProcessRunner, type EngineIdentity } from '../../src/agent/index.js';
import { createInstanceUser, removeInstanceUser } from '../../src/agent/instance-user.js';
import { NetworkWall } from '../../src/agent/network-wall.js';
import { engineRegistry, type EngineBinary, type EngineDriver } from '../../src/guest/index.js';
import type { ReplicationGrant } from '../../src/guest/engines/engine.js';
import { replicationUser } from '../../src/guest/engines/redis/replication.js';
import { redisTlsPort } from '../../src/guest/engines/redis/tls.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { connectRedis } from '../support/redis-client.js';
import { testCa } from '../support/test-ca.js';
import { tempDataDir } from '../support/temp-dir.js';
import { eventually as poll } from '../support/wait.js';
import { cleanUp, localRunner, randomAddress } from './engine-fixture.js';

// Redis read replicas at the engine level, with real servers: a primary gives a replica an ACL
// user of its own that can do nothing but replicate, the replica follows it read-only (Redis's
// READONLY), stays a replica across a restart and an adoption, reports its place and lag, and
// once detached takes writes of its own. The replica's engine runs as an OS user of its own,
// walled as the agent walls it (network-wall.ts): its own address and its primary's. The first
// primary has no certificate (plaintext replication); a second pair replicates over TLS, as
// every primary with a certificate does.

const tenant = { name: 'tenant', password: 'tenant-Pass-1', databases: [] };

describe('redis replication', () => {
  let root: string;
  let binary: EngineBinary;
  const drivers: EngineDriver[] = [];
  const clients: Redis[] = [];
  const input: PrepareInput = { memoryMb: 128, databases: [], users: [tenant], adminPassword: 'unused-Admin-1', access: null, overrides: {} };
  const replicaInput: PrepareInput = { ...input, users: [] };
  type Instance = { driver: EngineDriver; address: string; dir: string; runner: LocalProcessRunner };
  let primary: Instance;
  let replica: Instance;
  let grant: ReplicationGrant;
  let replicaUser: EngineIdentity;
  const wall = new NetworkWall(new LocalProcessRunner(undefined));

  async function instance(name: string, runner?: LocalProcessRunner): Promise<Instance> {
    const dir = join(root, name);
    await mkdir(dir);
    await chmod(dir, 0o711);
    const address = randomAddress();
    const own = runner ?? (await localRunner());
    const driver = create(name, dir, address, own);
    return { driver, address, dir, runner: own };
  }

  function create(name: string, dir: string, address: string, runner: LocalProcessRunner): EngineDriver {
    const driver = engineRegistry.redis.create({
      placement: { instanceId: name, dir, address, port: 6379 },
      binary,
      runner,
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
    });
    drivers.push(driver);
    return driver;
  }

  /** A tenant's (or anyone's) client; `tls`: the instance's TLS port, verified against the CA. */
  async function client(address: string, auth: string[], tls?: { ca: string }): Promise<Redis> {
    const made = await connectRedis(address, tls === undefined ? 6379 : redisTlsPort(6379), auth, tls);
    clients.push(made);
    return made;
  }

  async function eventually<T>(read: () => Promise<T>, expected: T): Promise<void> {
    const want = JSON.stringify(expected);
    await poll(`the replica to show ${want}`, () => read().catch(() => undefined), (value) => JSON.stringify(value) === want);
  }

  before(async () => {
    root = await tempDataDir('coffer-rdrepl-');
    const discovery = await engineRegistry.redis.discover([], await localRunner());
    assert.ok(discovery.binaries[0] !== undefined, JSON.stringify(discovery.reports));
    binary = discovery.binaries[0];
    primary = await instance('primary');
    replicaUser = await createInstanceUser('rdreplica', silentLogger());
    replica = await instance('replica', new LocalProcessRunner(replicaUser));
    await wall.raise(replicaUser.uid, [
      { address: replica.address, port: 6379 },
      { address: primary.address, port: 6379 },
    ]);
    await primary.driver.prepare(input);
    await (await client(primary.address, [tenant.name, tenant.password])).set('before', 'one');
    grant = await primary.driver.replication!.addReplica({ id: 'Replica-1', address: replica.address });
    await replica.driver.replication!.prepareReplica(replicaInput, grant);
  });

  after(async () => {
    for (const made of clients) made.disconnect();
    for (const driver of drivers) await driver.stop().catch(() => undefined);
    await cleanUp(root);
    if (replicaUser !== undefined) {
      await wall.remove(replicaUser.uid).catch(() => undefined);
      await removeInstanceUser(replicaUser.name, silentLogger()).catch(() => undefined);
    }
  });

  it('reports the capability', () => {
    assert.equal(engineRegistry.redis.capabilities.replication, true);
  });

  it('gives the replica a user of its own with a strong password kept out of the spec and the primary', async () => {
    assert.equal(grant.user, replicationUser('Replica-1'));
    assert.equal(grant.user, 'os_repl_replica_1');
    assert.ok(grant.password.length >= 40, 'a 256-bit password');
    assert.deepEqual({ address: grant.address, port: grant.port, slot: grant.slot }, { address: primary.address, port: 6379, slot: 'plaintext' });
    assert.ok(!(await readFile(join(replica.dir, 'engine-spec.json'), 'utf8')).includes(grant.password));
    assert.ok(!(await readFile(join(primary.dir, 'data', 'users.acl'), 'utf8')).includes(grant.password), 'the primary keeps its hash only');
    // not a tenant's user, and no tenant's user can take its name
    assert.deepEqual((await primary.driver.users!.list()).map((u) => u.name), ['tenant']);
    await rejectsWithCode(primary.driver.users!.create([{ name: 'os_repl_x', password: 'x-Pass-1234', databases: [] }]), 'BadRequest');
  });

  it('lets the replication user do nothing but replicate', async () => {
    const repl = await client(primary.address, [grant.user, grant.password]);
    assert.equal(await repl.call('PING'), 'PONG');
    for (const command of [['GET', 'before'], ['SET', 'x', 'y'], ['CONFIG', 'GET', 'masterauth'], ['KEYS', '*'], ['ACL', 'LIST'], ['ACL', 'SETUSER', 'x'], ['INFO'], ['SUBSCRIBE', 'c'], ['REPLICAOF', 'NO', 'ONE']]) {
      await assert.rejects(repl.call(command[0]!, command.slice(1)), /NOPERM/, command.join(' '));
    }
    await assert.rejects(client(primary.address, [grant.user, 'wrong-password']), /WRONGPASS/);
  });

  it("follows the primary's writes and refuses its own with READONLY", async () => {
    const reader = await client(replica.address, [tenant.name, tenant.password]);
    // prepareReplica returned once the first copy was in
    assert.equal(await reader.get('before'), 'one');
    await (await client(primary.address, [tenant.name, tenant.password])).set('after', 'two');
    await eventually(() => reader.get('after'), 'two');
    await assert.rejects(reader.set('mine', 'no'), /READONLY/);
    assert.match(String(await reader.call('INFO', 'replication')), /^role:slave$/m);
  });

  it("backs up the replica: its snapshot restores the primary's keys into an instance of its own, and the replica goes on following", async () => {
    const run = await replica.driver.backup!.start({ signal: new AbortController().signal });
    const chunks: Buffer[] = [];
    for await (const chunk of run.stream) chunks.push(chunk as Buffer);
    const facts = await run.finished;
    const restored = await instance('restored-from-replica');
    await restored.driver.prepare(input, undefined, [{ kind: 'full', facts, open: async () => Readable.from([Buffer.concat(chunks)]) }]);
    const reader = await client(restored.address, [tenant.name, tenant.password]);
    assert.deepEqual([await reader.get('before'), await reader.get('after')], ['one', 'two']);
    // a restore is a primary of its own
    assert.equal(await reader.set('mine', 'yes'), 'OK');
    await (await client(primary.address, [tenant.name, tenant.password])).set('after-backup', 'four');
    await eventually(async () => (await client(replica.address, [tenant.name, tenant.password])).get('after-backup'), 'four');
    await restored.driver.stop();
  });

  it("copies the primary's users and root to the replica (Redis does not replicate them)", async () => {
    // the tenant made with the primary came with the replica's prepare
    assert.deepEqual((await replica.driver.users!.list()).map((u) => u.name), ['tenant']);
    await primary.driver.users!.create([{ name: 'later', password: 'later-Pass-1', databases: [] }]);
    assert.equal(await primary.driver.root!.enable('root-Pass-12345'), 'default');
    // a status read copies them at once (the health checks do so every 15 s)
    await replica.driver.replication!.status();
    assert.deepEqual((await replica.driver.users!.list()).map((u) => u.name), ['later', 'tenant']);
    const later = await client(replica.address, ['later', 'later-Pass-1']);
    assert.equal(await later.get('before'), 'one');
    await assert.rejects(later.call('CONFIG', ['GET', 'masterauth']), /NOPERM/);
    const root = await client(replica.address, ['root-Pass-12345']);
    assert.equal(await root.get('before'), 'one');
    // gone from the primary, gone from the replica; root off there, off here
    await primary.driver.users!.delete({ name: 'later', host: '%' });
    await primary.driver.root!.disable();
    await replica.driver.replication!.status();
    assert.deepEqual((await replica.driver.users!.list()).map((u) => u.name), ['tenant']);
    await assert.rejects(client(replica.address, ['later', 'later-Pass-1']), /WRONGPASS/);
    await assert.rejects(client(replica.address, ['root-Pass-12345']), /WRONGPASS|disabled/);
  });

  it('reports each replica on the primary and its own place on the replica', async () => {
    await eventually(async () => {
      const status = await primary.driver.replication!.status();
      return status.role === 'source' ? status.replicas.map((r) => ({ id: r.replicaId, connected: r.connected })) : [];
    }, [{ id: 'Replica-1', connected: true }]);
    const source = await primary.driver.replication!.status();
    assert.ok(source.role === 'source');
    assert.equal(typeof source.replicas[0]!.lagBytes, 'number');
    assert.ok(source.replicas[0]!.lagBytes! >= 0);
    assert.equal(typeof source.replicas[0]!.lagSeconds, 'number');
    const status = await replica.driver.replication!.status();
    assert.ok(status.role === 'replica');
    const { position, ...own } = status;
    assert.deepEqual(own, { role: 'replica', source: { address: primary.address, port: 6379 }, streaming: true });
    // the replication offset: the primary's, once the replica applied all it sent
    assert.ok(position !== undefined && position > 0);
    assert.ok(source.position !== undefined && source.position >= position);
  });

  it('stays a replica across a restart, and a new driver (an adopting agent) keeps it one', async () => {
    await replica.driver.stop();
    const adopted = create('replica', replica.dir, replica.address, replica.runner);
    await adopted.start();
    replica.driver = adopted;
    await (await client(primary.address, [tenant.name, tenant.password])).set('restarted', 'three');
    const reader = await client(replica.address, [tenant.name, tenant.password]);
    await eventually(() => reader.get('restarted'), 'three');
    await assert.rejects(reader.set('mine', 'no'), /READONLY/);
  });

  it('refuses a replica as the source of another', async () => {
    await rejectsWithCode(replica.driver.replication!.addReplica({ id: 'cascade', address: randomAddress() }), 'BadRequest');
  });

  it('detaches: the replica takes writes, keeps no credentials, and its primary drops the user', async () => {
    await replica.driver.replication!.detach();
    await primary.driver.replication!.removeReplica('Replica-1');
    const writer = await client(replica.address, [tenant.name, tenant.password]);
    await writer.set('mine', 'yes');
    assert.equal(await writer.get('restarted'), 'three');
    assert.deepEqual(await replica.driver.replication!.status(), { role: 'standalone' });
    assert.deepEqual(await primary.driver.replication!.status(), { role: 'standalone' });
    assert.doesNotMatch(await readFile(join(replica.dir, 'redis.conf'), 'utf8'), /replicaof|masterauth|masteruser/);
    await assert.rejects(readFile(join(replica.dir, 'replication.password')), { code: 'ENOENT' });
    await assert.rejects(client(primary.address, [grant.user, grant.password]), /WRONGPASS/);
    // the primary's later writes no longer reach it, and it stays its own after a restart
    await (await client(primary.address, [tenant.name, tenant.password])).set('later', 'four');
    await replica.driver.stop();
    await replica.driver.start();
    const again = await client(replica.address, [tenant.name, tenant.password]);
    assert.equal(await again.get('later'), null);
    await again.set('still', 'writable');
    // idempotent
    await replica.driver.replication!.detach();
    await primary.driver.replication!.removeReplica('Replica-1');
  });
});

describe('redis replication over TLS', () => {
  let root: string;
  const drivers: EngineDriver[] = [];
  const clients: Redis[] = [];
  let replicaUser: EngineIdentity | undefined;
  const wall = new NetworkWall(new LocalProcessRunner(undefined));

  after(async () => {
    for (const made of clients) made.disconnect();
    for (const driver of drivers) await driver.stop().catch(() => undefined);
    if (root !== undefined) await cleanUp(root);
    if (replicaUser !== undefined) {
      await wall.remove(replicaUser.uid).catch(() => undefined);
      await removeInstanceUser(replicaUser.name, silentLogger()).catch(() => undefined);
    }
  });

  it("streams through the primary's TLS port when the primary has a certificate, also once it requires TLS", async () => {
    root = await tempDataDir('coffer-rdrepltls-');
    const binary = (await engineRegistry.redis.discover([], await localRunner())).binaries[0];
    assert.ok(binary !== undefined);
    const ca = await testCa();
    replicaUser = await createInstanceUser('rdtlsreplica', silentLogger());
    const make = async (name: string, runner: LocalProcessRunner) => {
      const dir = join(root, name);
      await mkdir(dir);
      await chmod(dir, 0o711);
      const address = randomAddress();
      const driver = engineRegistry.redis.create({
        placement: { instanceId: name, dir, address, port: 6379 },
        binary,
        runner,
        logger: silentLogger(),
        defaultClientCidrs: ['127.0.0.0/8'],
      });
      drivers.push(driver);
      await driver.installTls(await ca.issue({ address, validityDays: 90 }));
      return { driver, address };
    };
    const primary = await make('primary', await localRunner());
    const replica = await make('replica', new LocalProcessRunner(replicaUser));
    // only the primary's TLS port: the plaintext one is closed anyway
    await wall.raise(replicaUser.uid, [
      { address: replica.address, port: 6379 },
      { address: primary.address, port: redisTlsPort(6379) },
    ]);
    await primary.driver.prepare({ memoryMb: 128, databases: [], users: [tenant], adminPassword: 'unused-Admin-1', access: null, overrides: {} });
    const grant = await primary.driver.replication!.addReplica({ id: 'tls-replica', address: replica.address });
    assert.deepEqual({ port: grant.port, slot: grant.slot }, { port: redisTlsPort(6379), slot: 'tls' });
    await replica.driver.replication!.prepareReplica({ memoryMb: 128, databases: [], users: [], adminPassword: 'unused-Admin-1', access: null, overrides: {} }, grant);
    // the primary closes its plaintext port: its replica never used it
    await primary.driver.updateAccess({ requireTls: true });
    const writer = await connectRedis(primary.address, redisTlsPort(6379), [tenant.name, tenant.password], { ca: ca.certificate });
    clients.push(writer);
    await writer.set('secret', 'over tls');
    const reader = await connectRedis(replica.address, 6379, [tenant.name, tenant.password]);
    clients.push(reader);
    await poll('the key on the replica', () => reader.get('secret').catch(() => undefined), (value) => value === 'over tls');
    const status = await replica.driver.replication!.status();
    assert.ok(status.role === 'replica');
    const { position: _position, ...own } = status;
    assert.deepEqual(own, { role: 'replica', source: { address: primary.address, port: redisTlsPort(6379) }, streaming: true });
  });
});
