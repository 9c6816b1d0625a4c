// bench/instance-views: how long the instance views take with ~50 instances in a project: GET
// /instances/detail, and GET /instances/{id} for each one in turn. Real API (in-process HTTP,
// `inject`), in-memory SQLite state store, in-process bus; every instance HEALTHY with a guest
// on the bus that answers getFilesystemStats at once (so a read path that asks guests pays only
// the bus, not a timeout), and a usage report stored as the conductor keeps it (where the store
// has `report`, i.e. after the heartbeat-store change). Prints; asserts nothing.
//
//   node --import tsx bench/instance-views.ts [--instances 50] [--rounds 20]
import { parseArgs } from 'node:util';
import { guestContract, guestTopic, serveRpc, type Subscription } from '../src/bus/index.js';
import { newUuid } from '../src/common/ids.js';
import { adminSession, memberSession, seedDatastores, startHarness } from '../test/api/api-harness.js';
import { fakeGuestHandlers } from '../test/support/fake-guest.js';

const { values } = parseArgs({ options: { instances: { type: 'string', default: '50' }, rounds: { type: 'string', default: '20' } } });
const count = Number(values.instances);
const rounds = Number(values.rounds);
if (!Number.isInteger(count) || count < 1 || !Number.isInteger(rounds) || rounds < 1) throw new Error('--instances and --rounds take whole numbers of at least 1');

const h = await startHarness({ rateLimitPerMinute: 0 });
await adminSession(h.app);
const member = await memberSession(h, 'bench');
const seeded = await seedDatastores(h.store);
const guests: Subscription[] = [];
const ids: string[] = [];
const gb = 1024 ** 3;
for (let n = 0; n < count; n++) {
  const id = newUuid();
  const now = new Date();
  await h.store.instances.create({
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
  await h.store.instances.update(id, { host: 'host-a', address: `127.80.0.${n + 1}`, port: 5432 });
  await h.store.serviceStatuses.set({ instanceId: id, status: 'HEALTHY', updatedAt: now });
  // the store before the change has no `report`: the bench runs on both sides of it
  const statuses = h.store.serviceStatuses as Partial<{ report(id: string, r: object): Promise<void> }>;
  await statuses.report?.(id, { volumeUsage: { usedBytes: 0.5 * gb, measuredAt: now } });
  guests.push(
    await serveRpc(h.transport, guestContract, guestTopic(id), fakeGuestHandlers({ getFilesystemStats: async () => ({ totalBytes: 2 * gb, usedBytes: 0.5 * gb }) })),
  );
  ids.push(id);
}

const headers = { 'x-auth-token': member.token, host: 'db.example' };
const base = `/v1.0/${member.projectId}/instances`;

async function timed(label: string, run: () => Promise<void>): Promise<void> {
  await run(); // warm-up
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const began = performance.now();
    await run();
    samples.push(performance.now() - began);
  }
  samples.sort((a, b) => a - b);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]!.toFixed(1);
  process.stdout.write(`${label}: median ${at(0.5)} ms, p90 ${at(0.9)} ms (${rounds} rounds)\n`);
}

// a page holds at most Trove's limit (20): the whole list is every page, marker after marker
let pages = 0;
let listed = 0;
let shownUsed = 0;
await timed(`GET /instances/detail, all pages of ${count} instances`, async () => {
  pages = 0;
  listed = 0;
  shownUsed = 0;
  let marker: string | undefined;
  do {
    const res = await h.app.inject({ method: 'GET', url: `${base}/detail${marker === undefined ? '' : `?marker=${marker}`}`, headers });
    if (res.statusCode !== 200) throw new Error(`detail: ${res.statusCode} ${res.body}`);
    const body = JSON.parse(res.body) as { instances: { volume: { used?: number } }[]; links?: { href: string }[] };
    pages += 1;
    listed += body.instances.length;
    shownUsed += body.instances.filter((i) => i.volume.used !== undefined).length;
    marker = body.links === undefined ? undefined : (new URL(body.links[0]!.href).searchParams.get('marker') ?? undefined);
  } while (marker !== undefined);
});
process.stdout.write(`  ${pages} pages, ${listed} instances, ${shownUsed} showing volume.used\n`);
await timed(`GET /instances/{id} for each of ${count} instances, one after another`, async () => {
  for (const id of ids) {
    const res = await h.app.inject({ method: 'GET', url: `${base}/${id}`, headers });
    if (res.statusCode !== 200) throw new Error(`show: ${res.statusCode} ${res.body}`);
  }
});

// a guest that does not answer (its host is down, its queue unconsumed): a read path that asks
// it waits out the call's timeout
await guests[0]!.close();
await h.transport.deleteTopic(guestTopic(ids[0]!));
await timed('GET /instances/{id} of an instance whose guest does not answer', async () => {
  const res = await h.app.inject({ method: 'GET', url: `${base}/${ids[0]!}`, headers });
  if (res.statusCode !== 200) throw new Error(`show: ${res.statusCode} ${res.body}`);
});

for (const guest of guests.slice(1)) await guest.close();
await h.close();
