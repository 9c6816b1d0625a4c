// test-lane: parallel (random topics on the shared broker, a private node on free ports)
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import amqp from 'amqplib';
import { z } from 'zod';
import { AmqpTransport, BusKey, call, connectTransport, createRpcClient, defineService, serveRpc } from '../../src/bus/index.js';
import type { BusMessage, BusReply } from '../../src/bus/index.js';
import { startRabbitmqNode, type RabbitmqNode } from '../support/rabbitmq-node.js';
import { transportSuite } from './transport.suite.js';
import { until } from '../support/wait.js';

// Runs the conformance suite on the shared RabbitMQ, then what only a real broker can show:
// separate connections competing, the latency a call costs, and a broker restart (on a private
// node: the shared one belongs to everybody).

const sharedUrl = 'amqp://guest:guest@127.0.0.1:5672';

transportSuite('AmqpTransport', () => AmqpTransport.connect(sharedUrl, { reconnectDelayMs: 100 }));

const echo = defineService('echo', '1.0', {
  double: call(z.object({ n: z.number() }), z.object({ doubled: z.number() }), 5_000),
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function note(id: number): BusMessage {
  return { service: 'notes', version: '1.0', method: 'note', args: { id }, context: { requestId: `req-${id}` }, sentAt: Date.now() };
}

describe('AmqpTransport on the shared broker', () => {
  it('is what connectTransport gives for an amqp:// URL, and an unreachable broker is BusUnavailable', async () => {
    const transport = await connectTransport(sharedUrl, { key: BusKey.generate() });
    assert.ok(transport.inner instanceof AmqpTransport);
    await transport.close();
    await assert.rejects(AmqpTransport.connect('amqp://guest:guest@127.0.0.1:1'), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'BusUnavailable');
      assert.doesNotMatch(err.message, /guest:guest/, 'the password stays out of the message');
      return true;
    });
  });

  it('lets consumers on separate connections compete, and calls cross connections', async () => {
    const [producer, workerA, workerB] = await Promise.all([1, 2, 3].map(() => AmqpTransport.connect(sharedUrl)));
    const topic = `test.amqp.${randomUUID()}`;
    try {
      const seen = { a: [] as number[], b: [] as number[] };
      const record = (into: number[]) => async (m: BusMessage): Promise<BusReply> => {
        into.push((m.args as { id: number }).id);
        return { ok: true, result: null };
      };
      await workerA!.subscribe(topic, record(seen.a));
      await workerB!.subscribe(topic, record(seen.b));
      for (let id = 0; id < 20; id++) await producer!.cast(topic, note(id));
      await until('every cast', () => seen.a.length + seen.b.length === 20);
      assert.ok(seen.a.length > 0 && seen.b.length > 0, `both workers got a share (${seen.a.length}/${seen.b.length})`);

      const callTopic = `${topic}.calls`;
      await serveRpc(workerA!, echo, callTopic, { double: async ({ n }) => ({ doubled: n * 2 }) });
      assert.deepEqual(await createRpcClient(producer!, echo, callTopic).double({ n: 4 }), { doubled: 8 });
      await producer!.deleteTopic(callTopic);
    } finally {
      await producer!.deleteTopic(topic);
      await Promise.all([producer, workerA, workerB].map((t) => t!.close()));
    }
  });
});

describe('AmqpTransport when a queue cannot be consumed', () => {
  it('refuses the subscription and never consumes behind the caller’s back later', async () => {
    const transport = await AmqpTransport.connect(sharedUrl, { reconnectDelayMs: 50 });
    const raw = await amqp.connect(sharedUrl);
    const topic = `test.amqp.${randomUUID()}`;
    try {
      // A queue of that name made by someone else, with other arguments: declaring ours fails.
      const ch = await raw.createChannel();
      await ch.assertQueue(`coffer.${topic}`, { durable: true, arguments: { 'x-max-length': 5 } });
      const handled: number[] = [];
      await assert.rejects(
        transport.subscribe(topic, async (m) => {
          handled.push((m.args as { id: number }).id);
          return { ok: true, result: null };
        }),
        { code: 'BusUnavailable' },
      );
      // Once the queue is what we expect, a consumer still retrying would take the next cast.
      await ch.deleteQueue(`coffer.${topic}`);
      await transport.cast(topic, note(1));
      await sleep(500);
      assert.deepEqual(handled, []);
      assert.equal((await ch.checkQueue(`coffer.${topic}`)).messageCount, 1, 'the cast waits for a real consumer');
      await ch.close();
    } finally {
      await transport.deleteTopic(topic);
      await transport.close();
      await raw.close();
    }
  });
});

describe('AmqpTransport across a broker restart (private RabbitMQ node)', () => {
  let node: RabbitmqNode | undefined;
  before(async () => {
    node = await startRabbitmqNode();
  });
  after(async () => {
    await node?.stop();
  });

  it('reconnects by itself, delivers every acknowledged cast, and serves calls again', async () => {
    const broker = node!;
    const options = { reconnectDelayMs: 100, reconnectWaitMs: 30_000 };
    const client = await AmqpTransport.connect(broker.url, options);
    const server = await AmqpTransport.connect(broker.url, options);
    try {
      const castTopic = 'restart.casts';
      const callTopic = 'restart.calls';
      await serveRpc(server, echo, callTopic, { double: async ({ n }) => ({ doubled: n * 2 }) });
      const rpc = createRpcClient(client, echo, callTopic);
      assert.deepEqual(await rpc.double({ n: 1 }), { doubled: 2 });

      // The consumer holds what it is handed until the restart: those messages are in flight,
      // unacknowledged, when the broker goes; the rest still wait in the queue.
      let restarted = false;
      let releaseHeld!: () => void;
      const held = new Promise<void>((resolve) => (releaseHeld = resolve));
      const deliveredAfterRestart = new Set<number>();
      let heldBeforeRestart = 0;
      await server.subscribe(castTopic, async (m) => {
        const id = (m.args as { id: number }).id;
        if (restarted) deliveredAfterRestart.add(id);
        else {
          heldBeforeRestart++;
          await held;
        }
        return { ok: true, result: null };
      });
      const heard: number[] = [];
      await server.listen('restart.events', async (m) => void heard.push((m.args as { id: number }).id));
      const total = 40;
      for (let id = 0; id < total; id++) await client.cast(castTopic, note(id)); // each confirmed by the broker
      await until('some casts in flight', () => heldBeforeRestart > 0);

      // BusUnavailable, not BusTimeout: a call pending at the drop fails then, not 30 s later.
      const nobody = assert.rejects(client.call('restart.nobody', note(-1), 30_000), { code: 'BusUnavailable' });
      await sleep(50);
      await broker.stopApp();
      await nobody;

      // A cast while the broker is away waits for it instead of failing.
      let lateCastDone = false;
      const lateCast = client.cast(castTopic, note(total)).then(() => {
        lateCastDone = true;
      });
      await sleep(300);
      assert.equal(lateCastDone, false);

      restarted = true;
      await broker.startApp();
      await lateCast;
      releaseHeld();

      await until('every acknowledged cast after the restart', () => deliveredAfterRestart.size === total + 1, 20_000);
      assert.deepEqual(await rpc.double({ n: 21 }), { doubled: 42 });
      assert.ok(heldBeforeRestart > 0 && heldBeforeRestart < total, `${heldBeforeRestart} were in flight at the drop`);

      // A listener binds a queue of its own again on the new connection; what was published
      // before it did is lost, as publish() says, so the publisher tries until one arrives.
      await until('a listener hears published messages again after the restart', async () => {
        await client.publish('restart.events', note(7));
        await sleep(100);
        return heard.includes(7);
      }, 20_000);
    } finally {
      await Promise.all([client.close(), server.close()]);
    }
  });
});
