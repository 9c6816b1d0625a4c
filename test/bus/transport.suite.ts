import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { CofferError } from '../../src/common/errors.js';
import { pino } from 'pino';
import { BusKey, call, cast, createRpcClient, defineService, sealMessage, serveRpc, SignedTransport } from '../../src/bus/index.js';
import type { BusMessage, BusReply, MessageHandler, Transport } from '../../src/bus/index.js';
import type { Logger } from '../../src/common/index.js';
import { until } from '../support/wait.js';

// The conformance suite every Transport adapter runs (in-process and AMQP): the same promises,
// checked the same way, through the real rpc layer and through raw transport calls. Roles use
// an adapter under SignedTransport, and so does the suite; `raw` is the adapter itself, which
// plays whoever has the broker's credentials but not the key.

const testContract = defineService('suite', '1.0', {
  double: call(
    z.object({ n: z.number().int() }),
    z.object({ doubled: z.number().int(), requestId: z.string(), projectId: z.string().optional(), sentAt: z.number() }),
    5_000,
  ),
  fail: call(z.object({ code: z.string(), message: z.string() }), z.object({}), 5_000),
  sleep: call(z.object({ ms: z.number().int() }), z.object({ slept: z.number().int() }), 5_000),
  badOutput: call(z.object({}), z.object({ value: z.string() }), 5_000),
  note: cast(z.object({ id: z.number().int() })),
});

/** a client that says it speaks `version` of the suite's contract */
const speaking = (version: string) => defineService('suite', version, testContract.methods);

/** a contract with nested objects, for unknown fields deep in the arguments */
const nestedContract = defineService('nested', '1.0', {
  put: call(
    z.object({ user: z.object({ name: z.string(), databases: z.array(z.object({ name: z.string() })).default([]) }) }),
    z.object({ name: z.string() }),
    5_000,
  ),
  store: cast(z.object({ id: z.number().int() })),
});

/** a logger whose lines the test reads */
function capturedLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  return { lines, logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) }) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function message(method: string, args: unknown): BusMessage {
  return {
    service: 'suite',
    version: '1.0',
    method,
    args,
    context: { requestId: `req-${randomUUID()}` },
    sentAt: Date.now(),
  };
}

const handled: BusReply = { ok: true, result: null };

/** A raw handler that records the `id` argument of every message it is handed. */
function recorder(): { ids: number[]; handler: MessageHandler } {
  const ids: number[] = [];
  return {
    ids,
    handler: async (m) => {
      ids.push((m.args as { id: number }).id);
      return handled;
    },
  };
}

interface LogLine {
  level: number;
  msg: string;
  reason?: string;
  topic?: string;
  suppressedSinceLastLine?: number;
}

interface Bus {
  /** the adapter under a SignedTransport with the suite's key, as the roles use it */
  transport: Transport;
  /** the adapter itself: publishes whatever it is given, unsigned */
  raw: Transport;
  key: BusKey;
  /** a fresh topic name, deleted after the test */
  topic(): string;
  /** the signed transport's warnings so far */
  warnings(): LogLine[];
}

const warnLevel = 40;

export function transportSuite(name: string, makeTransport: () => Promise<Transport>, cleanup?: () => Promise<void>): void {
  describe(`${name}: Transport conformance`, () => {
    let janitor: Transport;
    before(async () => {
      janitor = await makeTransport();
    });
    after(async () => {
      await janitor.close();
      await cleanup?.();
    });

    async function withBus(test: (bus: Bus) => Promise<void>): Promise<void> {
      const raw = await makeTransport();
      const lines: LogLine[] = [];
      const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
      const key = BusKey.generate();
      const transport = new SignedTransport(raw, { key, logger });
      const topics: string[] = [];
      const topic = () => {
        const t = `test.suite.${randomUUID()}`;
        topics.push(t);
        return t;
      };
      const warnings = () => lines.filter((line) => line.level >= warnLevel);
      try {
        await test({ transport, raw, key, topic, warnings });
      } finally {
        await transport.close();
        for (const t of topics) await janitor.deleteTopic(t);
      }
    }

    const handlers = {
      double: async ({ n }: { n: number }, meta: { context: { requestId: string; projectId?: string }; sentAt: number }) => ({
        doubled: n * 2,
        requestId: meta.context.requestId,
        projectId: meta.context.projectId,
        sentAt: meta.sentAt,
      }),
      fail: async ({ code, message: text }: { code: string; message: string }): Promise<Record<string, never>> => {
        if (code === 'plain') throw new Error(text);
        throw new CofferError(code as 'InstanceNotFound', text, { details: 'from the handler' });
      },
      sleep: async ({ ms }: { ms: number }) => {
        await sleep(ms);
        return { slept: ms };
      },
      badOutput: async () => ({ value: 42 }) as unknown as { value: string },
      note: async () => {},
    };

    it('answers a call with the typed output, the request context and the send time', () =>
      withBus(async ({ transport, topic }) => {
        const t = topic();
        await serveRpc(transport, testContract, t, handlers);
        const client = createRpcClient(transport, testContract, t);
        const sentAfter = performance.timeOrigin + performance.now();
        const out = await client.double({ n: 21 }, { requestId: 'req-suite-1', projectId: 'project-9' });
        assert.equal(out.doubled, 42);
        assert.equal(out.requestId, 'req-suite-1');
        assert.equal(out.projectId, 'project-9');
        assert.ok(out.sentAt >= sentAfter && out.sentAt <= Date.now() + 1, `sentAt ${out.sentAt} is the send time`);
        const generated = await client.double({ n: 1 });
        assert.match(generated.requestId, /^req-/);
      }));

    it('brings a CofferError thrown by a handler back with the same code, message and details', () =>
      withBus(async ({ transport, topic }) => {
        const t = topic();
        await serveRpc(transport, testContract, t, handlers);
        const client = createRpcClient(transport, testContract, t);
        await assert.rejects(client.fail({ code: 'InstanceNotFound', message: 'Instance i-1 cannot be found.' }), (err) => {
          assert.ok(err instanceof CofferError);
          assert.equal(err.code, 'InstanceNotFound');
          assert.equal(err.message, 'Instance i-1 cannot be found.');
          assert.equal(err.details, 'from the handler');
          return true;
        });
        await assert.rejects(client.fail({ code: 'plain', message: 'disk on fire' }), (err) => {
          assert.ok(err instanceof CofferError);
          assert.equal(err.code, 'Internal');
          assert.equal(err.message, 'disk on fire');
          return true;
        });
      }));

    it('validates inputs on both ends and outputs on the client', () =>
      withBus(async ({ transport, topic }) => {
        const t = topic();
        let calls = 0;
        await serveRpc(transport, testContract, t, {
          ...handlers,
          double: async (args, meta) => {
            calls++;
            return handlers.double(args, meta);
          },
        });
        const client = createRpcClient(transport, testContract, t);
        await assert.rejects(client.double({ n: 'seven' } as never), { code: 'BadRequest' });
        assert.equal(calls, 0, 'an invalid call is never sent');
        const raw = await transport.call(t, message('double', { n: 'seven' }), 5_000);
        assert.equal(raw.ok, false);
        assert.equal(!raw.ok && raw.error.code, 'BadRequest');
        const unknown = await transport.call(t, message('noSuchMethod', {}), 5_000);
        assert.equal(!unknown.ok && unknown.error.code, 'NotImplemented');
        await assert.rejects(client.badOutput({}), { code: 'Internal' });
        assert.equal(calls, 0);
      }));

    it('times out a call nobody answers, and never delivers the stale request', () =>
      withBus(async ({ transport, topic }) => {
        const t = topic();
        const client = createRpcClient(transport, testContract, t, { timeoutMs: 300 });
        const started = Date.now();
        await assert.rejects(client.double({ n: 1 }), (err) => {
          assert.ok(err instanceof CofferError);
          assert.equal(err.code, 'BusTimeout');
          return true;
        });
        const elapsed = Date.now() - started;
        assert.ok(elapsed >= 290, `gave up after ${elapsed} ms, before its timeout`);
        // the broker counts the request's expiry from when it queued it, a moment after the
        // caller's clock started (under load, more than a moment: a CI run caught it still queued)
        await sleep(1000);
        const seen: BusMessage[] = [];
        await transport.subscribe(t, async (m) => {
          seen.push(m);
          return handled;
        });
        await sleep(300);
        assert.equal(seen.length, 0, 'the expired request was dropped');
        // the subscription does receive: a fresh request reaches it (it answers no reply, so the call fails)
        await assert.rejects(client.double({ n: 2 }));
        assert.deepEqual(
          seen.map((m) => m.args),
          [{ n: 2 }],
        );
      }));

    it('times out a slow handler and ignores its late reply', () =>
      withBus(async ({ transport, topic }) => {
        const t = topic();
        await serveRpc(transport, testContract, t, handlers);
        const impatient = createRpcClient(transport, testContract, t, { timeoutMs: 150 });
        const client = createRpcClient(transport, testContract, t);
        await assert.rejects(impatient.sleep({ ms: 500 }), { code: 'BusTimeout' });
        assert.equal((await client.double({ n: 5 })).doubled, 10);
        await sleep(450); // the late reply arrives now and must go nowhere
        assert.deepEqual(await client.sleep({ ms: 1 }), { slept: 1 });
      }));

    it('delivers each cast to exactly one of several competing consumers', () =>
      withBus(async ({ transport, topic }) => {
        const t = topic();
        const a = recorder();
        const b = recorder();
        await transport.subscribe(t, a.handler);
        await transport.subscribe(t, b.handler);
        const client = createRpcClient(transport, testContract, t);
        const count = 40;
        for (let id = 0; id < count; id++) await client.note({ id });
        await until('every cast', () => a.ids.length + b.ids.length >= count);
        await sleep(150);
        const all = [...a.ids, ...b.ids].sort((x, y) => x - y);
        assert.deepEqual(all, Array.from({ length: count }, (_, i) => i), 'each cast exactly once');
        assert.ok(a.ids.length > 0 && b.ids.length > 0, `both consumers got a share (${a.ids.length}/${b.ids.length})`);
      }));

    it('keeps casts sent before anyone subscribes until a consumer comes', () =>
      withBus(async ({ transport, topic }) => {
        const t = topic();
        const client = createRpcClient(transport, testContract, t);
        for (const id of [1, 2, 3]) await client.note({ id });
        await sleep(100);
        const r = recorder();
        await transport.subscribe(t, r.handler);
        await until('the queued casts', () => r.ids.length >= 3);
        await sleep(100);
        assert.deepEqual([...r.ids].sort(), [1, 2, 3]);
      }));

    it('answers 500 concurrent calls, each with its own reply', () =>
      withBus(async ({ transport, topic }) => {
        const t = topic();
        await serveRpc(transport, testContract, t, handlers);
        const client = createRpcClient(transport, testContract, t);
        const ns = Array.from({ length: 500 }, (_, i) => i - 250);
        const outs = await Promise.all(ns.map((n) => client.double({ n }, { requestId: `req-${n}` })));
        outs.forEach((out, i) => {
          assert.equal(out.doubled, ns[i]! * 2);
          assert.equal(out.requestId, `req-${ns[i]}`);
        });
      }));

    it('redelivers a cast whose handler throws, but not one answered with an error reply', () =>
      withBus(async ({ transport, topic }) => {
        const throwing = topic();
        let attempts = 0;
        let done = false;
        await transport.subscribe(throwing, async () => {
          attempts++;
          if (attempts === 1) throw new Error('transient failure');
          done = true;
          return handled;
        });
        await transport.cast(throwing, message('note', { id: 1 }));
        await until('the redelivery', () => done);
        assert.equal(attempts, 2);

        const refusing = topic();
        let refusals = 0;
        await transport.subscribe(refusing, async () => {
          refusals++;
          return { ok: false, error: { code: 'GuestError', message: 'no' } };
        });
        await transport.cast(refusing, message('note', { id: 2 }));
        await until('the delivery', () => refusals > 0);
        await sleep(500);
        assert.equal(refusals, 1, 'an error reply settles the message');
      }));

    it('refuses a message of a contract version it does not serve, and takes an older minor version', () =>
      withBus(async ({ transport, topic }) => {
        const t = topic();
        let calls = 0;
        let notes = 0;
        await serveRpc(transport, speaking('1.1'), t, {
          ...handlers,
          double: async (args, meta) => {
            calls++;
            return handlers.double(args, meta);
          },
          note: async () => {
            notes++;
          },
        });
        assert.equal((await createRpcClient(transport, speaking('1.0'), t).double({ n: 2 })).doubled, 4);
        assert.equal((await createRpcClient(transport, speaking('1.1'), t).double({ n: 3 })).doubled, 6);
        for (const version of ['1.2', '2.0', '0.1', 'one']) {
          await assert.rejects(createRpcClient(transport, speaking(version), t).double({ n: 1 }), (err) => {
            assert.ok(err instanceof CofferError);
            assert.equal(err.code, 'ContractVersionUnsupported');
            assert.match(err.message, new RegExp(`serves contract version 1\\.1; the message to suite\\.double speaks ${version}`));
            return true;
          });
        }
        assert.equal(calls, 2, 'a refused message never reaches its handler');
        // a refused cast is settled, not redelivered forever
        await createRpcClient(transport, speaking('2.0'), t).note({ id: 1 });
        await createRpcClient(transport, speaking('1.0'), t).note({ id: 2 });
        await until('the 1.0 cast', () => notes === 1);
        await sleep(400);
        assert.equal(notes, 1);
      }));

    it('refuses arguments with a field the contract does not know, at any depth', () =>
      withBus(async ({ transport, topic }) => {
        const t = topic();
        let puts = 0;
        const stored: number[] = [];
        await serveRpc(transport, nestedContract, t, {
          put: async ({ user }) => {
            puts++;
            return { name: user.name };
          },
          store: async ({ id }) => {
            stored.push(id);
          },
        });
        const nested = (method: string, args: unknown): BusMessage => ({ ...message(method, args), service: 'nested' });
        const ok = await transport.call(t, nested('put', { user: { name: 'a', databases: [{ name: 'd' }] } }), 5_000);
        assert.deepEqual(ok, { ok: true, result: { name: 'a' } });
        const cases: Array<[unknown, string]> = [
          [{ user: { name: 'a' }, admin: true }, 'admin'],
          [{ user: { name: 'a', colour: 'red' } }, 'user.colour'],
          [{ user: { name: 'a', databases: [{ name: 'd' }, { name: 'e', owner: 'x' }] } }, 'user.databases[1].owner'],
        ];
        for (const [args, field] of cases) {
          const reply = await transport.call(t, nested('put', args), 5_000);
          assert.equal(reply.ok, false);
          assert.equal(!reply.ok && reply.error.code, 'BadRequest');
          assert.match(!reply.ok ? reply.error.message : '', new RegExp(`Unknown field in the arguments of nested\\.put \\(version 1\\.0\\): ${field.replace(/[.[\]]/g, '\\$&')}\\.$`));
        }
        assert.equal(puts, 1, 'arguments with unknown fields never reach the handler');
        await transport.cast(t, nested('store', { id: 1, extra: 1 }));
        await transport.cast(t, nested('store', { id: 2 }));
        await until('the valid cast', () => stored.length === 1);
        await sleep(400);
        assert.deepEqual(stored, [2]);
      }));

    it('redelivers a cast failing with a transient error a bounded number of times, then logs and drops it', () =>
      withBus(async ({ transport, topic }) => {
        const t = topic();
        const { logger, lines } = capturedLogger();
        const attempts = new Map<number, number>();
        await serveRpc(
          transport,
          testContract,
          t,
          {
            ...handlers,
            note: async ({ id }) => {
              const n = (attempts.get(id) ?? 0) + 1;
              attempts.set(id, n);
              // 1: never recovers; 2: recovers on the second attempt; 3: fails for good at once
              if (id === 1) throw new CofferError('GuestTimeout', 'the guest did not answer');
              if (id === 2 && n === 1) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
              if (id === 3) throw new CofferError('InstanceNotFound', 'gone');
            },
          },
          logger,
          { maxCastAttempts: 3 },
        );
        const client = createRpcClient(transport, testContract, t);
        await client.note({ id: 1 });
        await client.note({ id: 2 });
        await client.note({ id: 3 });
        await until('the bound', () => attempts.get(1) === 3 && attempts.get(2) === 2);
        await sleep(800);
        assert.equal(attempts.get(1), 3, 'not redelivered past the bound');
        assert.equal(attempts.get(2), 2, 'handled once it succeeded');
        assert.equal(attempts.get(3), 1, 'a permanent error is not redelivered');
        const dropped = lines.filter((l) => l.msg === 'cast failed with a transient error too many times; dropping it');
        assert.equal(dropped.length, 1);
        assert.equal(lines.filter((l) => l.msg === 'cast failed with a transient error; it will be redelivered').length, 3);
      }));

    it('leaves messages to the remaining consumers once a subscription closes', () =>
      withBus(async ({ transport, topic }) => {
        const t = topic();
        const a = recorder();
        const b = recorder();
        const subA = await transport.subscribe(t, a.handler);
        await transport.subscribe(t, b.handler);
        await subA.close();
        for (let id = 0; id < 10; id++) await transport.cast(t, message('note', { id }));
        await until('every cast', () => b.ids.length >= 10);
        assert.equal(a.ids.length, 0);
      }));

    it('hands a message back when its consumer closes before the handler settles', () =>
      withBus(async ({ transport, topic }) => {
        const t = topic();
        let release!: () => void;
        const released = new Promise<void>((resolve) => (release = resolve));
        let taken = 0;
        const first = await transport.subscribe(t, async () => {
          taken++;
          await released;
          return handled;
        });
        await transport.cast(t, message('note', { id: 7 }));
        await until('the first delivery', () => taken === 1);
        await first.close();
        const second = recorder();
        await transport.subscribe(t, second.handler);
        await until('the redelivery', () => second.ids.length === 1);
        release();
        await sleep(150);
        assert.deepEqual(second.ids, [7]);
        assert.equal(taken, 1);
      }));

    it('drops what waits in a topic when the topic is deleted', () =>
      withBus(async ({ transport, topic }) => {
        const t = topic();
        for (const id of [1, 2, 3]) await transport.cast(t, message('note', { id }));
        await transport.deleteTopic(t);
        await transport.deleteTopic(t); // deleting twice is fine
        const r = recorder();
        await transport.subscribe(t, r.handler);
        await transport.cast(t, message('note', { id: 4 }));
        await until('the new cast', () => r.ids.length >= 1);
        await sleep(150);
        assert.deepEqual(r.ids, [4]);
      }));

    it('never lets sender and receiver share objects', () =>
      withBus(async ({ transport, topic }) => {
        const t = topic();
        const seen: unknown[] = [];
        const kept = { items: [1] };
        await transport.subscribe(t, async (m) => {
          seen.push(m.args);
          return { ok: true, result: kept };
        });
        const args = { items: [1], at: new Date(0), missing: undefined };
        const sending = transport.cast(t, message('note', args));
        args.items.push(2);
        await sending;
        await until('the cast', () => seen.length === 1);
        // JSON semantics, as on the wire: dates become strings, undefined fields vanish
        assert.deepEqual(seen[0], { items: [1], at: '1970-01-01T00:00:00.000Z' });
        const reply = await transport.call(t, message('get', {}), 5_000);
        assert.ok(reply.ok);
        assert.notEqual(reply.result, kept);
        kept.items.push(3);
        assert.deepEqual(reply.result, { items: [1] });
      }));

    it('answers a ping while open, signed or not, and refuses it with BusUnavailable once closed', async () => {
      const raw = await makeTransport();
      const signed = new SignedTransport(raw, { key: BusKey.generate() });
      await raw.ping();
      await signed.ping();
      await signed.close();
      await assert.rejects(raw.ping(), { code: 'BusUnavailable' });
      await assert.rejects(signed.ping(), { code: 'BusUnavailable' });
    });

    it('refuses work once closed and fails the calls in flight with BusUnavailable', async () => {
      const transport = await makeTransport();
      const t = `test.suite.${randomUUID()}`;
      try {
        // BusUnavailable, not BusTimeout: the call fails when the transport closes, not 30 s later.
        const inFlight = assert.rejects(transport.call(t, message('double', { n: 1 }), 30_000), { code: 'BusUnavailable' });
        await sleep(50);
        await transport.close();
        await inFlight;
        await assert.rejects(transport.cast(t, message('note', { id: 1 })), { code: 'BusUnavailable' });
        await assert.rejects(transport.call(t, message('double', { n: 1 }), 1_000), { code: 'BusUnavailable' });
        await assert.rejects(transport.subscribe(t, recorder().handler), { code: 'BusUnavailable' });
        await transport.close(); // closing twice is fine
      } finally {
        await janitor.deleteTopic(t);
      }
    });

    // ---- signed messages: what a process with the broker's credentials but not the key can do ----

    /** A handler that counts what it runs; the suite's refusals must never reach it. */
    function counting(): { runs: number[]; handler: MessageHandler } {
      const runs: number[] = [];
      return {
        runs,
        handler: async (m) => {
          runs.push((m.args as { id: number }).id);
          return { ok: true, result: { ran: true } };
        },
      };
    }

    /** Waits for a refusal of `reason` to be logged, then gives a looping redelivery time to show. */
    async function refusedOnce(bus: Bus, reason: string, topic: string): Promise<void> {
      await until(`a ${reason} refusal logged`, () => bus.warnings().some((w) => w.reason === reason && w.topic === topic));
      await sleep(400);
      const lines = bus.warnings().filter((w) => w.reason === reason && w.topic === topic);
      assert.equal(lines.length, 1, `refused once, settled, not redelivered (${lines.length} lines)`);
    }

    it('refuses an unsigned call with BusMessageRefused and an unsigned cast without looping; the handler never runs', () =>
      withBus(async (bus) => {
        const t = bus.topic();
        const target = counting();
        await bus.transport.subscribe(t, target.handler);
        const reply = await bus.raw.call(t, message('note', { id: 1 }), 5_000);
        assert.equal(reply.ok, false);
        assert.equal(!reply.ok && reply.error.code, 'BusMessageRefused');
        assert.match(!reply.ok ? reply.error.message : '', /unsigned/);
        await bus.raw.cast(t, message('note', { id: 2 }));
        await refusedOnce(bus, 'unsigned', t);
        assert.deepEqual(target.runs, []);
        const warning = bus.warnings().find((w) => w.reason === 'unsigned');
        assert.equal(warning?.level, warnLevel);
        // the signed path still works beside it
        await bus.transport.cast(t, message('note', { id: 3 }));
        await until('the signed cast', () => target.runs.length === 1);
        assert.deepEqual(target.runs, [3]);
      }));

    it('refuses a message signed with another key as another deployment, and rate-limits that line', () =>
      withBus(async (bus) => {
        const t = bus.topic();
        const target = counting();
        await bus.transport.subscribe(t, target.handler);
        const foreign = new SignedTransport(bus.raw, { key: BusKey.generate() });
        const reply = await foreign.call(t, message('note', { id: 1 }), 5_000);
        assert.equal(!reply.ok && reply.error.code, 'BusMessageRefused');
        for (let id = 2; id <= 6; id++) await foreign.cast(t, message('note', { id }));
        await sleep(500);
        assert.deepEqual(target.runs, []);
        const lines = bus.warnings().filter((w) => w.reason === 'foreign-key');
        assert.equal(lines.length, 1, 'one line for a stream of foreign messages');
        assert.match(lines[0]!.msg, /another Coffer deployment \(different bus key\) is using this vhost\?/);
      }));

    it('refuses a signed message whose body, context or method was altered on the way', () =>
      withBus(async (bus) => {
        const t = bus.topic();
        const target = counting();
        await bus.transport.subscribe(t, target.handler);
        const sealed = sealMessage(bus.key, t, message('note', { id: 1 }));
        const altered: BusMessage[] = [
          { ...sealed, args: { id: 666 } },
          { ...sealed, context: { ...sealed.context, projectId: 'someone-else' } },
          { ...sealed, method: 'fail' },
          { ...sealed, sentAt: sealed.sentAt + 1 },
        ];
        for (const m of altered) {
          const reply = await bus.raw.call(t, m, 5_000);
          assert.equal(!reply.ok && reply.error.code, 'BusMessageRefused');
        }
        await until('the refusals', () => bus.warnings().filter((w) => w.reason === 'bad-signature').length >= 1);
        assert.deepEqual(target.runs, []);
      }));

    it('refuses a message signed for another topic (one guest’s message moved to another’s queue)', () =>
      withBus(async (bus) => {
        const a = bus.topic();
        const b = bus.topic();
        const target = counting();
        await bus.transport.subscribe(b, target.handler);
        const forA = sealMessage(bus.key, a, message('note', { id: 1 }));
        await bus.raw.cast(b, forA);
        await refusedOnce(bus, 'misaimed', b);
        const reply = await bus.raw.call(b, sealMessage(bus.key, a, message('note', { id: 2 })), 5_000);
        assert.equal(!reply.ok && reply.error.code, 'BusMessageRefused');
        assert.deepEqual(target.runs, []);
      }));

    it('refuses a validly signed message sent too long ago or too far ahead, and takes one within the clock skew', () =>
      withBus(async (bus) => {
        const t = bus.topic();
        const target = counting();
        await bus.transport.subscribe(t, target.handler);
        const at = (id: number, sentAt: number) => sealMessage(bus.key, t, { ...message('note', { id }), sentAt });
        const old = await bus.raw.call(t, at(1, Date.now() - 6 * 60_000), 5_000);
        assert.equal(!old.ok && old.error.code, 'BusMessageRefused');
        const ahead = await bus.raw.call(t, at(2, Date.now() + 10 * 60_000), 5_000);
        assert.equal(!ahead.ok && ahead.error.code, 'BusMessageRefused');
        const skewed = await bus.raw.call(t, at(3, Date.now() + 20_000), 5_000);
        assert.ok(skewed.ok, 'a sender 20 s ahead is within the allowed skew');
        const late = await bus.raw.call(t, at(4, Date.now() - 60_000), 5_000);
        assert.ok(late.ok, 'a message that waited a minute in the queue is still taken');
        assert.deepEqual(target.runs, [3, 4]);
        assert.ok(bus.warnings().some((w) => w.reason === 'expired'));
        assert.ok(bus.warnings().some((w) => w.reason === 'from-the-future'));
      }));

    it('runs a captured signed message once: a copy published again is refused as a replay', () =>
      withBus(async (bus) => {
        const t = bus.topic();
        const target = counting();
        await bus.transport.subscribe(t, target.handler);
        const captured = sealMessage(bus.key, t, message('note', { id: 1 }));
        const first = await bus.raw.call(t, captured, 5_000);
        assert.ok(first.ok);
        const again = await bus.raw.call(t, captured, 5_000);
        assert.equal(!again.ok && again.error.code, 'BusMessageRefused');
        const castCopy = sealMessage(bus.key, t, message('note', { id: 2 }));
        await bus.raw.cast(t, castCopy);
        await bus.raw.cast(t, castCopy);
        await refusedOnce(bus, 'replay', t);
        assert.deepEqual(target.runs, [1, 2]);
      }));

    it('handles a broker redelivery of a message never settled, but not a copy published while it runs', () =>
      withBus(async (bus) => {
        const t = bus.topic();
        let release!: () => void;
        const released = new Promise<void>((resolve) => (release = resolve));
        const firstRuns: number[] = [];
        const first = await bus.transport.subscribe(t, async (m) => {
          firstRuns.push((m.args as { id: number }).id);
          await released;
          return handled;
        });
        const sealed = sealMessage(bus.key, t, message('note', { id: 7 }));
        await bus.raw.cast(t, sealed);
        await until('the first delivery', () => firstRuns.length === 1);
        await bus.raw.cast(t, sealed); // an attacker's copy while the first is in flight
        await refusedOnce(bus, 'replay', t);
        await first.close(); // the broker takes the unsettled message back and redelivers it
        const second = counting();
        await bus.transport.subscribe(t, second.handler);
        await until('the redelivery', () => second.runs.length === 1);
        release();
        await sleep(150);
        assert.deepEqual(second.runs, [7]);
        assert.deepEqual(firstRuns, [7]);
        assert.equal(bus.warnings().filter((w) => w.reason === 'replay').length, 1, 'the redelivery is no replay');
      }));

    it('handles again a message whose handler threw, with no refusal logged', () =>
      withBus(async (bus) => {
        const t = bus.topic();
        let attempts = 0;
        await bus.transport.subscribe(t, async () => {
          attempts++;
          if (attempts === 1) throw new Error('transient failure');
          return handled;
        });
        await bus.raw.cast(t, sealMessage(bus.key, t, message('note', { id: 1 })));
        await until('the redelivery', () => attempts === 2);
        await sleep(300);
        assert.equal(attempts, 2);
        assert.deepEqual(bus.warnings().filter((w) => w.reason !== undefined), []);
      }));

    it('publishes to every listener of a topic, each once, and keeps nothing for a listener that comes later', () =>
      withBus(async ({ transport, raw, key, topic }) => {
        const t = topic();
        // another role on the same bus (in-process: the same process; AMQP: the same connection)
        const other = new SignedTransport(raw, { key });
        const got: Record<string, number[]> = { a: [], b: [], c: [], late: [] };
        const listener = (name: string) => async (m: BusMessage) => void got[name]!.push((m.args as { id: number }).id);
        await transport.listen(t, listener('a'));
        await transport.listen(t, listener('b')); // same process, same signed transport
        const c = await other.listen(t, listener('c'));
        await transport.publish(t, message('note', { id: 1 }));
        await until('each listener has the first event', () => got.a!.length + got.b!.length + got.c!.length === 3, 5_000);
        await c.close();
        await transport.publish(t, message('note', { id: 2 }));
        await until('the open listeners have the second event', () => got.a!.length === 2 && got.b!.length === 2, 5_000);
        await other.listen(t, listener('late'));
        await sleep(100);
        assert.deepEqual(got, { a: [1, 2], b: [1, 2], c: [1], late: [] }, 'a closed listener gets nothing, a later one nothing published before');
        // nothing queued for competing consumers: a subscriber of the same name sees no event
        const queued = recorder();
        await transport.subscribe(t, queued.handler);
        await sleep(100);
        assert.deepEqual(queued.ids, []);
      }));

    it('hands a listener only published messages signed with its key', () =>
      withBus(async ({ transport, raw, topic, warnings }) => {
        const t = topic();
        const got: number[] = [];
        await transport.listen(t, async (m) => void got.push((m.args as { id: number }).id));
        await raw.publish(t, message('note', { id: 666 })); // unsigned
        await transport.publish(t, message('note', { id: 1 }));
        await until('the signed event arrives', () => got.length > 0, 5_000);
        await sleep(50);
        assert.deepEqual(got, [1]);
        assert.ok(warnings().some((w) => w.reason === 'unsigned' && w.topic === t), 'the refusal is logged');
      }));
  });
}
