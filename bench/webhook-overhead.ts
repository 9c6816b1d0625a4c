// bench/webhook-overhead: what webhook delivery costs the API. GET /v1.0/{project}/instances over
// real HTTP (loopback, keep-alive) from a few concurrent clients for a fixed time, two ways taken
// in turn on one state store: quiet; and while events are recorded (as the conductor records
// status changes) for instances with a webhook and a dispatcher delivers them, signed, to a
// local receiver (allowed by an explicit loopback range, as --webhook-allowed-cidrs would).
// In-memory SQLite, in-process bus. Prints requests per second and deliveries; asserts nothing.
//
//   node --import tsx bench/webhook-overhead.ts [--instances 50] [--seconds 5] [--rounds 3] [--clients 8] [--events-per-second 50]
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { WebhookTargetGuard, newUuid, silentLogger } from '../src/common/index.js';
import { WebhookDispatcher } from '../src/taskmanager/index.js';
import { memberSession, seedDatastores, startHarness } from '../test/api/api-harness.js';

const { values } = parseArgs({
  options: {
    instances: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    clients: { type: 'string', default: '8' },
    'events-per-second': { type: 'string', default: '50' },
  },
});
const [count, seconds, rounds, clients, eventRate] = [values.instances, values.seconds, values.rounds, values.clients, values['events-per-second']].map(Number) as [number, number, number, number, number];

const h = await startHarness({ rateLimitPerMinute: 0 });
const store = h.store;
const member = await memberSession(h, 'bench');
const seeded = await seedDatastores(store);
const ids: string[] = [];
for (let n = 0; n < count; n++) {
  const id = newUuid();
  const now = new Date();
  await store.instances.create({
    id, name: `bench-${n}`, tenantId: member.projectId, flavorId: '1', volumeSizeGb: 2, datastoreVersionId: seeded.activeVersionId,
    taskStatus: 'NONE', taskDescription: '', taskStartTime: null, access: null, createdAt: now, updatedAt: now,
  });
  await store.serviceStatuses.set({ instanceId: id, status: 'HEALTHY', updatedAt: now });
  ids.push(id);
}

let received = 0;
const receiver = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    received++;
    res.writeHead(204).end();
  });
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const receiverPort = (receiver.address() as AddressInfo).port;
await store.webhooks.create({ id: newUuid(), tenantId: member.projectId, url: `http://127.0.0.1:${receiverPort}/hook`, secret: 'bench-secret-0123456789', events: null, createdAt: new Date() });
const guard = new WebhookTargetGuard({ allowedCidrs: ['127.0.0.0/8'], instanceCidrs: [], controlPlane: [] });

const base = await h.app.listen({ host: '127.0.0.1', port: 0 });
const headers = { 'x-auth-token': member.token };
const path = `/v1.0/${member.projectId}/instances`;

async function load(): Promise<number> {
  const until = performance.now() + seconds * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < until) {
        const res = await fetch(`${base}${path}`, { headers });
        if (res.status !== 200) throw new Error(`GET ${path}: ${res.status}`);
        await res.arrayBuffer();
        done++;
      }
    }),
  );
  return done / seconds;
}

/** Records `eventRate` events a second and runs a dispatcher (every 1 s, its default) while `run` runs. */
async function withWebhooks<T>(run: () => Promise<T>): Promise<{ result: T; recorded: number; delivered: number }> {
  const dispatcher = new WebhookDispatcher({ store, logger: silentLogger(), guard, workerId: 'bench' });
  const deliveredBefore = received;
  let stop = false;
  let recorded = 0;
  const writer = (async () => {
    while (!stop) {
      const id = ids[recorded % ids.length]!;
      await store.instanceEvents.record({ instanceId: id, type: 'status', name: recorded % 2 === 0 ? 'SHUTDOWN' : 'HEALTHY', message: null, createdAt: new Date() });
      recorded++;
      await new Promise((r) => setTimeout(r, 1000 / eventRate));
    }
  })();
  dispatcher.start();
  const result = await run();
  stop = true;
  await writer;
  await dispatcher.stop();
  return { result, recorded, delivered: received - deliveredBefore };
}

await load(); // warm-up: JIT, connections, SQLite pages
const ways = ['quiet', 'events + webhook delivery'] as const;
const results: Record<(typeof ways)[number], number[]> = { quiet: [], 'events + webhook delivery': [] };
for (let round = 1; round <= rounds; round++) {
  results.quiet.push(await load());
  const hooked = await withWebhooks(load);
  results['events + webhook delivery'].push(hooked.result);
  process.stdout.write(`round ${round}: ${ways.map((w) => `${w} ${results[w].at(-1)!.toFixed(0)} req/s`).join(', ')} (${hooked.recorded} events recorded, ${hooked.delivered} delivered)\n`);
}
for (const way of ways) {
  const sorted = [...results[way]].sort((a, b) => a - b);
  process.stdout.write(`${way}: median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} req/s over ${rounds} rounds of ${seconds} s, ${clients} clients, ${count} instances\n`);
}
await h.close();
await new Promise<void>((resolve) => receiver.close(() => resolve()));
