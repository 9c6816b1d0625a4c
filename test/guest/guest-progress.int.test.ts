// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import assert from 'node:assert/strict';
import { chmod, mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { LocalProcessRunner } from '../../src/agent/index.js';
import { conductorContract, conductorTopic, createRpcClient, InProcessTransport } from '../../src/bus/index.js';
import { engineRegistry, type EngineBinary, type WarmSource } from '../../src/guest/index.js';
import { progressReporter } from '../../src/guest/progress-reporter.js';
import { tempDataDir } from '../support/temp-dir.js';
import { until } from '../support/wait.js';
import { startBusGuest, type BusGuest } from './bus-guest.js';
import { cleanUp, localRunner, randomAddress } from './engine-fixture.js';

// What a guest tells the conductor of its long operations, against a real PostgreSQL: each step
// of a prepare (by initdb, and from the host's warm pool), a restart, a resize and a
// configuration change, in order, ending at 100.

/** a directory of the host's, as the agent makes its own: traversable by the engine's user only */
async function hostDir(path: string): Promise<string> {
  await mkdir(path);
  await chmod(path, 0o711);
  return path;
}

describe('guest progress reports', () => {
  let root: string;
  let runner: LocalProcessRunner;
  let binary: EngineBinary;
  const guests: BusGuest[] = [];

  before(async () => {
    root = await tempDataDir('coffer-gp-');
    runner = await localRunner();
    const discovery = await engineRegistry.postgresql.discover([], runner);
    assert.ok(discovery.binaries.length > 0, `no PostgreSQL binaries: ${JSON.stringify(discovery.reports)}`);
    binary = discovery.binaries[0]!;
  });

  after(async () => {
    for (const bus of guests) {
      await bus.guest.destroy().catch(() => undefined);
      await bus.closeBus();
    }
    if (root !== undefined) await cleanUp(root);
  });

  async function preparedGuest(name: string, warm?: WarmSource): Promise<BusGuest> {
    const dir = await hostDir(join(root, name));
    const bus = await startBusGuest({
      instance: { instanceId: name, dir, address: randomAddress(), port: 5432, volumeSizeGb: 1 },
      engine: { manager: 'postgresql', binary },
      runner,
      desiredState: 'running',
      ...(warm === undefined ? {} : { warm }),
    });
    guests.push(bus);
    await bus.rpc.prepare({
      memoryMb: 256,
      databases: [{ name: 'app' }],
      users: [{ name: 'app', password: 'app-Secret-1', databases: [{ name: 'app' }] }],
      adminPassword: `Adm1n-${name}`,
      access: null,
    });
    const reported = (status: string) => bus.beats.some((beat) => beat.status === status);
    await until('prepare reports HEALTHY', () => reported('HEALTHY') || reported('FAILED'), 120_000);
    assert.ok(!reported('FAILED'), 'prepare did not fail');
    return bus;
  }

  /** the reports until the one at 100, taken off the list */
  async function reportsUntilDone(bus: BusGuest) {
    await until('the operation reports 100%', () => bus.progress.some((p) => p.percent === 100));
    return bus.progress.splice(0, bus.progress.length);
  }

  it('a prepare by initdb reports initialising, starting, creating databases and users, ready; then restart, resize and a configuration change theirs', async () => {
    const bus = await preparedGuest('plain');
    assert.deepEqual(await reportsUntilDone(bus), [
      { step: 'initialising', percent: 10 },
      { step: 'starting', percent: 40 },
      { step: 'creating databases and users', percent: 70 },
      { step: 'ready', percent: 100 },
    ]);

    await bus.rpc.restart({});
    assert.deepEqual(await reportsUntilDone(bus), [
      { step: 'stopping', percent: 10 },
      { step: 'starting', percent: 50 },
      { step: 'ready', percent: 100 },
    ]);

    await bus.rpc.resize({ memoryMb: 512 });
    assert.deepEqual(await reportsUntilDone(bus), [
      { step: 'restarting with the new memory', percent: 20 },
      { step: 'ready', percent: 100 },
    ]);

    await bus.rpc.applyConfiguration({ overrides: { work_mem: '8MB' } });
    assert.deepEqual(await reportsUntilDone(bus), [
      { step: 'applying configuration', percent: 20 },
      { step: 'configuration applied', percent: 100 },
    ]);
  });

  it('a prepare from the warm pool reports taking a prepared cluster instead of initialising', async () => {
    const warm = engineRegistry.postgresql.warm!;
    const entry = await hostDir(join(root, 'pool-entry'));
    await warm.make(entry, binary, runner, new AbortController().signal);
    let taken = false;
    const source: WarmSource = {
      take: async (dest) => {
        if (taken) return false;
        taken = true;
        await rename(entry, dest);
        return true;
      },
    };
    const bus = await preparedGuest('warm', source);
    assert.ok(taken, 'the prepare took the pool entry');
    assert.deepEqual(await reportsUntilDone(bus), [
      { step: 'taking a prepared cluster', percent: 10 },
      { step: 'starting', percent: 40 },
      { step: 'creating databases and users', percent: 70 },
      { step: 'ready', percent: 100 },
    ]);
  });

  it('a report that cannot be sent is logged, and neither throws nor waits', async () => {
    const lines: { msg: string; step?: string }[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const bus = new InProcessTransport();
    await bus.close();
    const report = progressReporter(createRpcClient(bus, conductorContract, conductorTopic), 'i-1', logger);
    assert.equal(report('starting', 40), undefined);
    await until('the failure logged', () => lines.some((line) => line.msg === 'progress report not sent' && line.step === 'starting'));
  });
});
