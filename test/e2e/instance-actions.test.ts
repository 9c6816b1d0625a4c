// test-lane: parallel (coffer serve on a loopback range, a port and a data directory of its own; it checks processes of its own instances only)
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { after, before, test } from 'node:test';
import amqp, { type ChannelModel } from 'amqplib';
import pg from 'pg';
import { request, trove, waitForInstance, type Session } from '../support/api-client.js';
import { join } from 'node:path';
import { runCli } from '../support/coffer-process.js';
import { makeVhost } from '../support/rabbitmq-vhost.js';
import { eventually } from '../support/wait.js';
import { appPassword, createInstance, deleteAndVerifyGone, waitActive } from './instance-lifecycle.js';
import { startServe, type ServeRun } from './serve-run.js';

// `coffer serve` end to end: restart, resize of the flavor and of the volume, an access update
// and reset_status on one real PostgreSQL instance, each checked on the engine itself.

const adminPassword = 'Actions-admin-pass-1234';
let run: ServeRun;
let dataDir: ServeRun['dataDir'];
let session: Session;
let baseUrl: string;

// Trove's usage notifications go to a vhost of this file's, where a consumer bound as Ceilometer
// binds (exchange trove, notifications.info) collects them
let vhost: ReturnType<typeof makeVhost>;
let consumer: ChannelModel;
const notifications: Array<{ event_type: string; payload: Record<string, unknown> }> = [];

before(async () => {
  vhost = makeVhost();
  consumer = await amqp.connect(vhost.url);
  const channel = await consumer.createChannel();
  await channel.assertExchange('trove', 'topic', { durable: false });
  const { queue } = await channel.assertQueue('', { exclusive: true });
  await channel.bindQueue(queue, 'trove', 'notifications.info');
  await channel.consume(queue, (delivery) => {
    if (delivery !== null) notifications.push(JSON.parse((JSON.parse(delivery.content.toString()) as { 'oslo.message': string })['oslo.message']));
  }, { noAck: true });
  run = await startServe('coffer-e2e-actions', adminPassword, ['--address-pool', '127.95.0.0/24', '--notification-url', vhost.url]);
  ({ dataDir, session, baseUrl } = run);
});

after(async () => {
  await run?.stop();
  await consumer?.close();
  vhost?.remove();
});

/** Runs `sql` as the instance's user, connecting from `localAddress` when given. */
async function query(instance: any, sql: string, localAddress?: string): Promise<any[]> {
  const host = instance.addresses[0].address as string;
  const client = new pg.Client({
    host,
    port: 5432,
    user: 'app',
    password: appPassword,
    database: 'app',
    ...(localAddress === undefined
      ? {}
      : {
          // pg connects its stream with (port, host); the source address is bound here.
          stream: () => {
            const socket = new Socket();
            const connect = socket.connect.bind(socket);
            socket.connect = ((p: number, h: string) => connect({ port: p, host: h, localAddress })) as typeof socket.connect;
            return socket;
          },
        }),
  });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

async function action(id: string, body: unknown): Promise<void> {
  const res = await request('POST', trove(session, `/instances/${id}/action`), { token: session.token, body });
  assert.equal(res.status, 202, JSON.stringify(res.body));
}

/** Waits until no task runs (operating_status is only shown then) and the engine is healthy. */
function settled(id: string, also: (instance: any) => boolean = () => true): Promise<{ instance: any }> {
  return waitForInstance(
    session,
    id,
    (i) => i?.status === 'ERROR' || (i?.status === 'ACTIVE' && i?.operating_status === 'HEALTHY' && also(i)),
    60_000,
  );
}

test('restart, resize flavor and volume, update access and reset_status on a running PostgreSQL', async () => {
  const created = await createInstance(session, 'e2e-actions');
  let instance = await waitActive(session, created.id);
  assert.equal(instance.flavor.id, '1');

  // restart: a new postmaster, the same data
  await query(instance, 'CREATE TABLE kept (v text); INSERT INTO kept VALUES (\'before restart\')');
  const [{ started: startedBefore }] = await query(instance, 'SELECT pg_postmaster_start_time() AS started');
  await action(created.id, { restart: {} });
  instance = (await settled(created.id)).instance;
  assert.equal(instance.status, 'ACTIVE', JSON.stringify(instance.fault));
  const [{ started: startedAfter }] = await query(instance, 'SELECT pg_postmaster_start_time() AS started');
  assert.ok(startedAfter > startedBefore, 'the postmaster was started again');
  assert.deepEqual(await query(instance, 'SELECT v FROM kept'), [{ v: 'before restart' }]);

  // resize flavor: m1.tiny (256 MB) to m1.small (512 MB) re-renders shared_buffers (a quarter of RAM)
  assert.deepEqual(await query(instance, 'SHOW shared_buffers'), [{ shared_buffers: '64MB' }]);
  await action(created.id, { resize: { flavorRef: '2' } });
  instance = (await settled(created.id, (i) => i.flavor.id === '2')).instance;
  assert.equal(instance.status, 'ACTIVE', JSON.stringify(instance.fault));
  assert.deepEqual(await query(instance, 'SHOW shared_buffers'), [{ shared_buffers: '128MB' }]);
  const same = await request<any>('POST', trove(session, `/instances/${created.id}/action`), { token: session.token, body: { resize: { flavorRef: '2' } } });
  assert.equal(same.status, 400);

  // resize volume, through the CLI: the instance's allowance grows
  const env = { COFFER_CONFIG_DIR: join(dataDir.path, 'cli') };
  const login = await runCli(['login', '--url', baseUrl, '--user', 'admin', '--project', 'admin', '--password-stdin'], {
    env,
    input: `${adminPassword}\n`,
  });
  assert.equal(login.code, 0, login.stderr);
  const resized = await runCli(['instance', 'resize-volume', 'e2e-actions', '2'], { env });
  assert.equal(resized.code, 0, resized.stderr + resized.stdout);
  // the local driver's resize is only a record, often done before the first poll
  assert.match(resized.stderr, /Resizing the volume of e2e-actions: (RESIZE|ACTIVE)/);
  assert.match(resized.stdout, /^Instance e2e-actions now has a 2 GB volume\. \(ACTIVE \/ HEALTHY/);
  instance = (await settled(created.id)).instance;
  assert.equal(instance.volume.size, 2);

  // update access: before it, any loopback source may connect; after it, only 127.95.77.0/24
  assert.equal((await query(instance, 'SELECT 1 AS one', '127.95.78.5'))[0].one, 1);
  const put = await request('PUT', trove(session, `/instances/${created.id}`), {
    token: session.token,
    body: { instance: { access: { is_public: false, allowed_cidrs: ['127.95.77.0/24'] } } },
  });
  assert.equal(put.status, 202, JSON.stringify(put.body));
  instance = (await settled(created.id)).instance;
  assert.equal(instance.status, 'ACTIVE', JSON.stringify(instance.fault));
  assert.deepEqual(instance.access, { is_public: false, allowed_cidrs: ['127.95.77.0/24'] });
  assert.equal((await query(instance, 'SELECT 1 AS one', '127.95.77.5'))[0].one, 1);
  await assert.rejects(query(instance, 'SELECT 1', '127.95.78.5'), /no pg_hba\.conf entry for host "127\.95\.78\.5"/);

  // reset_status (admin): ACTIVE with operating_status ERROR until the guest's next heartbeat
  await action(created.id, { reset_status: {} });
  const reset = await request<any>('GET', trove(session, `/instances/${created.id}`), { token: session.token });
  assert.equal(reset.body.instance.status, 'ACTIVE');
  assert.equal(reset.body.instance.operating_status, 'ERROR');
  instance = (await settled(created.id)).instance;
  assert.equal(instance.operating_status, 'HEALTHY', 'the next heartbeat tells the engine is healthy');

  // the instance's events tell all of the above, oldest first, through the CLI
  const events = await runCli(['instance', 'events', 'e2e-actions', '--limit', '100'], { env });
  assert.equal(events.code, 0, events.stderr);
  const told = events.stdout.split('\n').map((line) => line.split('│')[2]?.trim());
  const order = ['create_instance started', 'status BUILD', 'status HEALTHY', 'create_instance done', 'restart started', 'restart done', 'resize_flavor done', 'resize_volume done', 'update_access done', 'status ERROR', 'status HEALTHY'];
  let at = -1;
  for (const text of order) {
    const found = told.indexOf(text, at + 1);
    assert.ok(found > at, `"${text}" after "${told[at] ?? 'the start'}" in:\n${events.stdout}`);
    at = found;
  }

  await deleteAndVerifyGone(session, created.id, dataDir.path);

  // billing heard of the instance as Trove's taskmanager would have told it
  const usage = await eventually('the delete notification', async () => notifications.filter((n) => n.payload['instance_id'] === created.id), (n) => n.some((m) => m.event_type === 'trove.instance.delete'));
  assert.deepEqual(usage.map((n) => n.event_type), ['trove.instance.create', 'trove.instance.modify_flavor', 'trove.instance.modify_volume', 'trove.instance.delete']);
  assert.deepEqual(usage.map((n) => [n.payload['instance_size'], n.payload['volume_size']]), [[256, 1], [512, 1], [512, 2], [512, 2]]);
  assert.equal(usage[1]!.payload['old_instance_size'], 256);
  assert.equal(usage[2]!.payload['old_volume_size'], 1);
});
