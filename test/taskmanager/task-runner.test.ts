import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { silentLogger } from '../../src/common/logger.js';
import { openStateStore, type StateStore, type TaskRow } from '../../src/db/index.js';
import { TaskRunner, type Flow } from '../../src/taskmanager/task-runner.js';
import { eventually } from '../support/wait.js';

let store: StateStore;

before(async () => {
  store = await openStateStore('sqlite::memory:');
});
after(() => store.close());

function newTask(id: string): TaskRow {
  const now = new Date();
  return {
    id,
    instanceId: `instance-${id}`,
    kind: 'create_instance',
    step: 'start',
    state: 'pending',
    owner: null,
    leaseExpiresAt: null,
    payload: { secret: 'kept only while the task runs' },
    attempts: 0,
    createdAt: now,
    updatedAt: now,
  };
}

function runner(workerId: string, flow: Flow, leaseMs = 300): TaskRunner {
  const noop: Flow = async () => undefined;
  return new TaskRunner({
    store,
    logger: silentLogger(),
    workerId,
    leaseMs,
    sweepIntervalMs: 50,
    flows: { create_instance: flow, delete_instance: noop, restart: noop, stop: noop, start: noop, resize_flavor: noop, resize_volume: noop, update_access: noop, detach_replica: noop, promote_to_replica_source: noop, eject_replica_source: noop, rejoin_replica: noop, apply_configuration: noop, create_backup: noop, delete_backup: noop, import_backup: noop, verify_backup: noop, upgrade: noop },
  });
}

async function waitForState(id: string, state: string): Promise<TaskRow> {
  return (await eventually(`task ${id} ${state}`, () => store.tasks.get(id), (task) => task?.state === state))!;
}

test('a task left by a dead worker is resumed by another after its lease expires, from the last step', async () => {
  await store.tasks.create(newTask('t-resume'));
  const seenSteps: string[] = [];
  let release!: () => void;
  const blocked = new Promise<void>((r) => (release = r));
  const first = runner('worker-a', async (handle) => {
    seenSteps.push(handle.task.step);
    await handle.recordStep('placed');
    await blocked; // the worker "dies" here
  });
  await first.trigger('t-resume');
  for (let i = 0; i < 100 && (await store.tasks.get('t-resume'))?.step !== 'placed'; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  // Simulate a crash: the lease is no longer renewed, and the flow never ends.
  const stopping = first.stop();
  const second = runner('worker-b', async (handle) => {
    seenSteps.push(handle.task.step);
    assert.deepEqual(handle.task.payload, { secret: 'kept only while the task runs' });
  });
  second.start();
  const done = await waitForState('t-resume', 'done');
  release();
  await stopping;
  await second.stop();
  assert.deepEqual(seenSteps, ['start', 'placed']);
  assert.equal(done.attempts, 2);
  assert.equal(done.owner, null);
  assert.equal(done.payload, null, 'secrets in the payload are cleared when the task ends');
});

test("a task's start and end are events of its instance: done, failed, or failed with the fault its flow recorded; a resumed one says so", async () => {
  const events = async (instanceId: string) =>
    (await store.instanceEvents.list(instanceId, { limit: 10 })).reverse().map((e) => [e.type, e.name, e.message]);
  await store.tasks.create(newTask('t-ev-done'));
  const ok = runner('worker-ev', async () => undefined);
  await ok.trigger('t-ev-done');
  await waitForState('t-ev-done', 'done');
  await ok.stop();
  assert.deepEqual(await events('instance-t-ev-done'), [
    ['task.started', 'create_instance', null],
    ['task.done', 'create_instance', null],
  ]);

  await store.tasks.create(newTask('t-ev-thrown'));
  const thrown = runner('worker-ev', async () => {
    throw new Error('internal detail that stays in the log');
  });
  await thrown.trigger('t-ev-thrown');
  await waitForState('t-ev-thrown', 'failed');
  await thrown.stop();
  assert.deepEqual((await events('instance-t-ev-thrown')).at(-1), ['task.failed', 'create_instance', null]);

  await store.tasks.create(newTask('t-ev-fault'));
  const faulted = runner('worker-ev', async (handle) => {
    await store.faults.record({ id: `f-${handle.task.id}`, instanceId: handle.task.instanceId, message: 'initdb: disk full', details: 'initdb: disk full', createdAt: new Date() });
  });
  await faulted.trigger('t-ev-fault');
  await waitForState('t-ev-fault', 'done');
  await faulted.stop();
  assert.deepEqual((await events('instance-t-ev-fault')).at(-1), ['task.failed', 'create_instance', 'initdb: disk full']);

  await store.tasks.create({ ...newTask('t-ev-resumed'), attempts: 1 });
  const resumed = runner('worker-ev', async () => undefined);
  await resumed.trigger('t-ev-resumed');
  await waitForState('t-ev-resumed', 'done');
  await resumed.stop();
  assert.deepEqual((await events('instance-t-ev-resumed'))[0], ['task.started', 'create_instance', 'resumed (attempt 2)']);

  await store.tasks.create({ ...newTask('t-ev-backup-delete'), kind: 'delete_backup' });
  const backupDeletion = runner('worker-ev', async () => undefined);
  await backupDeletion.trigger('t-ev-backup-delete');
  await waitForState('t-ev-backup-delete', 'done');
  await backupDeletion.stop();
  assert.deepEqual(await events('instance-t-ev-backup-delete'), [], "a backup deletion's subject is a backup: no instance event");
});

test('a flow that throws fails its task', async () => {
  await store.tasks.create(newTask('t-fail'));
  const r = runner('worker-c', async () => {
    throw new Error('boom');
  });
  await r.trigger('t-fail');
  await waitForState('t-fail', 'failed');
  await r.stop();
});

test('two workers triggered for the same task run its flow once', async () => {
  await store.tasks.create(newTask('t-once'));
  let runs = 0;
  const flow: Flow = async () => {
    runs += 1;
    await new Promise((r) => setTimeout(r, 50));
  };
  const a = runner('worker-d', flow, 5_000);
  const b = runner('worker-e', flow, 5_000);
  await Promise.all([a.trigger('t-once'), b.trigger('t-once'), a.trigger('t-once')]);
  await waitForState('t-once', 'done');
  await Promise.all([a.stop(), b.stop()]);
  assert.equal(runs, 1);
});

test('a task whose end could not be recorded is resumed and ends done, never marked failed', async () => {
  await store.tasks.create(newTask('t-unrecorded'));
  let finishes = 0;
  // The database refuses the first attempt to record the end (a dropped connection, a lock timeout).
  const flaky: StateStore = new Proxy(store, {
    get(target, prop) {
      if (prop !== 'tasks') return Reflect.get(target, prop);
      return new Proxy(target.tasks, {
        get(tasks, method) {
          if (method === 'finish') {
            return async (...args: Parameters<typeof tasks.finish>) => {
              if (++finishes === 1) throw new Error('connection lost');
              return tasks.finish(...args);
            };
          }
          const value: unknown = Reflect.get(tasks, method);
          return typeof value === 'function' ? value.bind(tasks) : value;
        },
      });
    },
  });
  let runs = 0;
  const r = new TaskRunner({
    store: flaky,
    logger: silentLogger(),
    workerId: 'worker-f',
    leaseMs: 300,
    sweepIntervalMs: 50,
    flows: {
      create_instance: async () => void runs++,
      delete_instance: async () => undefined,
      restart: async () => undefined,
      stop: async () => undefined,
      start: async () => undefined,
      resize_flavor: async () => undefined,
      resize_volume: async () => undefined,
      update_access: async () => undefined,
      detach_replica: async () => undefined,
      promote_to_replica_source: async () => undefined,
      eject_replica_source: async () => undefined,
      rejoin_replica: async () => undefined,
      apply_configuration: async () => undefined,
      create_backup: async () => undefined,
      verify_backup: async () => undefined,
      delete_backup: async () => undefined,
      import_backup: async () => undefined,
      upgrade: async () => undefined,
    },
  });
  r.start();
  try {
    const done = await waitForState('t-unrecorded', 'done');
    assert.equal(runs, 2, 'run again once its lease ran out');
    assert.equal(done.payload, null);
  } finally {
    await r.stop();
  }
});

test('a burst of tasks running at once gives no listener warning (each listens for the runner stopping)', async () => {
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  process.on('warning', onWarning);
  let release!: () => void;
  const blocked = new Promise<void>((r) => (release = r));
  let started = 0;
  const burst = runner('worker-burst', async () => {
    started += 1;
    await blocked;
  });
  try {
    const ids = Array.from({ length: 12 }, (_, i) => `t-burst-${i}`);
    for (const id of ids) await store.tasks.create(newTask(id));
    await Promise.all(ids.map((id) => burst.trigger(id)));
    await eventually('all 12 flows running', () => started, (n) => n === 12);
    // warnings are emitted on the next tick
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(warnings.map((w) => w.name), []);
  } finally {
    release();
    await burst.stop();
    process.off('warning', onWarning);
  }
});
