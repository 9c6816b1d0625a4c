// bench/metrics-overhead: what metrics cost the API. GET /v1.0/{project}/instances over real
// HTTP (loopback, keep-alive) from a few concurrent clients for a fixed time, on the same state
// store, three ways taken in turn: an API without metrics; with the request histogram; and with
// the histogram and a scraper reading /metrics every 100 ms (150x more often than Prometheus'
// default 15 s), whose heartbeat gauge reads every instance's last heartbeat from the store.
// In-memory SQLite, in-process bus. Prints requests per second; asserts nothing.
//
//   node --import tsx bench/metrics-overhead.ts [--instances 50] [--seconds 5] [--rounds 3] [--clients 8]
import { parseArgs } from 'node:util';
import { buildApiServer } from '../src/api/index.js';
import { newUuid } from '../src/common/ids.js';
import { silentLogger } from '../src/common/logger.js';
import { CofferMetrics, roleReadiness, startMetricsListener } from '../src/metrics/index.js';
import { memberSession, seedDatastores, startHarness } from '../test/api/api-harness.js';

const { values } = parseArgs({
  options: {
    instances: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    clients: { type: 'string', default: '8' },
  },
});
const [count, seconds, rounds, clients] = [values.instances, values.seconds, values.rounds, values.clients].map(Number) as [number, number, number, number];

const plain = await startHarness({ rateLimitPerMinute: 0 });
const store = plain.store;
const member = await memberSession(plain, 'bench');
const seeded = await seedDatastores(store);
for (let n = 0; n < count; n++) {
  const id = newUuid();
  const now = new Date();
  await store.instances.create({
    id,
    name: `bench-${n}`,
    tenantId: member.projectId,
    flavorId: '1',
    volumeSizeGb: 2,
    datastoreVersionId: seeded.activeVersionId,
    taskStatus: 'NONE',
    taskDescription: '',
    taskStartTime: null,
    access: null,
    createdAt: now,
    updatedAt: now,
  });
  await store.serviceStatuses.set({ instanceId: id, status: 'HEALTHY', updatedAt: now });
  await store.conductorLastSeen.recordIfNewer(id, 'heartbeat', Date.now());
}

const metrics = new CofferMetrics();
metrics.watchHeartbeats(() => store.conductorLastSeen.listHeartbeats());
const metered = await buildApiServer({ store, transport: plain.transport, logger: silentLogger(), rateLimitPerMinute: 0, requestObserver: metrics });
const listener = await startMetricsListener({
  address: { host: '127.0.0.1', port: 0 },
  metrics,
  readiness: roleReadiness({ stateDatabase: store, bus: plain.transport }),
  logger: silentLogger(),
});
const plainUrl = await plain.app.listen({ host: '127.0.0.1', port: 0 });
const meteredUrl = await metered.listen({ host: '127.0.0.1', port: 0 });
const headers = { 'x-auth-token': member.token };
const path = `/v1.0/${member.projectId}/instances`;

async function load(base: string): Promise<number> {
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

async function withScraper<T>(run: () => Promise<T>): Promise<{ result: T; scrapes: number; bytes: number }> {
  let stop = false;
  let scrapes = 0;
  let bytes = 0;
  const scraper = (async () => {
    while (!stop) {
      bytes = (await (await fetch(`${listener.url}/metrics`)).text()).length;
      scrapes++;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const result = await run();
  stop = true;
  await scraper;
  return { result, scrapes, bytes };
}

await load(plainUrl); // warm-up of both: JIT, connections, SQLite pages
await load(meteredUrl);
const ways = ['no metrics', 'request histogram', 'histogram + scraper every 100 ms'] as const;
const results: Record<(typeof ways)[number], number[]> = { 'no metrics': [], 'request histogram': [], 'histogram + scraper every 100 ms': [] };
for (let round = 1; round <= rounds; round++) {
  results['no metrics'].push(await load(plainUrl));
  results['request histogram'].push(await load(meteredUrl));
  const scraped = await withScraper(() => load(meteredUrl));
  results['histogram + scraper every 100 ms'].push(scraped.result);
  process.stdout.write(`round ${round}: ${ways.map((w) => `${w} ${results[w].at(-1)!.toFixed(0)} req/s`).join(', ')} (${scraped.scrapes} scrapes of ${scraped.bytes} bytes)\n`);
}
for (const way of ways) {
  const sorted = [...results[way]].sort((a, b) => a - b);
  process.stdout.write(`${way}: median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} req/s over ${rounds} rounds of ${seconds} s, ${clients} clients, ${count} instances\n`);
}
// the same costs without HTTP around them: one observation, and one scrape's rendering
const observations = 200_000;
let began = performance.now();
for (let i = 0; i < observations; i++) metrics.observeHttpRequest({ method: 'GET', route: '/v1.0/:tenantId/instances', status: 200, seconds: 0.004 });
const perObservation = ((performance.now() - began) * 1e6) / observations;
const renders = 200;
began = performance.now();
for (let i = 0; i < renders; i++) await metrics.render();
const perRender = (performance.now() - began) / renders;
process.stdout.write(`one request observation: ${perObservation.toFixed(0)} ns; one scrape rendered (${count} heartbeat series read from the store): ${perRender.toFixed(2)} ms\n`);
await listener.close();
await metered.close();
await plain.close();
