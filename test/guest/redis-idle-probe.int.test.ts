// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { chmod, mkdir, readFile, rm, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { engineRegistry } from '../../src/guest/index.js';
import { isProcessAlive } from '../../src/guest/engines/process-watch.js';
import { killServerProcesses } from '../../src/guest/engines/redis/server-process.js';
import { handDrivenRound } from '../support/hand-round.js';
import { connectRedis } from '../support/redis-client.js';
import { tempDataDir } from '../support/temp-dir.js';
import { until } from '../support/wait.js';
import { startBusGuest, type BusGuest } from './bus-guest.js';
import { localRunner } from './engine-fixture.js';

// A Redis guest's periodic checks, driven one at a time by the test as its host's round would:
// an idle engine is asked only now and then (its process looked at in between), a used one at
// every check, and a dead one is seen at the next check whatever it was.

const instanceId = 'redis-idle-probe';
const user = ['app', 'App-pass-1'];

describe('redis guest: checks of an idle engine', () => {
  let root: string;
  let dir: string;
  let bus: BusGuest;
  // every member the guest puts in the round (its check, the lease keeper's look at the spec, ...)
  // takes its turn, as in a host's round
  const { round, turn: check } = handDrivenRound();
  const address = `127.94.${randomInt(0, 256)}.${randomInt(2, 254)}`;

  /** what the server says of itself, asked over a connection of the tenant's own */
  const serverInfo = async () => {
    const client = await connectRedis(address, 6379, user);
    try {
      const text = String(await client.call('INFO', ['everything']));
      const field = (name: string) => new RegExp(`^${name}:(.*)\\r?$`, 'm').exec(text)?.[1] ?? '';
      return { hz: field('hz'), pings: Number(/^cmdstat_ping:calls=(\d+)/m.exec(text)?.[1] ?? 0) };
    } finally {
      client.disconnect();
    }
  };

  before(async () => {
    root = await tempDataDir('coffer-rip-');
    dir = join(root, 'i');
    await mkdir(dir);
    await chmod(dir, 0o711);
    const runner = await localRunner();
    const discovery = await engineRegistry.redis.discover([], runner);
    bus = await startBusGuest({
      instance: { instanceId, dir, address, port: 6379, volumeSizeGb: 1 },
      engine: { manager: 'redis', binary: discovery.binaries[0] },
      runner,
      desiredState: 'running',
      checkRound: round,
      heartbeatIntervalMs: 10_000,
      // never reached here: between two probes of an idle engine only its process is looked at
      idleProbeIntervalMs: 3_600_000,
      // every check also holds the logs to their limit
      logTrimIntervalMs: 1,
    });
    await bus.rpc.prepare({
      memoryMb: 256,
      databases: [],
      users: [{ name: user[0]!, password: user[1]!, databases: [] }],
      adminPassword: 'Adm1n-probe-test',
      access: null,
      generation: 1,
    });
    await until('prepare reports', () => bus.beats.some((b) => b.status === 'FAILED' || b.status === 'HEALTHY'), 60_000);
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

  it('asks an idle engine only now and then, and a used one at every check', async () => {
    bus.beats.length = 0;
    // two checks with nothing in between: the engine is idle, its timer slowed
    await check();
    await check();
    const idle = await serverInfo();
    assert.equal(idle.hz, '1', 'idle since the check before');
    for (let i = 0; i < 3; i++) await check();
    assert.equal((await serverInfo()).pings, idle.pings, 'checks of an idle engine that answered ask it nothing');
    assert.ok(bus.beats.every((b) => b.status === 'HEALTHY'), JSON.stringify(bus.beats));

    // an operation asks for a probe at the next check, which finds the tenant's connections since
    assert.equal((await bus.rpc.listUsers({})).users.length, 1);
    const before = (await serverInfo()).pings;
    await check();
    const used = await serverInfo();
    assert.equal(used.hz, '10', 'the tenant was seen: the timer is back to its rate');
    await check();
    assert.equal((await serverInfo()).pings - before, 2, 'one PING a check while the engine is in use');
  });

  it("holds the engine's log to its limit in the round's checks, without asking an idle engine for it", async () => {
    await check();
    await check();
    const idle = await serverInfo();
    assert.equal(idle.hz, '1');
    // past the 50 MB limit (sparse: nothing written)
    const log = join(dir, 'redis.log');
    await truncate(log, 60 * 1024 * 1024);
    for (let i = 0; i < 3; i++) await check();
    assert.ok((await stat(log)).size < 1024 * 1024, 'the log was truncated by a check');
    assert.equal((await serverInfo()).pings, idle.pings, 'a trim is no operation on the engine: an idle one is not asked after it');
  });

  it('sees a dead engine at the next check, idle or not, and starts it again', async () => {
    // idle again: the tenant's last connection closed before these two checks
    await check();
    await check();
    assert.equal((await serverInfo()).hz, '1');
    const pid = Number((await readFile(join(dir, 'data', 'redis.pid'), 'utf8')).trim());
    bus.beats.length = 0;
    process.kill(pid, 'SIGKILL');
    await until('the engine is gone', async () => !(await isProcessAlive(pid)), 10_000);
    await check();
    assert.deepEqual(
      bus.beats.map((b) => b.status),
      ['CRASHED', 'HEALTHY'],
    );
    const restarted = Number((await readFile(join(dir, 'data', 'redis.pid'), 'utf8')).trim());
    assert.notEqual(restarted, pid);
    assert.ok(await isProcessAlive(restarted));
  });
});
