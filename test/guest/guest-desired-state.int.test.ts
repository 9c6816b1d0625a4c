// test-lane: parallel (a Redis engine as coffer-test-db on a random loopback address, its own directories; it checks processes under its own directory only)
import assert from 'node:assert/strict';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { engineRegistry, type EngineBinary } from '../../src/guest/index.js';
import { killServerProcesses } from '../../src/guest/engines/redis/server-process.js';
import { processesMentioning } from '../support/processes.js';
import { tempDataDir } from '../support/temp-dir.js';
import { until } from '../support/wait.js';
import { startBusGuest, type BusGuest } from './bus-guest.js';
import { localRunner, randomAddress } from './engine-fixture.js';

// The guest converges on the desired state its host recorded (stop and start, issue 13): a guest
// that comes up for a stopped instance (its agent restarted) neither starts the engine nor leaves
// one running, and one for a running instance takes the engine over as it is.

const instanceId = 'desired-state';

describe('a guest starting on an instance its host recorded as stopped', () => {
  let root: string;
  let dir: string;
  let binary: EngineBinary | undefined;
  const address = randomAddress();
  const runner = localRunner();
  let bus: BusGuest | undefined;

  const start = async (desiredState: 'running' | 'stopped') => {
    bus = await startBusGuest({
      instance: { instanceId, dir, address, port: 6379, volumeSizeGb: 1 },
      engine: { manager: 'redis', binary },
      runner: await runner,
      desiredState,
    });
    return bus;
  };
  const engineProcesses = () => processesMentioning(dir);
  /** the guest closes as its agent does on a restart: the engine keeps running */
  const closeGuest = async () => {
    await bus?.guest.close();
    await bus?.closeBus();
    bus = undefined;
  };

  before(async () => {
    root = await tempDataDir('coffer-ds-');
    dir = join(root, 'i');
    await mkdir(dir);
    await chmod(dir, 0o711);
    binary = (await engineRegistry.redis.discover([], await runner)).binaries[0];
    assert.ok(binary !== undefined, 'redis binaries');
    const first = await start('running');
    await first.rpc.prepare({ memoryMb: 256, databases: [], users: [], adminPassword: 'Adm1n-guest-test', access: null });
    await until('prepare reports HEALTHY', () => first.beats.some((b) => b.status === 'HEALTHY' || b.status === 'FAILED'), 60_000);
    assert.ok(!first.beats.some((b) => b.status === 'FAILED'), JSON.stringify(first.beats));
    assert.ok(engineProcesses().length > 0, 'the engine runs under the instance directory');
  });

  after(async () => {
    await bus?.guest.destroy().catch(() => undefined);
    await bus?.closeBus();
    await killServerProcesses(join(dir, 'data')).catch(() => undefined);
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it('stops an engine it finds running, and reports SHUTDOWN', async () => {
    await closeGuest();
    const pids = engineProcesses();
    assert.ok(pids.length > 0, 'the engine outlived its guest');
    const guest = await start('stopped');
    await until('the guest reports SHUTDOWN', () => guest.beats.some((b) => b.status === 'SHUTDOWN'), 30_000);
    assert.deepEqual(guest.beats.map((b) => b.status), ['SHUTDOWN']);
    assert.deepEqual(engineProcesses(), [], 'no engine process under the instance directory');
  });

  it('leaves a stopped engine stopped, and starts it when asked', async () => {
    await closeGuest();
    const guest = await start('stopped');
    await until('the guest reports SHUTDOWN', () => guest.beats.some((b) => b.status === 'SHUTDOWN'), 30_000);
    assert.deepEqual(engineProcesses(), [], 'adoption did not start it');
    await guest.rpc.startDb({});
    assert.equal(guest.beats.at(-1)?.status, 'HEALTHY');
    assert.ok(engineProcesses().length > 0);
    // a stop asked from now on: the engine is gone when the guest answers, and both said how far they got
    await guest.rpc.stopDb({});
    assert.equal(guest.beats.at(-1)?.status, 'SHUTDOWN');
    assert.deepEqual(engineProcesses(), []);
    assert.deepEqual(guest.progress, [
      { step: 'starting', percent: 20 },
      { step: 'ready', percent: 100 },
      { step: 'stopping', percent: 20 },
      { step: 'stopped', percent: 100 },
    ]);
  });
});
