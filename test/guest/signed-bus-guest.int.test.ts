// test-lane: parallel (a vhost of its own; Redis as coffer-test-db on a random address)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import amqp from 'amqplib';
import { pino } from 'pino';
import {
  AmqpTransport,
  BusKey,
  conductorContract,
  conductorTopic,
  connectTransport,
  createRpcClient,
  guestContract,
  guestTopic,
  serveRpc,
  type BusMessage,
  type Transport,
} from '../../src/bus/index.js';
import { startGuest, engineRegistry, type Guest } from '../../src/guest/index.js';
import { killServerProcesses } from '../../src/guest/engines/redis/server-process.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { makeVhost } from '../support/rabbitmq-vhost.js';
import { connectRedis } from '../support/redis-client.js';
import { testCertificates } from '../support/test-ca.js';
import { tempDataDir } from '../support/temp-dir.js';
import { until } from '../support/wait.js';
import { localRunner } from './engine-fixture.js';

// Issue 8's attack on the bus, on the real broker against a real guest and a real Redis: a
// process that has the broker's credentials but not the bus key tells the guest to enable root,
// and re-publishes a validly signed enableRoot it captured (with RabbitMQ's firehose, as a broker
// admin could). Nothing happens: root stays locked, and the guest's log says why.

const instanceId = `signed-${randomInt(1e9)}`;
const topic = guestTopic(instanceId);

interface LogLine {
  level: number;
  msg: string;
  reason?: string;
}

describe('a guest on the signed bus, attacked by a process with the broker credentials but not the key', () => {
  let vhost: ReturnType<typeof makeVhost>;
  let root: string;
  let dir: string;
  let controlPlane: Transport;
  let guestBus: Transport;
  let attacker: AmqpTransport;
  let guest: Guest | undefined;
  const guestLog: LogLine[] = [];
  const beats: string[] = [];
  const address = `127.94.${randomInt(0, 256)}.${randomInt(2, 254)}`;

  before(async () => {
    vhost = makeVhost({ ownUser: true });
    root = await tempDataDir('coffer-sg-');
    dir = join(root, 'i');
    await mkdir(dir);
    await chmod(dir, 0o711);
    const key = BusKey.generate();
    // the roles' two ends of the bus: the control plane's, and the agent's that hosts the guest
    controlPlane = await connectTransport(vhost.url, { key });
    const logger = pino({ level: 'info' }, { write: (line: string) => void guestLog.push(JSON.parse(line) as LogLine) });
    guestBus = await connectTransport(vhost.url, { key, logger });
    attacker = await AmqpTransport.connect(vhost.url);
    await serveRpc(controlPlane, conductorContract, conductorTopic, {
      heartbeat: async ({ status }) => void beats.push(status),
      heartbeats: async (args) => void beats.push(...args.beats.map((beat) => beat.status)),
      agentHeartbeat: async () => undefined,
      reportProgress: async () => undefined,
      updateBackup: async () => undefined,
      walArchived: async () => undefined,
      renewLease: async () => ({ lease: 'none' as const }),
    });
    const runner = await localRunner();
    const discovery = await engineRegistry.redis.discover([], runner);
    guest = await startGuest({
      instance: { instanceId, dir, address, port: 6379, volumeSizeGb: 1 },
      engine: { manager: 'redis', binary: discovery.binaries[0]! },
      runner,
      desiredState: 'running',
      certificates: await testCertificates(address),
      transport: guestBus,
      logger,
      heartbeatIntervalMs: 600_000,
      saveDesiredState: async () => undefined,
      defaultClientCidrs: ['127.0.0.0/8'],
      rootAllowed: true,
    });
    const rpc = createRpcClient(controlPlane, guestContract, topic);
    await rpc.prepare({ memoryMb: 256, databases: [], users: [], adminPassword: 'Adm1n-signed-test', access: null });
    await until('the guest reports', () => beats.includes('HEALTHY') || beats.includes('FAILED'), 60_000);
    assert.ok(beats.includes('HEALTHY'), beats.join(','));
  });

  after(async () => {
    await guest?.destroy().catch(() => undefined);
    for (const t of [attacker, guestBus, controlPlane]) await t?.close().catch(() => undefined);
    if (root !== undefined) {
      await killServerProcesses(join(dir, 'data')).catch(() => undefined);
      await rm(root, { recursive: true, force: true });
    }
    vhost?.remove();
  });

  async function rootLogsIn(password: string): Promise<boolean> {
    try {
      const client = await connectRedis(address, 6379, ['default', password]);
      client.disconnect();
      return true;
    } catch (err) {
      assert.match(String(err), /WRONGPASS|NOAUTH|disabled/i, 'refused as a login, not for another reason');
      return false;
    }
  }

  it('refuses enableRoot from Coffer’s own client without the key, and a hand-made AMQP message', async () => {
    const forged = createRpcClient(attacker, guestContract, topic);
    await rejectsWithCode(forged.enableRoot({ password: 'Attacker-pass-1' }), 'BusMessageRefused');

    // the same as a stranger would send it, without Coffer's code: plain JSON to the guest's queue
    const raw = await amqp.connect(vhost.url);
    const ch = await raw.createConfirmChannel();
    const body: BusMessage = {
      service: 'guest',
      version: '1.0',
      method: 'enableRoot',
      args: { password: 'Attacker-pass-2' },
      context: { requestId: 'req-forged' },
      sentAt: Date.now(),
      seal: { v: 1, id: 'forged-1', topic, keyId: 'made-up', mac: Buffer.alloc(32).toString('base64') },
    };
    ch.sendToQueue(`coffer.${topic}`, Buffer.from(JSON.stringify(body)), { persistent: true });
    await ch.waitForConfirms();
    await raw.close();
    await until('both refusals logged', () => guestLog.filter((l) => l.level === 40 && l.reason !== undefined).length >= 2);

    assert.equal(await rootLogsIn('Attacker-pass-1'), false);
    assert.equal(await rootLogsIn('Attacker-pass-2'), false);
    const reasons = guestLog.filter((l) => l.level === 40).map((l) => l.reason);
    assert.ok(reasons.includes('unsigned'), reasons.join(','));
    assert.ok(reasons.includes('foreign-key'), reasons.join(','));
  });

  it('refuses a captured, validly signed enableRoot published again: root stays disabled', async () => {
    // A broker admin's firehose copies every message published on the vhost.
    execFileSync('rabbitmqctl', ['-q', 'trace_on', '-p', vhost.name]);
    const tap = await amqp.connect(vhost.url);
    const tapCh = await tap.createChannel();
    const { queue } = await tapCh.assertQueue('', { exclusive: true });
    await tapCh.bindQueue(queue, 'amq.rabbitmq.trace', `publish.#`);
    const captured: Buffer[] = [];
    await tapCh.consume(queue, (msg) => {
      if (msg !== null && msg.fields.routingKey === 'publish.' && /"method":"enableRoot"/.test(msg.content.toString())) {
        captured.push(msg.content);
      }
    }, { noAck: true });

    const rpc = createRpcClient(controlPlane, guestContract, topic);
    assert.deepEqual(await rpc.enableRoot({ password: 'Legit-root-pass-1' }), { name: 'default' });
    assert.equal(await rootLogsIn('Legit-root-pass-1'), true);
    await rpc.disableRoot({});
    assert.equal(await rootLogsIn('Legit-root-pass-1'), false);
    await until('the signed enableRoot captured', () => captured.length === 1);
    execFileSync('rabbitmqctl', ['-q', 'trace_off', '-p', vhost.name]);
    await tap.close();

    const copy = JSON.parse(captured[0]!.toString('utf8')) as BusMessage;
    assert.ok(copy.seal !== undefined, 'what was captured is signed');
    const replayed = await attacker.call(topic, copy, 15_000);
    assert.equal(!replayed.ok && replayed.error.code, 'BusMessageRefused');
    await attacker.cast(topic, copy);
    await until('the replay refusal logged', () => guestLog.some((l) => l.reason === 'replay'));
    assert.equal(await rootLogsIn('Legit-root-pass-1'), false, 'the replay did not enable root again');
  });
});
