// bench/api-reads: what the read path costs with many instances in one project. For each read
// (GET /instances, /instances/detail, /instances/{id}, /mgmt/instances/{id}) it counts the SQL
// statements one request runs (at page sizes 1 and 20, so a count that grows with the page shows),
// then times each over real HTTP with N concurrent keep-alive connections: p50, p99, requests/s.
// Real API over a SQLite state file (WAL, as `coffer serve` keeps it) and the in-process bus;
// every instance HEALTHY with usage stored as the conductor keeps it, a fault on every fifth
// instance and a running backup on every tenth, so each per-instance look-up has rows to find;
// every row carries a real CA certificate in its TLS report and engine metrics in its status, as
// a live instance's does.
// Prints; asserts nothing. Other work on the machine skews the timings: note the load. The HTTP
// client runs in a process of its own (bench/http-load.ts); the CPU time per request is this
// process's, the server's alone, and steadier than latency.
//
// With --workers N (N > 1) the API runs in N processes sharing the port (node:cluster, as
// `coffer api --api-workers N`; bench/api-reads-worker.ts), and the CPU per request is theirs
// summed, the distributing process's included.
//
// Each read is timed after --warmup requests of its own (default 1000): V8 compiles a read's
// path to optimised code over its first thousand or so requests, and the target is a serving
// API's latency, not a cold one's. --warmup 100 gives the figures of earlier sections.
//
//   node --import tsx bench/api-reads.ts [--instances 1000] [--requests 2000] [--concurrency 16] [--workers 1] [--warmup 1000]
import cluster, { type Worker } from 'node:cluster';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CertificateAuthority } from '../src/agent/index.js';
import { silentLogger } from '../src/common/index.js';
import { newUuid } from '../src/common/ids.js';
import { adminSession, memberSession, seedDatastores, startHarness } from '../test/api/api-harness.js';
import { startHttpLoad } from './http-load.js';

const { values } = parseArgs({
  options: {
    instances: { type: 'string', default: '1000' },
    requests: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '16' },
    workers: { type: 'string', default: '1' },
    warmup: { type: 'string', default: '1000' },
  },
});
const count = Number(values.instances);
const requests = Number(values.requests);
const concurrency = Number(values.concurrency);
const workers = Number(values.workers);
const warmup = Number(values.warmup);
for (const [name, n] of Object.entries({ count, requests, concurrency, workers, warmup })) {
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} takes a whole number of at least 1`);
}

const dir = await mkdtemp(join(tmpdir(), 'coffer-api-reads-'));
let statements = 0;
const h = await startHarness({ rateLimitPerMinute: 0 }, `sqlite:${join(dir, 'state.db')}`, { onStatement: () => (statements += 1) });
const admin = await adminSession(h.app);
const member = await memberSession(h, 'bench');
const seeded = await seedDatastores(h.store);
const ids: string[] = [];
const gb = 1024 ** 3;
// every instance's row carries its CA certificate once its guest reported TLS, as a real one does
const ca = await CertificateAuthority.open({ dir: join(dir, 'ca'), logger: silentLogger() });
const tls = { caCertificate: ca.certificate, expiresAt: new Date(Date.now() + 365 * 86_400_000).toISOString(), port: 5433 };
const seedStarted = performance.now();
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
  await h.store.instances.update(id, { host: 'host-a', address: `127.80.${Math.floor(n / 250)}.${(n % 250) + 1}`, port: 5432, tls });
  await h.store.serviceStatuses.set({ instanceId: id, status: 'HEALTHY', updatedAt: now });
  await h.store.serviceStatuses.report(id, {
    volumeUsage: { usedBytes: 0.5 * gb, measuredAt: now },
    engineMetrics: { values: { connections: 2, databaseBytes: 8_000_000, operations: 123_456, cacheHitRatio: 0.99 }, measuredAt: now },
  });
  if (n % 5 === 0) await h.store.faults.record({ id: newUuid(), instanceId: id, message: 'an old fault', details: 'trace', createdAt: now });
  if (n % 10 === 0) {
    await h.store.backups.create({
      id: newUuid(),
      tenantId: member.projectId,
      instanceId: id,
      name: `b-${n}`,
      description: null,
      datastoreVersionId: seeded.activeVersionId,
      parentId: null,
      backupType: 'full',
      state: 'BUILDING',
      container: 'bench',
      objectName: `b-${n}`,
      createdAt: now,
      updatedAt: now,
    });
  }
  ids.push(id);
}
process.stdout.write(`seeded ${count} instances in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s\n`);

const memberHeaders = { 'x-auth-token': member.token };
const adminHeaders = { 'x-auth-token': admin.token };
const base = `/v1.0/${member.projectId}`;
const reads: { label: string; paths: string[]; headers: Record<string, string> }[] = [
  { label: 'GET /instances (page of 20)', paths: [`${base}/instances`], headers: memberHeaders },
  { label: 'GET /instances/detail (page of 20)', paths: [`${base}/instances/detail`], headers: memberHeaders },
  { label: 'GET /instances/{id}', paths: ids.map((id) => `${base}/instances/${id}`), headers: memberHeaders },
  { label: 'GET /mgmt/instances/{id}', paths: ids.map((id) => `/v1.0/${admin.projectId}/mgmt/instances/${id}`), headers: adminHeaders },
];

// statements per request, at the smallest page and the largest
process.stdout.write('\nSQL statements per request (token validation included):\n');
for (const [label, url] of [
  ['GET /instances?limit=1', `${base}/instances?limit=1`],
  ['GET /instances?limit=20', `${base}/instances?limit=20`],
  ['GET /instances/detail?limit=1', `${base}/instances/detail?limit=1`],
  ['GET /instances/detail?limit=20', `${base}/instances/detail?limit=20`],
  ['GET /instances/{id}', `${base}/instances/${ids[0]!}`],
] as const) {
  const before = statements;
  const res = await h.app.inject({ method: 'GET', url, headers: memberHeaders });
  if (res.statusCode !== 200) throw new Error(`${label}: ${res.statusCode} ${res.body}`);
  process.stdout.write(`  ${label}: ${statements - before}\n`);
}
{
  const before = statements;
  const res = await h.app.inject({ method: 'GET', url: `/v1.0/${admin.projectId}/mgmt/instances/${ids[0]!}`, headers: adminHeaders });
  if (res.statusCode !== 200) throw new Error(`mgmt show: ${res.statusCode} ${res.body}`);
  process.stdout.write(`  GET /mgmt/instances/{id}: ${statements - before}\n`);
}
{
  const before = statements;
  const res = await h.app.inject({ method: 'GET', url: `/v1.0/${admin.projectId}/mgmt/instances`, headers: adminHeaders });
  if (res.statusCode !== 200) throw new Error(`mgmt list: ${res.statusCode} ${res.body}`);
  process.stdout.write(`  GET /mgmt/instances (all ${count}): ${statements - before}\n`);
}

// over real HTTP from another process (bench/http-load.ts), so this process only serves and its
// own CPU time is the server's: N connections, each sending its next request as soon as the last
// one answered
const server = workers === 1 ? await inProcessServer() : await clusterServer(workers);
const address = server.address;
const load = startHttpLoad();
process.stdout.write(`\nover HTTP, ${concurrency} concurrent connections, ${requests} requests each, after ${warmup} warm-up requests, ${workers} API process(es):\n`);
for (const read of reads) {
  const job = { address, paths: read.paths, headers: read.headers, concurrency };
  await load.run({ ...job, requests: warmup });
  const cpuBefore = await server.cpuMicros();
  const { samples, seconds, failures } = await load.run({ ...job, requests });
  const cpuMicros = (await server.cpuMicros()) - cpuBefore;
  if (failures.length > 0) throw new Error(`${read.label}: ${failures.join(', ')}`);
  // CPU per request says more than latency on a shared machine: others' work does not add to it
  const cpuMs = cpuMicros / 1000 / requests;
  samples.sort((a, b) => a - b);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]!.toFixed(1);
  process.stdout.write(
    `  ${read.label}: p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, ${(requests / seconds).toFixed(0)} requests/s, ${cpuMs.toFixed(2)} ms server CPU per request\n`,
  );
}
load.close();
await server.close();
process.stdout.write(`\nload average at the end: ${loadavg().map((l) => l.toFixed(2)).join(' ')} (2 cores)\n`);

await h.close();
await rm(dir, { recursive: true, force: true });

interface BenchServer {
  address: string;
  /** user + system CPU time of every process that serves, µs */
  cpuMicros(): Promise<number>;
  close(): Promise<void>;
}

function ownCpuMicros(): number {
  const cpu = process.cpuUsage();
  return cpu.user + cpu.system;
}

async function inProcessServer(): Promise<BenchServer> {
  const listening = await h.app.listen({ host: '127.0.0.1', port: 0 });
  return { address: listening, cpuMicros: async () => ownCpuMicros(), close: async () => undefined };
}

async function clusterServer(n: number): Promise<BenchServer> {
  const port = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const bound = probe.address() as AddressInfo;
      probe.close(() => resolve(bound.port));
    });
  });
  cluster.setupPrimary({ exec: fileURLToPath(new URL('./api-reads-worker.ts', import.meta.url)) });
  const forked = await Promise.all(
    Array.from({ length: n }, () => {
      const worker = cluster.fork({ BENCH_STATE_URL: `sqlite:${join(dir, 'state.db')}`, BENCH_PORT: String(port) });
      return new Promise<Worker>((resolve, reject) => {
        worker.once('message', (m) => (m === 'listening' ? resolve(worker) : reject(new Error(String(m)))));
        worker.once('exit', (code) => reject(new Error(`a worker exited (${code})`)));
      });
    }),
  );
  const cpuOf = (worker: Worker) =>
    new Promise<number>((resolve) => {
      worker.once('message', (m: { cpu: NodeJS.CpuUsage }) => resolve(m.cpu.user + m.cpu.system));
      worker.send('cpu');
    });
  return {
    address: `http://127.0.0.1:${port}`,
    cpuMicros: async () => (await Promise.all(forked.map(cpuOf))).reduce((a, b) => a + b, ownCpuMicros()),
    close: async () => {
      await Promise.all(
        forked.map(
          (worker) =>
            new Promise<void>((resolve) => {
              worker.removeAllListeners('exit');
              worker.once('exit', () => resolve());
              worker.send('stop');
            }),
        ),
      );
    },
  };
}
