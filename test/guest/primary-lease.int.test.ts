// test-lane: parallel (an engine as coffer-test-db on a random loopback address, its own directories)
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { chmod, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { engineRegistry } from '../../src/guest/index.js';
import { killServerProcesses } from '../../src/guest/engines/redis/server-process.js';
import { connectRedis } from '../support/redis-client.js';
import { tempDataDir } from '../support/temp-dir.js';
import { until } from '../support/wait.js';
import { startBusGuest, type BusGuest } from './bus-guest.js';
import { localRunner } from './engine-fixture.js';

// The guest's half of the primary lease (src/guest/primary-lease-keeper.ts), on a real Redis
// primary over the bus: once it has a replica it renews its lease with the conductor; when the
// conductor stops answering, the guest stops the engine itself by the lease's deadline; granted
// again, it starts it again; told a failover replaced it, it keeps it stopped. The conductor here
// is the test's, answering what each step needs.

type Answer = { lease: 'held'; ttlMs: number } | { lease: 'none' } | { lease: 'fenced' };

describe('primary lease', () => {
  let root: string;
  let dir: string;
  let bus: BusGuest;
  const address = `127.94.${randomInt(0, 256)}.${randomInt(2, 254)}`;
  const ttlMs = 1_500;
  let answer: (request: { holdMs?: number | undefined }) => Promise<Answer> = async () => ({ lease: 'held', ttlMs });
  const asks: number[] = [];
  const holdMs = 3_000;

  before(async () => {
    root = await tempDataDir('coffer-pl-');
    dir = join(root, 'i');
    await mkdir(dir);
    await chmod(dir, 0o711);
    const runner = await localRunner();
    const discovery = await engineRegistry.redis.discover([], runner);
    bus = await startBusGuest({
      instance: { instanceId: 'lease-primary', dir, address, port: 6379, volumeSizeGb: 1 },
      engine: { manager: 'redis', binary: discovery.binaries[0] },
      runner,
      desiredState: 'running',
      leaseTimes: { renewMs: 200, ttlMs, failoverAfterMs: ttlMs + 1_000, restartHoldMs: holdMs },
      renewLease: async (request) => {
        asks.push(Date.now());
        return answer(request);
      },
    });
    await bus.rpc.prepare({ memoryMb: 256, databases: [], users: [{ name: 'app', password: 'App-pass-1', databases: [] }], adminPassword: 'Adm1n-lease-test', access: null, generation: 1 });
    await until('prepared', () => bus.beats.some((b) => b.status === 'HEALTHY' || b.status === 'FAILED'), 60_000);
    assert.ok(bus.beats.some((b) => b.status === 'HEALTHY'), JSON.stringify(bus.beats));
  });

  after(async () => {
    await bus?.guest.destroy().catch(() => undefined);
    await bus?.closeBus();
    if (root !== undefined) {
      await killServerProcesses(join(dir, 'data')).catch(() => undefined);
      await rm(root, { recursive: true, force: true });
    }
  });

  const serving = async () => {
    try {
      const client = await connectRedis(address, 6379, ['app', 'App-pass-1']);
      try {
        return (await client.ping()) === 'PONG';
      } finally {
        client.disconnect();
      }
    } catch {
      return false;
    }
  };

  it('asks for no lease while it has no replica, and at once once it has one, then keeps serving while the lease is granted', async () => {
    // prepared and healthy (before), with no replica: the guest looked at its spec and asked nothing
    assert.deepEqual(asks, []);
    await bus.rpc.addReplica({ replicaId: 'lease-replica', address: '127.94.0.1' });
    // addReplica asks at once: well within the 30 s an instance without a lease waits between looks
    await until('the first renewal', () => asks.length >= 1, 2_000);
    await until('renewals', () => asks.length >= 3, 5_000);
    assert.equal(await serving(), true);
  });

  it('stops its engine by the deadline once renewals go unanswered, and starts it again once one is granted', async () => {
    bus.beats.length = 0;
    answer = () => new Promise((_resolve, reject) => setTimeout(() => reject(new Error('conductor unreachable')), 100));
    const cut = Date.now();
    await until('engine stopped', async () => !(await serving()), 10_000);
    const stoppedAfter = Date.now() - cut;
    // the last grant was at most one renewal before the cut; the deadline counts from its request
    assert.ok(stoppedAfter <= ttlMs + 1_000, `stopped ${stoppedAfter} ms after renewals stopped`);
    await until('reported stopped', () => bus.beats.some((b) => b.status === 'SHUTDOWN'), 5_000);
    assert.match(bus.beats.find((b) => b.status === 'SHUTDOWN')?.message ?? '', /lease/);
    // it stays down while unanswered
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.equal(await serving(), false);

    answer = async () => ({ lease: 'held', ttlMs });
    await until('engine serving again', serving, 30_000);
  });

  it('told a failover replaced it, it stops its engine and keeps it stopped', async () => {
    answer = async () => ({ lease: 'fenced' });
    await until('engine stopped', async () => !(await serving()), 10_000);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.equal(await serving(), false);
    // needing no lease any more (failover turned off), it runs again
    answer = async () => ({ lease: 'none' });
    await until('engine serving again', serving, 30_000);
  });

  it('stopping for a restart, the guest holds its lease longer; its watchdog kills the engine once that runs out with no guest back (an agent that never returns), and ends once no lease is needed', async () => {
    const holds: number[] = [];
    answer = async (request) => {
      if (request.holdMs !== undefined) holds.push(request.holdMs);
      return { lease: 'held', ttlMs: request.holdMs ?? ttlMs };
    };
    // a second replica: the guest asks at once (failover turned on again is noticed on its slower look)
    await bus.rpc.addReplica({ replicaId: 'lease-replica-2', address: '127.94.0.2' });
    await until('engine serving', serving, 30_000);
    // the file may still name the watchdog of the lease before, which ended a moment ago
    let watchdogPid = 0;
    await until('the watchdog of this lease running', async () => {
      watchdogPid = Number((await readFile(join(dir, 'primary-lease.watchdog'), 'utf8').catch(() => '0')).trim());
      return /coffer-lease-watchdog/.test(await readFile(`/proc/${watchdogPid}/cmdline`, 'utf8').catch(() => ''));
    }, 10_000);
    // the guest goes (its agent stops for a restart that never comes back): nobody renews
    await bus.guest.close();
    const gone = Date.now();
    assert.deepEqual(holds, [holdMs], 'the guest asked once for the restart hold');
    // past the usual lease the engine still serves: the restart hold covers it
    await new Promise((resolve) => setTimeout(resolve, ttlMs + 1_000));
    assert.equal(await serving(), true, 'the engine runs on through the hold');
    await until('engine killed', async () => !(await serving()), 10_000);
    const killedAfter = Date.now() - gone;
    // the hold, then the watchdog's grace
    assert.ok(killedAfter >= holdMs && killedAfter <= holdMs + 300 + 1_000, `killed ${killedAfter} ms after the guest went`);
    // no lease file, no watchdog
    await rm(join(dir, 'primary-lease'));
    await until('watchdog ended', async () => (await readFile(`/proc/${watchdogPid}/cmdline`, 'utf8').catch(() => '')) === '', 5_000);
  });
});
