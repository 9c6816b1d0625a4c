// test-lane: parallel (a RabbitMQ vhost of its own, an in-memory state database)
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, test } from 'node:test';
import amqp, { type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import { pino } from 'pino';
import { OsloNotifier } from '../../src/bus/index.js';
import { silentLogger } from '../../src/common/logger.js';
import { openStateStore, type StateStore, type TaskRow } from '../../src/db/index.js';
import { TaskRunner, type Flow } from '../../src/taskmanager/task-runner.js';
import { UsageNotifier } from '../../src/taskmanager/usage-notifications.js';
import { makeVhost } from '../support/rabbitmq-vhost.js';
import { eventually } from '../support/wait.js';
import { activePostgresql15 } from './datastore-fixture.js';

// Trove's usage notifications, end to end on a real RabbitMQ: what a consumer bound to Trove's
// exchange with `notifications.info` receives after a task ends, in oslo's messagingv2 envelope.

let store: StateStore;
let vhost: ReturnType<typeof makeVhost>;
let consumer: ChannelModel;
let channel: Channel;
let publisher: OsloNotifier;
let notifier: UsageNotifier;
const received: Array<{ envelope: Record<string, unknown>; message: Record<string, any>; routingKey: string; contentType: string | undefined }> = [];

before(async () => {
  store = await openStateStore('sqlite::memory:');
  vhost = makeVhost();
  consumer = await amqp.connect(vhost.url);
  channel = await consumer.createChannel();
  await channel.assertExchange('trove', 'topic', { durable: false });
  const { queue } = await channel.assertQueue('', { exclusive: true });
  await channel.bindQueue(queue, 'trove', 'notifications.info');
  await channel.consume(queue, (delivery) => {
    if (delivery === null) return;
    const envelope = JSON.parse(delivery.content.toString()) as Record<string, unknown>;
    received.push({ envelope, message: JSON.parse(String(envelope['oslo.message'])), routingKey: delivery.fields.routingKey, contentType: delivery.properties.contentType });
  }, { noAck: true });
  publisher = new OsloNotifier({ url: vhost.url, publisherId: 'taskmanager.test-host', logger: silentLogger() });
  notifier = new UsageNotifier({ store, publisher, logger: silentLogger(), region: 'RegionTest' });
  await store.flavors.upsert({ id: 'f-small', name: 'small', ramMb: 512, vcpus: 1, diskGb: 0, ephemeralGb: 0 });
  await store.flavors.upsert({ id: 'f-large', name: 'large', ramMb: 2048, vcpus: 2, diskGb: 0, ephemeralGb: 0 });
});

after(async () => {
  await publisher.close();
  await consumer.close();
  vhost.remove();
  await store.close();
});

async function instance(id: string, options: { internal?: boolean } = {}): Promise<void> {
  const version = await activePostgresql15(store);
  const createdAt = new Date('2026-12-04T10:11:12.345Z');
  await store.instances.create({
    id,
    name: `name-${id}`,
    tenantId: 'tenant-a',
    flavorId: 'f-large',
    volumeSizeGb: 3,
    datastoreVersionId: version.id,
    taskStatus: 'NONE',
    taskDescription: '',
    taskStartTime: null,
    access: null,
    createdAt,
    updatedAt: createdAt,
    ...(options.internal === true ? { internal: true } : {}),
  });
}

function task(instanceId: string, kind: TaskRow['kind'], payload: unknown = null): TaskRow {
  const now = new Date();
  return { id: `t-${instanceId}-${kind}`, instanceId, kind, step: 'start', state: 'pending', owner: null, leaseExpiresAt: null, payload, attempts: 0, createdAt: now, updatedAt: now };
}

const messagesFor = (instanceId: string) => received.filter((r) => r.message.payload.instance_id === instanceId);

test("a create, a flavor and a volume resize and a delete are Trove's events with Trove's payload, in oslo's envelope", async () => {
  await instance('i-usage');
  await notifier.taskEnded(task('i-usage', 'create_instance'), 'done');
  await notifier.taskEnded(task('i-usage', 'resize_flavor', { oldFlavorId: 'f-small', newFlavorId: 'f-large' }), 'done');
  await notifier.taskEnded(task('i-usage', 'resize_volume', { oldSizeGb: 1, newSizeGb: 3 }), 'done');
  await store.instances.markDeleted('i-usage', new Date('2026-12-04T11:00:00.000Z'));
  await notifier.taskEnded(task('i-usage', 'delete_instance'), 'done');
  const messages = await eventually('four notifications', async () => messagesFor('i-usage'), (m) => m.length === 4);

  for (const { envelope, message, routingKey, contentType } of messages) {
    assert.equal(envelope['oslo.version'], '2.0');
    assert.equal(routingKey, 'notifications.info');
    assert.equal(contentType, 'application/json');
    assert.equal(message.priority, 'INFO');
    assert.equal(message.publisher_id, 'taskmanager.test-host');
    assert.match(message.message_id, /^[0-9a-f-]{36}$/);
    assert.match(message.timestamp, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$/);
  }
  assert.deepEqual(messages.map((m) => m.message.event_type), ['trove.instance.create', 'trove.instance.modify_flavor', 'trove.instance.modify_volume', 'trove.instance.delete']);
  const [create, flavor, volume, deleted] = messages.map((m) => m.message.payload);
  assert.deepEqual(create, {
    availability_zone: null,
    created_at: '2026-12-04T10:11:12Z',
    name: 'name-i-usage',
    instance_id: 'i-usage',
    instance_name: 'name-i-usage',
    instance_size: 2048,
    instance_type: 'large',
    instance_type_id: 'f-large',
    launched_at: '2026-12-04T10:11:12Z',
    nova_instance_id: null,
    region: 'RegionTest',
    state_description: 'ACTIVE',
    state: 'ACTIVE',
    tenant_id: 'tenant-a',
    user_id: null,
    volume_size: 3,
    nova_volume_id: null,
    service_id: 'ac277e0d-4f21-40aa-b347-1ea31e571720',
  });
  assert.equal(flavor.old_instance_size, 512);
  assert.match(flavor.modify_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(volume.old_volume_size, 1);
  assert.equal(volume.volume_size, 3);
  assert.equal(deleted.deleted_at, '2026-12-04T11:00:00Z');
  assert.equal(deleted.state, 'DELETED');
});

test('a failed task, a resize that did not take, a restart and a scratch instance notify nothing', async () => {
  await instance('i-quiet');
  await instance('i-scratch', { internal: true });
  await notifier.taskEnded(task('i-quiet', 'create_instance'), 'failed');
  await notifier.taskEnded(task('i-quiet', 'resize_flavor', { oldFlavorId: 'f-large', newFlavorId: 'f-small' }), 'done');
  await notifier.taskEnded(task('i-quiet', 'delete_instance'), 'done');
  await notifier.taskEnded(task('i-quiet', 'restart'), 'done');
  await notifier.taskEnded(task('i-scratch', 'create_instance'), 'done');
  // a later notification arriving proves the earlier ones had their chance
  await notifier.taskEnded(task('i-quiet', 'resize_volume', { oldSizeGb: 2, newSizeGb: 3 }), 'done');
  await eventually('the resize notification', async () => messagesFor('i-quiet'), (m) => m.length === 1);
  assert.deepEqual(messagesFor('i-quiet').map((m) => m.message.event_type), ['trove.instance.modify_volume']);
  assert.deepEqual(messagesFor('i-scratch'), []);
});

test("the task runner notifies once an instance task's end is recorded; a build that failed does not, one that met a crash on the way does", async () => {
  await instance('i-runner');
  await instance('i-runner-faulted');
  const ok: Flow = async () => undefined;
  // as the create flow ends a build it can name the failure of: a fault, the instance in error
  const faulting: Flow = async (handle) => {
    await store.faults.record({ id: `f-${handle.task.id}`, instanceId: handle.task.instanceId, message: 'initdb: disk full', details: 'initdb: disk full', createdAt: new Date() });
    await store.instances.update(handle.task.instanceId, { taskStatus: 'BUILDING_ERROR_SERVER' });
  };
  const runner = (flow: Flow) =>
    new TaskRunner({
      store,
      logger: silentLogger(),
      workerId: 'worker-usage',
      leaseMs: 5000,
      sweepIntervalMs: 60_000,
      onInstanceTaskEnded: (t, outcome) => notifier.taskEnded(t, outcome),
      flows: { create_instance: flow, delete_instance: ok, restart: ok, resize_flavor: ok, resize_volume: ok, update_access: ok, detach_replica: ok, promote_to_replica_source: ok, eject_replica_source: ok, rejoin_replica: ok, apply_configuration: ok, create_backup: ok, delete_backup: ok, import_backup: ok, verify_backup: ok, stop: ok, start: ok, upgrade: ok },
    });
  const faulted = runner(faulting);
  await store.tasks.create(task('i-runner-faulted', 'create_instance'));
  await faulted.trigger('t-i-runner-faulted-create_instance');
  await eventually('the faulted task done', () => store.tasks.get('t-i-runner-faulted-create_instance'), (t) => t?.state === 'done');
  await faulted.stop();
  const fine = runner(ok);
  await store.tasks.create(task('i-runner', 'create_instance'));
  await fine.trigger('t-i-runner-create_instance');
  await eventually('the create notification', async () => messagesFor('i-runner'), (m) => m.length === 1);
  await fine.stop();
  assert.equal(messagesFor('i-runner')[0]!.message.event_type, 'trove.instance.create');
  assert.deepEqual(messagesFor('i-runner-faulted'), [], 'an instance whose build failed is not billed');

  // a heartbeat's fault (the engine crashed once and came back) during a build that went well
  await instance('i-runner-crashed');
  const crashedOnce = runner(async (handle) => {
    await store.faults.record({ id: `f-${handle.task.id}`, instanceId: handle.task.instanceId, message: 'PostgreSQL exited', details: 'PostgreSQL exited', createdAt: new Date() });
  });
  await store.tasks.create(task('i-runner-crashed', 'create_instance'));
  await crashedOnce.trigger('t-i-runner-crashed-create_instance');
  await eventually('the create notification', async () => messagesFor('i-runner-crashed'), (m) => m.length === 1);
  await crashedOnce.stop();

});

test('an exchange the operator declared durable is used as it is; a broker that is down costs the notification only', async () => {
  const durable = makeVhost();
  try {
    const admin = await amqp.connect(durable.url);
    const adminChannel = await admin.createChannel();
    await adminChannel.assertExchange('trove', 'topic', { durable: true });
    const { queue } = await adminChannel.assertQueue('', { exclusive: true });
    await adminChannel.bindQueue(queue, 'trove', 'notifications.info');
    const onDurable = new OsloNotifier({ url: durable.url, publisherId: 'taskmanager.test-host', logger: silentLogger() });
    await onDurable.publish('trove.instance.create', { instance_id: 'i-durable' });
    await onDurable.close();
    const got = (await eventually('the message', () => adminChannel.get(queue, { noAck: true }), (m) => m !== false)) as GetMessage;
    const envelope = JSON.parse(got.content.toString()) as { 'oslo.message': string };
    assert.equal(JSON.parse(envelope['oslo.message']).payload.instance_id, 'i-durable');
    await admin.close();
  } finally {
    durable.remove();
  }

  // a port nobody listens on
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const down = new OsloNotifier({ url: `amqp://guest:guest@127.0.0.1:${port}/`, publisherId: 'taskmanager.test-host', logger, attempts: 1 });
  await instance('i-down');
  await new UsageNotifier({ store, publisher: down, logger, region: 'RegionTest' }).taskEnded(task('i-down', 'create_instance'), 'done');
  assert.deepEqual(lines.map((l) => l.msg), ['usage notification not sent']);
  await down.close();
});
