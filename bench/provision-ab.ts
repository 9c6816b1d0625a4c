// bench/provision-ab: the Redis create of bench/provision.ts, on two source trees at once (a
// `coffer serve` each, with the default pool), their creates interleaved A B B A A B..., so that
// the load other work puts on a shared machine weighs on both alike. Run one after the other, two
// bench runs drift with that load by more than a change of tens of milliseconds.
//
//   node --import tsx bench/provision-ab.ts --a <tree> --b <tree> [--runs 15] [--poll-ms 2]
//
// A tree is a checkout with its node_modules (a `git worktree` of the other commit, say). Each
// create waits, as bench/provision.ts does, until its serve's warm pools and spare users are full.
// Each round also starts a raw redis-server by hand, as bench/provision.ts does (AOF on, as
// the host's engine user, → first PING), in turn with the creates: the process start that
// Redis's fixed cost (issue 14) is measured against, under the same load.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chown, mkdir, rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { login, request, trove, waitForInstance, type Session } from '../test/support/api-client.js';
import { freePort } from '../test/support/coffer-process.js';
import { makeDataDir } from '../test/support/temp-dir.js';

const { values } = parseArgs({ options: { a: { type: 'string' }, b: { type: 'string' }, runs: { type: 'string', default: '15' }, 'poll-ms': { type: 'string', default: '2' } } });
if (values.a === undefined || values.b === undefined) throw new Error('--a and --b name the two source trees');
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs takes a whole number of at least 1');
// how often a create's GET asks for ACTIVE: the measurement's resolution (half of it on average is
// added to every create), not Coffer's cost; bench/provision.ts polls every 20 ms
const pollMs = Number(values['poll-ms']);
if (!Number.isInteger(pollMs) || pollMs < 1) throw new Error('--poll-ms takes a whole number of at least 1');
const adminPassword = 'Bench-admin-pass-1234';
const userPassword = 'Bench-user-pass-1234';
const poolSize = 2;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Serve {
  tree: string;
  dataDir: Awaited<ReturnType<typeof makeDataDir>>;
  stop(): Promise<void>;
  session: Session;
}

async function startServe(tree: string, subnet: string): Promise<Serve> {
  const dataDir = await makeDataDir('coffer-bench-ab');
  const port = await freePort();
  const args = ['serve', '--port', String(port), '--data-dir', dataDir.path, '--log-level', 'warn', '--warm-pool-size', String(poolSize), '--address-pool', `${subnet}.1.0/24`];
  const child = spawn(process.execPath, ['--import', 'tsx', join(tree, 'src/main/coffer.ts'), ...args], {
    cwd: tree,
    env: { ...process.env, COFFER_RATE_LIMIT: '100000', COFFER_ADMIN_PASSWORD: adminPassword },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise((done) => child.once('exit', done));
  while (!/serving the Trove API/.test(output)) {
    if (child.exitCode !== null) throw new Error(`coffer serve in ${tree} exited:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const session = await login(`http://127.0.0.1:${port}`, 'admin', adminPassword, 'admin');
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
    await dataDir.remove();
  };
  return { tree, dataDir, stop, session };
}

/** every engine's warm pool and the spare users full, as bench/provision.ts waits for them */
function ready(dataDir: string): boolean {
  const pool = join(dataDir, 'pool');
  const warm = (engine: string) =>
    existsSync(pool)
      ? readdirSync(pool)
          .filter((kind) => kind.startsWith(`${engine}-`))
          .flatMap((kind) => readdirSync(join(pool, kind)))
          .filter((name) => /^[0-9a-f]{16}$/.test(name)).length
      : 0;
  const spares = join(dataDir, 'spare-users.json');
  const spare = process.getuid?.() !== 0 ? Infinity : existsSync(spares) ? (JSON.parse(readFileSync(spares, 'utf8')) as { users: string[] }).users.length : 0;
  return warm('postgresql') >= poolSize && warm('mariadb') >= poolSize && spare >= poolSize;
}

async function ping(address: string, user = 'app', password = userPassword): Promise<void> {
  const client = new Redis({ host: address, port: 6379, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false, enableReadyCheck: false, disableClientInfo: true });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.call('AUTH', [user, password]);
    await client.ping();
  } finally {
    client.disconnect();
  }
}

/** POST → ACTIVE/HEALTHY (polled every --poll-ms) → PING as the user; then delete. */
async function createOnce(serve: Serve, i: number): Promise<number> {
  while (!ready(serve.dataDir.path)) await new Promise((r) => setTimeout(r, 50));
  const { session } = serve;
  const started = performance.now();
  const body = { instance: { name: `ab-${i}`, flavorRef: '1', volume: { size: 1 }, datastore: { type: 'redis' }, users: [{ name: 'app', password: userPassword }] } };
  const res = await request<any>('POST', trove(session, '/instances'), { token: session.token, body });
  if (res.status !== 200) throw new Error(`create failed: ${JSON.stringify(res.body)}`);
  const id = res.body.instance.id as string;
  let instance: any;
  for (;;) {
    instance = (await request<any>('GET', trove(session, `/instances/${id}`), { token: session.token })).body.instance;
    if (instance.status === 'ERROR') throw new Error(`instance failed: ${JSON.stringify(instance.fault)}`);
    if (instance.status === 'ACTIVE' && instance.operating_status === 'HEALTHY') break;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  await ping(instance.addresses[0].address);
  const elapsed = performance.now() - started;
  await request('DELETE', trove(session, `/instances/${id}`), { token: session.token });
  await waitForInstance(session, id, (_x, status) => status === 404, 60_000);
  return elapsed;
}

/** the host's engine user as root (bench/provision.ts runs the raw engines as it too) */
function engineIds(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const id = (flag: string) => Number(execFileSync('id', [flag, 'coffer-db'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/** redis-server started by hand as bench/provision.ts does (AOF on, in the foreground) → first PING. */
async function rawRedisOnce(root: string, address: string, i: number): Promise<number> {
  const ids = engineIds();
  const dir = join(root, `raw-redis-${i}`);
  await mkdir(dir, { recursive: true });
  if (ids.uid !== undefined) await chown(dir, ids.uid, ids.gid!);
  const password = 'Raw-bench-pass-1234';
  const started = performance.now();
  const server = spawn('redis-server', ['--bind', address, '--port', '6379', '--dir', dir, '--appendonly', 'yes', '--requirepass', password], { ...ids, stdio: 'ignore' });
  for (;;) {
    try {
      await ping(address, 'default', password);
      break;
    } catch (err) {
      // another's server on the address answers, but not to this password
      if (server.exitCode !== null || performance.now() - started > 30_000) throw new Error(`raw redis-server on ${address} did not answer: ${String(err)}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  }
  const elapsed = performance.now() - started;
  server.kill('SIGTERM');
  await once(server, 'exit');
  await rm(dir, { recursive: true, force: true });
  return elapsed;
}

const loadBefore = loadavg()[0]!;
const a = await startServe(resolve(values.a), '127.95');
const b = await startServe(resolve(values.b), '127.96');
const samples = new Map<Serve, number[]>([[a, []], [b, []]]);
const raw: number[] = [];
const rawDir = await makeDataDir('coffer-bench-ab-raw');
try {
  // run 0 of each is the warm-up; then A B raw, B A raw, A B raw...
  for (let i = 0; i <= runs; i++) {
    for (const serve of i % 2 === 0 ? [a, b] : [b, a]) {
      const elapsed = await createOnce(serve, i);
      if (i > 0) samples.get(serve)!.push(elapsed);
    }
    const elapsed = await rawRedisOnce(rawDir.path, '127.94.200.2', i);
    if (i > 0) raw.push(elapsed);
  }
} finally {
  await Promise.all([a.stop(), b.stop(), rawDir.remove()]);
}
process.stdout.write(`${runs} creates each, interleaved; load average (1 min) ${loadBefore.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end.\n`);
for (const [serve, xs] of samples) {
  process.stdout.write(`${serve.tree}: median ${median(xs).toFixed(0)} ms (${xs.map((x) => x.toFixed(0)).join(', ')})\n`);
}
process.stdout.write(`raw redis-server → PING: median ${median(raw).toFixed(0)} ms (${raw.map((x) => x.toFixed(0)).join(', ')})\n`);
