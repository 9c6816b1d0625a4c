// test-lane: parallel (engines as coffer-test-db, a user no agent walls, replicate between random loopback addresses; their own directories)
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import type { PrepareInput } from '../../src/bus/index.js';
import { silentLogger } from '../../src/common/index.js';
import { engineRegistry, type EngineBinary, type EngineDriver } from '../../src/guest/index.js';
import type { ReplicationAdmin, ReplicationGrant } from '../../src/guest/engines/engine.js';
import { infoFields, withAdminClient } from '../../src/guest/engines/redis/admin.js';
import { isProcessAlive } from '../../src/guest/engines/process-watch.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { connectRedis } from '../support/redis-client.js';
import type { CertificateAuthority } from '../../src/agent/index.js';
import { testCa } from '../support/test-ca.js';
import { tempDataDir } from '../support/temp-dir.js';
import { eventually, until } from '../support/wait.js';
import { cleanUp, localRunner, randomAddress } from './engine-fixture.js';

// Redis's part of switchover and failover (guest contract 1.9), with real servers: a fenced
// source takes no write and its replicas hold all it wrote; a promoted replica's former source
// and sibling follow it, read-only, and get its writes; after a source's crash the promoted
// replica's history wins over what the old source wrote while cut off from its replicas; a
// synchronous source refuses writes while no replica is in sync. Each step's time is reported
// as a diagnostic (no thresholds).

const tenant = { name: 'tenant', password: 'tenant-Pass-1', databases: [] };
const input: PrepareInput = { memoryMb: 128, databases: [], users: [tenant], adminPassword: 'unused-Admin-1', access: null, overrides: {} };
const replicaInput: PrepareInput = { ...input, users: [] };

type Instance = { name: string; driver: EngineDriver; address: string; dir: string };

/** Instances under one temporary directory, stopped and removed with it. */
class Fleet {
  root = '';
  binary!: EngineBinary;
  ca: CertificateAuthority | undefined;
  readonly drivers: EngineDriver[] = [];
  readonly clients: Redis[] = [];

  async open(prefix: string, tls: boolean): Promise<void> {
    this.root = await tempDataDir(prefix);
    const binary = (await engineRegistry.redis.discover([], await localRunner())).binaries[0];
    assert.ok(binary !== undefined);
    this.binary = binary;
    if (tls) this.ca = await testCa();
  }

  async instance(name: string): Promise<Instance> {
    const dir = join(this.root, name);
    await mkdir(dir);
    await chmod(dir, 0o711);
    const address = randomAddress();
    const driver = await this.driver(name, dir, address);
    if (this.ca !== undefined) await driver.installTls(await this.ca.issue({ address, validityDays: 90 }));
    return { name, driver, address, dir };
  }

  /** a driver for the instance's directory, as an agent that restarted makes one */
  async driver(name: string, dir: string, address: string): Promise<EngineDriver> {
    const driver = engineRegistry.redis.create({
      placement: { instanceId: name, dir, address, port: 6379 },
      binary: this.binary,
      runner: await localRunner(),
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
    });
    this.drivers.push(driver);
    return driver;
  }

  async tenant(instance: Instance): Promise<Redis> {
    const made = await connectRedis(instance.address, 6379, [tenant.name, tenant.password]);
    this.clients.push(made);
    return made;
  }

  async close(): Promise<void> {
    for (const made of this.clients) made.disconnect();
    for (const driver of this.drivers) await driver.stop().catch(() => undefined);
    if (this.root !== '') await cleanUp(this.root);
  }
}

function replication(instance: Instance): ReplicationAdmin {
  const admin = instance.driver.replication;
  assert.ok(admin !== undefined);
  return admin;
}

/** The guest's own session on the instance (its socket, its secret): what no tenant has. */
async function asAdmin<T>(instance: Instance, work: (client: Redis) => Promise<T>): Promise<T> {
  const password = await readFile(join(instance.dir, 'os_admin.password'), 'utf8');
  return withAdminClient({ socketPath: join(instance.dir, 'data', 'redis.sock'), password }, work);
}

async function info(instance: Instance, section: string): Promise<Map<string, string>> {
  return asAdmin(instance, async (client) => infoFields(String(await client.call('INFO', [section]))));
}

async function position(instance: Instance): Promise<number | undefined> {
  const status = await replication(instance).status();
  return status.role === 'standalone' ? undefined : status.position;
}

async function spec(instance: Instance): Promise<{ replication?: { role: string; synchronous?: boolean } }> {
  return JSON.parse(await readFile(join(instance.dir, 'engine-spec.json'), 'utf8')) as { replication?: { role: string; synchronous?: boolean } };
}

async function aclUsers(instance: Instance): Promise<string[]> {
  return asAdmin(instance, async (client) => (await client.call('ACL', ['USERS'])) as string[]);
}

async function timed<T>(work: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const began = performance.now();
  const result = await work();
  return { result, ms: Math.round(performance.now() - began) };
}

async function shows(instance: Instance, fleet: Fleet, key: string, value: string | null): Promise<void> {
  const reader = await fleet.tenant(instance);
  await eventually(`${key} on ${instance.name}`, () => reader.get(key).catch(() => 'unreadable'), (read) => read === value);
}

describe('redis switchover', () => {
  const fleet = new Fleet();
  let primary: Instance;
  let first: Instance;
  let second: Instance;

  before(async () => {
    // over TLS, as every instance a guest prepares replicates
    await fleet.open('coffer-rdswitch-', true);
    primary = await fleet.instance('primary');
    first = await fleet.instance('first');
    second = await fleet.instance('second');
    await primary.driver.prepare(input);
    await (await fleet.tenant(primary)).set('before', 'one');
    for (const replica of [first, second]) {
      const grant = await replication(primary).addReplica({ id: replica.name, address: replica.address });
      assert.equal(grant.slot, 'tls');
      await replication(replica).prepareReplica(replicaInput, grant);
    }
  });

  after(() => fleet.close());

  it('reports the replication offset as the position of a source and of its replicas', async () => {
    await (await fleet.tenant(primary)).set('counted', 'x'.repeat(100));
    const written = await position(primary);
    assert.ok(written !== undefined && written > 0);
    for (const replica of [first, second]) await eventually(`${replica.name}'s position`, () => position(replica), (at) => at === written);
  });

  it('fences the source: its replicas hold all it wrote, it stops, and a fence again answers the same', async (t) => {
    const writer = await fleet.tenant(primary);
    // many writes just before the fence: the replicas have them all once it answers
    await Promise.all(Array.from({ length: 500 }, (_, i) => writer.set(`burst:${i}`, String(i))));
    const { result: fenced, ms } = await timed(() => replication(primary).fence());
    t.diagnostic(`fence: ${ms} ms`);
    assert.equal(await primary.driver.processId(), undefined, 'the source is stopped');
    await assert.rejects(writer.set('late', 'no'));
    for (const replica of [first, second]) {
      const at = await position(replica);
      assert.ok(at !== undefined && at >= fenced.position, `${replica.name} at ${at}, the source fenced at ${fenced.position}`);
      assert.equal(await (await fleet.tenant(replica)).get('burst:499'), '499');
    }
    assert.deepEqual(await replication(primary).fence(), fenced);
    assert.deepEqual(await replication(primary).status(), {
      role: 'source',
      replicas: [
        { replicaId: 'first', connected: false },
        { replicaId: 'second', connected: false },
      ],
      position: fenced.position,
    });
    // only a source is fenced
    await rejectsWithCode(replication(first).fence(), 'BadRequest');
  });

  it('makes the fenced source and the other replica follow the promoted one, read-only', async (t) => {
    const promote = await timed(() => replication(first).detach());
    t.diagnostic(`promote (detach): ${promote.ms} ms`);
    const grants = new Map<string, ReplicationGrant>();
    for (const follower of [primary, second]) grants.set(follower.name, await replication(first).addReplica({ id: follower.name, address: follower.address }));
    const fullBefore = Number((await info(first, 'stats')).get('sync_full'));
    const sibling = await timed(() => replication(second).follow(grants.get('second')!));
    t.diagnostic(`follow (running replica re-pointed): ${sibling.ms} ms`);
    // the replica continued from where it was: the promoted one still knows its former primary's stream
    assert.equal(Number((await info(first, 'stats')).get('sync_full')), fullBefore, 'no full copy for the re-pointed replica');
    const former = await timed(() => replication(primary).follow(grants.get('primary')!));
    t.diagnostic(`follow (fenced source started as a replica): ${former.ms} ms`);

    await (await fleet.tenant(first)).set('after', 'two');
    for (const follower of [primary, second]) {
      await shows(follower, fleet, 'after', 'two');
      assert.equal(await (await fleet.tenant(follower)).get('burst:499'), '499');
      await assert.rejects((await fleet.tenant(follower)).set('mine', 'no'), /READONLY/);
      const status = await replication(follower).status();
      assert.ok(status.role === 'replica');
      assert.deepEqual({ source: status.source, streaming: status.streaming }, { source: { address: first.address, port: grants.get(follower.name)!.port }, streaming: true });
    }
    await eventually(
      'both followers connected to the new source',
      async () => {
        const status = await replication(first).status();
        return status.role === 'source' ? status.replicas.map((r) => `${r.replicaId}:${r.connected}`) : [];
      },
      (lines) => JSON.stringify(lines) === JSON.stringify(['primary:true', 'second:true']),
    );
    // what the former source kept for its replicas is gone: their users, its role, its fence
    assert.deepEqual((await aclUsers(primary)).filter((name) => name.startsWith('os_repl_')), []);
    assert.equal((await spec(primary)).replication?.role, 'replica');
    await assert.rejects(readFile(join(primary.dir, 'fenced.position')), { code: 'ENOENT' });
    // idempotent
    await replication(second).follow(grants.get('second')!);
    await replication(primary).follow(grants.get('primary')!);
    await (await fleet.tenant(first)).set('again', 'three');
    await shows(second, fleet, 'again', 'three');
  });

  it('keeps the former source a replica of the new one across a restart and an adoption', async () => {
    await primary.driver.stop();
    primary.driver = await fleet.driver(primary.name, primary.dir, primary.address);
    await primary.driver.start();
    await (await fleet.tenant(first)).set('restarted', 'four');
    await shows(primary, fleet, 'restarted', 'four');
    await assert.rejects((await fleet.tenant(primary)).set('mine', 'no'), /READONLY/);
  });
});

describe('redis failover after the source crashed', () => {
  const fleet = new Fleet();
  let primary: Instance;
  let first: Instance;
  let second: Instance;

  before(async () => {
    await fleet.open('coffer-rdfailover-', false);
    primary = await fleet.instance('primary');
    first = await fleet.instance('first');
    second = await fleet.instance('second');
    await primary.driver.prepare(input);
    for (const replica of [first, second]) {
      await replication(replica).prepareReplica(replicaInput, await replication(primary).addReplica({ id: replica.name, address: replica.address }));
    }
  });

  after(() => fleet.close());

  it("promotes a replica, and the restarted source follows it without what it wrote while cut off", async (t) => {
    await (await fleet.tenant(primary)).set('shared', 'one');
    for (const replica of [first, second]) await shows(replica, fleet, 'shared', 'one');
    // the replicas cut off: their users refused, their links closed
    await asAdmin(primary, async (client) => {
      for (const user of ['os_repl_first', 'os_repl_second']) {
        await client.call('ACL', ['SETUSER', user, 'off']);
        await client.call('CLIENT', ['KILL', 'USER', user]);
      }
    });
    await until('the replicas cut off', async () => (await info(primary, 'replication')).get('connected_slaves') === '0');
    await (await fleet.tenant(primary)).set('lost', 'unreplicated');
    const pid = await primary.driver.processId();
    assert.ok(pid !== undefined);
    process.kill(pid, 'SIGKILL');
    await until('the source dead', async () => !(await isProcessAlive(pid)));

    // the replica with the highest position is promoted (here both are level)
    const positions = [await position(first), await position(second)];
    assert.ok(positions[0] !== undefined && positions[0] === positions[1]);
    const promote = await timed(() => replication(first).detach());
    t.diagnostic(`promote (detach): ${promote.ms} ms`);
    const sibling = await timed(async () => replication(second).follow(await replication(first).addReplica({ id: 'second', address: second.address })));
    t.diagnostic(`follow (replica of the crashed source): ${sibling.ms} ms`);
    await (await fleet.tenant(first)).set('new', 'two');
    await shows(second, fleet, 'new', 'two');

    // the host comes back: the old source runs again as it was and takes a write, still cut off
    // (whether 'lost' outlived the crash is appendfsync's matter: everysec may not have written it)
    await primary.driver.start();
    const alone = await fleet.tenant(primary);
    assert.equal(await alone.set('alone', 'unreplicated'), 'OK');
    assert.equal(await alone.get('alone'), 'unreplicated');
    const former = await timed(async () => replication(primary).follow(await replication(first).addReplica({ id: 'primary', address: primary.address })));
    t.diagnostic(`follow (restarted former source): ${former.ms} ms`);
    await shows(primary, fleet, 'new', 'two');
    const reader = await fleet.tenant(primary);
    assert.equal(await reader.get('alone'), null, "the new source's history wins");
    assert.equal(await reader.get('lost'), null);
    assert.equal(await reader.get('shared'), 'one');
    await assert.rejects(reader.set('mine', 'no'), /READONLY/);
    assert.deepEqual((await aclUsers(primary)).filter((name) => name.startsWith('os_repl_')), []);
    assert.equal((await spec(primary)).replication?.role, 'replica');
    assert.equal(await (await fleet.tenant(second)).get('lost'), null);
  });
});

describe('redis synchronous replication', () => {
  const fleet = new Fleet();
  let source: Instance;
  let replica: Instance;

  before(async () => {
    await fleet.open('coffer-rdsync-', false);
    source = await fleet.instance('source');
    replica = await fleet.instance('replica');
    await source.driver.prepare(input);
  });

  after(() => fleet.close());

  it('refuses writes with no replica in sync, also after a restart', async () => {
    await replication(source).setSynchronous(true);
    assert.deepEqual((await spec(source)).replication, { role: 'source', replicas: [], synchronous: true });
    await assert.rejects((await fleet.tenant(source)).set('k', 'v'), /NOREPLICAS/);
    await source.driver.stop();
    await source.driver.start();
    assert.match(await readFile(join(source.dir, 'redis.conf'), 'utf8'), /^min-replicas-to-write 1$/m);
    await assert.rejects((await fleet.tenant(source)).set('k', 'v'), /NOREPLICAS/);
  });

  it('takes writes once a replica is in sync, and keeps the setting through a full volume', async () => {
    await replication(replica).prepareReplica(replicaInput, await replication(source).addReplica({ id: 'replica', address: replica.address }));
    assert.equal((await spec(source)).replication?.synchronous, true, 'a replica added keeps the setting');
    await rejectsWithCode(replication(replica).setSynchronous(true), 'BadRequest');
    const writer = await fleet.tenant(source);
    await eventually('a write taken', () => writer.set('k', 'v').catch((err: Error) => err.message), (reply) => reply === 'OK');
    await shows(replica, fleet, 'k', 'v');
    await source.driver.refuseWrites(true);
    await assert.rejects(writer.set('k', 'full'), /NOREPLICAS/);
    await replication(source).setSynchronous(true);
    await assert.rejects(writer.set('k', 'full'), /NOREPLICAS/, 'the full volume still refuses');
    await source.driver.refuseWrites(false);
    assert.equal(await asAdmin(source, async (client) => ((await client.call('CONFIG', ['GET', 'min-replicas-to-write'])) as string[])[1]), '1');
    assert.equal(await writer.set('k', 'w'), 'OK');
  });

  it('takes writes without a replica once turned off', async () => {
    await replica.driver.stop();
    await replication(source).setSynchronous(false);
    assert.equal((await spec(source)).replication?.synchronous, undefined);
    assert.doesNotMatch(await readFile(join(source.dir, 'redis.conf'), 'utf8'), /min-replicas-to-write/);
    assert.equal(await (await fleet.tenant(source)).set('alone', 'yes'), 'OK');
  });
});
