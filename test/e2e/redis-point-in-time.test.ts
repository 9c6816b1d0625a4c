// test-lane: parallel (coffer serve on a loopback range, a port and a data directory of its own; it checks processes of its own instances only)
// test-long (a minute or more: the current AOF file ships after about a minute)
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request, trove, waitForInstance, type Session } from '../support/api-client.js';
import { runCli } from '../support/coffer-process.js';
import { connectRedis } from '../support/redis-client.js';
import { join } from 'node:path';
import { startServe, type ServeRun } from './serve-run.js';

// Redis point in time end to end, against a real `coffer serve` (its default local backup
// storage): an instance written to before and after a full backup shows its recoverable window
// once its guest has shipped the AOF after the writes (at most about a minute), and an instance
// created from it at a moment between two writes holds exactly the keys written before it.

const adminPassword = 'Redis-pitr-admin-pass-1234';
const cachePassword = 'Cache-pass-1234';
const waitMs = 240_000;
let run: ServeRun;
let admin: Session;
const created: string[] = [];

before(async () => {
  run = await startServe('coffer-e2e-redis-pitr', adminPassword, ['--address-pool', '127.95.78.0/24']);
  admin = run.session;
});

after(async () => {
  for (const id of created) {
    await request('DELETE', trove(admin, `/instances/${id}`), { token: admin.token }).catch(() => undefined);
    await waitForInstance(admin, id, (_i, status) => status === 404, 60_000).catch(() => undefined);
  }
  await run?.stop();
});

async function api<T = any>(method: string, path: string, status: number, body?: unknown): Promise<T> {
  const res = await request<T>(method, trove(admin, path), { token: admin.token, ...(body === undefined ? {} : { body }) });
  assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.body)}`);
  return res.body;
}

/** creates a Redis instance with the user `cache` and waits until it serves; answers its id and address */
async function createRedis(name: string, extra: Record<string, unknown> = {}): Promise<{ id: string; address: string }> {
  const body = await api('POST', '/instances', 200, {
    instance: { name, flavorRef: '1', volume: { size: 1 }, datastore: { type: 'redis' }, users: [{ name: 'cache', password: cachePassword }], ...extra },
  });
  const id = body.instance.id as string;
  created.push(id);
  const { instance } = await waitForInstance(admin, id, (i) => i?.status === 'ACTIVE' || i?.status === 'ERROR', waitMs);
  assert.equal(instance.status, 'ACTIVE', JSON.stringify(instance));
  return { id, address: instance.addresses[0].address as string };
}

async function asCache<T>(address: string, work: (client: Awaited<ReturnType<typeof connectRedis>>) => Promise<T>): Promise<T> {
  const client = await connectRedis(address, 6379, ['cache', cachePassword]);
  try {
    return await work(client);
  } finally {
    client.disconnect();
  }
}

test('Redis: recoverable window once the AOF is shipped; coffer instance create --restore-time holds exactly the keys written before the moment', { timeout: 600_000 }, async (t) => {
  const source = await createRedis('pitr-source');
  const writes: { key: string; sent: number; answered: number }[] = [];
  const write = async () => {
    const key = `k${writes.length}`;
    await asCache(source.address, async (client) => {
      const sent = Date.now();
      await client.multi().set(key, 'v').incr('writes').exec();
      writes.push({ key, sent, answered: Date.now() });
    });
  };
  await write();
  const backup = (await api('POST', '/backups', 202, { backup: { name: 'pitr-base', instance: source.id } })).backup;
  const done = await (async () => {
    for (;;) {
      const shown = (await api('GET', `/backups/${backup.id}`, 200)).backup;
      if (shown.status === 'COMPLETED' || shown.status === 'FAILED') return shown;
      await sleep(200);
    }
  })();
  assert.equal(done.status, 'COMPLETED', JSON.stringify(done));

  await sleep(2100);
  for (let i = 0; i < 3; i += 1) {
    await write();
    await sleep(2100);
  }
  const last = writes.at(-1)!;
  const { instance } = await waitForInstance(
    admin,
    source.id,
    (i) => i?.recoverable_window !== undefined && Date.parse(`${i.recoverable_window.latest}Z`) >= last.answered,
    waitMs,
  );
  t.diagnostic(`the recoverable window reached the last write ${((Date.now() - last.answered) / 1000).toFixed(1)} s after it`);
  const moment = new Date((writes[2]!.answered + writes[3]!.sent) / 2);
  assert.ok(Date.parse(`${instance.recoverable_window.earliest}Z`) <= moment.getTime(), JSON.stringify(instance.recoverable_window));

  const env = { COFFER_CONFIG_DIR: join(run.dataDir.path, 'cli') };
  const loggedIn = await runCli(['login', '--url', run.baseUrl, '--user', 'admin', '--project', 'admin', '--password-stdin'], { env, input: `${adminPassword}\n` });
  assert.equal(loggedIn.code, 0, loggedIn.stderr);
  const shown = await runCli(['instance', 'show', 'pitr-source'], { env });
  assert.match(shown.stdout, /Restorable to +│ .+ … .+ \(--from-instance --restore-time\)/);

  const started = Date.now();
  const restored = await runCli(
    ['instance', 'create', 'pitr-copy', '--from-instance', 'pitr-source', '--restore-time', moment.toISOString(), '--flavor', '1', '--size', '1', '--user', `cache:${cachePassword}`],
    { env, timeoutMs: waitMs },
  );
  assert.equal(restored.code, 0, restored.stderr + restored.stdout);
  const id = (await api('GET', '/instances', 200)).instances.find((i: any) => i.name === 'pitr-copy').id as string;
  created.push(id);
  const { instance: copy } = await waitForInstance(admin, id, (i) => i?.status === 'ACTIVE' || i?.status === 'ERROR', waitMs);
  assert.equal(copy.status, 'ACTIVE', JSON.stringify(copy));
  t.diagnostic(`pitr-copy: \`coffer instance create --from-instance --restore-time\` ACTIVE ${((Date.now() - started) / 1000).toFixed(1)} s after it started`);
  const address = copy.addresses[0].address as string;
  const keys = (await asCache(address, (client) => client.keys('k*'))).sort();
  assert.deepEqual(keys, ['k0', 'k1', 'k2']);
  assert.equal(await asCache(address, (client) => client.get('writes')), '3');
});
