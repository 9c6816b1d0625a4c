// test-lane: parallel (coffer serve on a loopback range, a port and a data directory of its own; it checks processes of its own instances only)
// test-long (a minute or more: real backups restored into scratch instances of PostgreSQL and Redis)
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { login, request, trove as troveUrl, type Session } from '../support/api-client.js';
import { runCli } from '../support/coffer-process.js';
import { processesMentioning } from '../support/processes.js';
import { connectRedis } from '../support/redis-client.js';
import { eventually } from '../support/wait.js';
import { startServe, type ServeRun } from './serve-run.js';

// Backup verification against a real `coffer serve`: a PostgreSQL and a Redis instance with data,
// a backup of each, then `coffer backup verify` (and the API action) restores each into a scratch
// instance, runs the engine's own check (pg_amcheck; SCAN and redis-check-rdb) and removes the
// scratch instance. Meanwhile the project never sees the scratch instance in its list or quotas;
// afterwards no process or directory of it is left. A backup object altered in the storage
// FAILS with a checksum reason, and no scratch instance is made for it.

const adminPassword = 'Verify-admin-pass-1234';
const memberPassword = 'Verify-member-pass-1234';
const appPassword = 'Verify-app-pass-1234';
const addressPool = '127.96.200.0/24';
const waitMs = 180_000;
const stepMs = 600_000;
const pollMs = 50;

let run: ServeRun;
let session: Session;
let adminSession: Session;
const member = { user: 'verify-member', project: 'verify-project' };
const instances = new Map<string, { id: string; address: string }>();
const backups = new Map<string, string>();
/** every scratch instance a verification made, by backup name */
const scratches = new Map<string, string>();

async function api<T = any>(method: string, path: string, status: number, body?: unknown, as: Session = session): Promise<T> {
  const res = await request<T>(method, troveUrl(as, path), { token: as.token, ...(body === undefined ? {} : { body }) });
  assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.body)}`);
  return res.body;
}

async function makeMember(): Promise<void> {
  adminSession = await login(run.baseUrl, 'admin', adminPassword, 'admin');
  const identity = async (method: string, path: string, body?: unknown) => {
    const res = await request<any>(method, `${run.baseUrl}/identity/v3${path}`, { token: adminSession.token, ...(body === undefined ? {} : { body }) });
    assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const project = (await identity('POST', '/projects', { project: { name: member.project, domain_id: 'default' } })).project;
  const user = (await identity('POST', '/users', { user: { name: member.user, password: memberPassword, default_project_id: project.id, domain_id: 'default' } })).user;
  const role = (await identity('GET', '/roles?name=member')).roles[0];
  await identity('PUT', `/projects/${project.id}/users/${user.id}/roles/${role.id}`);
  session = await login(run.baseUrl, member.user, memberPassword, member.project);
}

async function createInstance(name: string, datastore: 'postgresql' | 'redis', extra: Record<string, unknown>): Promise<void> {
  const versions = (await api('GET', `/datastores/${datastore}/versions`, 200)).versions;
  const created = (
    await api('POST', '/instances', 200, {
      instance: { name, flavorRef: '2', volume: { size: 1 }, datastore: { type: datastore, version: versions[0].name }, ...extra },
    })
  ).instance;
  const view = await eventually(
    `${name} ACTIVE/HEALTHY`,
    async () => {
      const shown = (await api('GET', `/instances/${created.id}`, 200)).instance;
      assert.notEqual(shown.status, 'ERROR', JSON.stringify(shown));
      if (shown.status !== 'ACTIVE') await sleep(pollMs);
      return shown;
    },
    (v) => v.status === 'ACTIVE' && v.operating_status === 'HEALTHY',
    waitMs,
  );
  instances.set(name, { id: created.id, address: view.addresses[0].address });
}

async function backUp(name: string, instance: string): Promise<string> {
  const id = (await api('POST', '/backups', 202, { backup: { name, instance: instances.get(instance)!.id } })).backup.id as string;
  await eventually(`${name} COMPLETED`, () => api('GET', `/backups/${id}`, 200), (b) => b.backup.status === 'COMPLETED' || b.backup.status === 'FAILED', waitMs);
  assert.equal((await api('GET', `/backups/${id}`, 200)).backup.status, 'COMPLETED');
  backups.set(name, id);
  return id;
}

/** The scratch instances the deployment holds for `backupId`'s verifications, live or deleted (admins see them). */
async function scratchesOf(backupId: string): Promise<Array<{ id: string; deleted: boolean }>> {
  const all = (await api('GET', '/mgmt/instances?deleted=any', 200, undefined, adminSession)).instances as Array<{ id: string; name: string; deleted: boolean }>;
  return all.filter((i) => i.name === `verify-${backupId.slice(0, 8)}`).map((i) => ({ id: i.id, deleted: i.deleted }));
}

/**
 * Watches what the project sees while a verification runs: its instance list and quota usage
 * must never change, whatever the scratch instance is doing.
 */
function watchProject(): { stop: () => Promise<{ lists: Set<string>; usages: Set<string>; reads: number }> } {
  const lists = new Set<string>();
  const usages = new Set<string>();
  let reads = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const listed = (await api('GET', '/instances', 200)).instances.map((i: { id: string }) => i.id).sort();
      lists.add(JSON.stringify(listed));
      const quotas = (await api('GET', `/mgmt/quotas/${session.projectId}`, 200)).quotas.map((q: { resource: string; in_use: number }) => `${q.resource}=${q.in_use}`);
      usages.add(quotas.join(','));
      reads += 1;
      await sleep(pollMs);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { lists, usages, reads };
    },
  };
}

function checkScratchGone(scratchId: string): void {
  assert.deepEqual(processesMentioning(scratchId), [], 'no process of the scratch instance is left');
  assert.equal(existsSync(join(run.dataDir.path, 'instances', scratchId)), false, 'its directory is removed');
}

before(async () => {
  run = await startServe('coffer-e2e-verify', adminPassword, ['--address-pool', addressPool, '--rate-limit', '100000']);
});

after(async () => {
  await run?.stop();
});

describe('backup verification through coffer serve', { concurrency: 1 }, () => {
  test('a PostgreSQL and a Redis instance with data, and a backup of each', { timeout: stepMs }, async () => {
    await makeMember();
    await Promise.all([
      createInstance('verify-pg', 'postgresql', { databases: [{ name: 'app' }], users: [{ name: 'app', password: appPassword, databases: [{ name: 'app' }] }] }),
      createInstance('verify-redis', 'redis', { users: [{ name: 'app', password: appPassword }] }),
    ]);
    const client = new pg.Client({ host: instances.get('verify-pg')!.address, port: 5432, user: 'app', password: appPassword, database: 'app' });
    await client.connect();
    try {
      await client.query("CREATE TABLE items (id integer PRIMARY KEY, note text NOT NULL)");
      await client.query("INSERT INTO items SELECT g, 'row ' || g FROM generate_series(1, 5000) g");
      await client.query('CREATE TABLE events (at timestamptz NOT NULL, what text)');
      await client.query('CREATE INDEX events_at ON events (at)');
      await client.query("INSERT INTO events SELECT now() - g * interval '1 minute', md5(g::text) FROM generate_series(1, 2000) g");
    } finally {
      await client.end();
    }
    const redis = instances.get('verify-redis')!;
    const tenant = await connectRedis(redis.address, 6379, ['app', appPassword]);
    try {
      for (let i = 0; i < 300; i++) await tenant.call('SET', [`key:${i}`, `value ${i}`]);
    } finally {
      tenant.disconnect();
    }
    await Promise.all([backUp('pg-full', 'verify-pg'), backUp('redis-full', 'verify-redis')]);
  });

  test('coffer backup verify (PostgreSQL): each step shown, PASSED with what pg_amcheck checked; the project never saw the scratch instance', { timeout: stepMs }, async (t) => {
    const env = { COFFER_CONFIG_DIR: join(run.dataDir.path, 'cli') };
    const loggedIn = await runCli(['login', '--url', run.baseUrl, '--user', member.user, '--project', member.project, '--password-stdin'], { env, input: `${memberPassword}\n` });
    assert.equal(loggedIn.code, 0, loggedIn.stderr);
    const watch = watchProject();
    const started = Date.now();
    let verified: Awaited<ReturnType<typeof runCli>>;
    let seen: Awaited<ReturnType<ReturnType<typeof watchProject>['stop']>>;
    try {
      verified = await runCli(['backup', 'verify', 'pg-full'], { env, timeoutMs: waitMs });
    } finally {
      seen = await watch.stop();
    }
    t.diagnostic(`pg-full: \`coffer backup verify\` PASSED in ${((Date.now() - started) / 1000).toFixed(1)} s; the project was read ${seen.reads} times meanwhile`);
    assert.equal(verified.code, 0, verified.stderr + verified.stdout);
    assert.match(verified.stderr, /Verifying pg-full: RUNNING — restoring it into a scratch instance/);
    assert.match(verified.stderr, /Verifying pg-full: RUNNING — running the engine's own check of the data/);
    assert.match(verified.stdout, /PASSED: Restored into a scratch instance; the engine's own check found no errors\.\nChecked: databases \d+, tables \d+, indexes \d+, errors 0\./);
    assert.deepEqual([...seen.lists], [JSON.stringify([...instances.values()].map((i) => i.id).sort())], 'the instance list never showed the scratch instance');
    assert.equal(seen.usages.size, 1, `quota usage never moved: ${[...seen.usages].join(' | ')}`);

    const backup = (await api('GET', `/backups/${backups.get('pg-full')}`, 200)).backup;
    assert.equal(backup.verification.status, 'PASSED');
    // the tenant's two tables, its primary key and index; postgres, app and template1 checked
    assert.ok(backup.verification.checks.tables >= 2 && backup.verification.checks.indexes >= 2, JSON.stringify(backup.verification.checks));
    assert.ok(backup.verification.checks.databases >= 3, JSON.stringify(backup.verification.checks));
    const made = await scratchesOf(backup.id);
    assert.equal(made.length, 1, JSON.stringify(made));
    assert.equal(made[0]!.deleted, true);
    scratches.set('pg-full', made[0]!.id);
    await api('GET', `/instances/${made[0]!.id}`, 404);
    checkScratchGone(made[0]!.id);
  });

  test('the API action (Redis): RUNNING, then PASSED with every key scanned and the snapshot checked', { timeout: stepMs }, async () => {
    const id = backups.get('redis-full')!;
    await api('POST', `/backups/${id}/action`, 202, { verify: {} });
    const running = (await api('GET', `/backups/${id}`, 200)).backup.verification;
    assert.equal(running.status, 'RUNNING');
    await api('POST', `/backups/${id}/action`, 422, { verify: {} });
    const done = await eventually('the Redis verification to end', async () => (await api('GET', `/backups/${id}`, 200)).backup.verification, (v) => v.status !== 'RUNNING', waitMs);
    assert.equal(done.status, 'PASSED', JSON.stringify(done));
    assert.equal(done.checks.keys, 300);
    assert.equal(done.checks.keys_scanned, 300);
    assert.equal(done.checks.errors, 0);
    const [made] = await scratchesOf(id);
    assert.equal(made?.deleted, true);
    checkScratchGone(made!.id);
  });

  test('a backup object altered in the storage FAILS with a checksum reason; no scratch instance is made', { timeout: stepMs }, async () => {
    const id = backups.get('pg-full')!;
    const backup = (await api('GET', `/backups/${id}`, 200)).backup;
    const path = fileURLToPath(backup.locationRef);
    const bytes = await readFile(path);
    bytes[bytes.length >> 1]! ^= 0x20;
    await writeFile(path, bytes);
    const verified = await runCli(['backup', 'verify', id], { env: { COFFER_CONFIG_DIR: join(run.dataDir.path, 'cli') }, timeoutMs: waitMs });
    assert.equal(verified.code, 1, verified.stdout);
    assert.match(verified.stderr, /FAILED its verification: Backup object \S+ in container \S+ does not match its checksum/);
    const shown = (await api('GET', `/backups/${id}`, 200)).backup;
    assert.equal(shown.verification.status, 'FAILED');
    assert.deepEqual((await scratchesOf(id)).map((s) => s.id), [scratches.get('pg-full')], 'only the first verification made a scratch instance');
    // the source is untouched, and its backup still listed as Trove has it
    assert.equal(shown.status, 'COMPLETED');
    assert.equal((await api('GET', `/instances/${instances.get('verify-pg')!.id}`, 200)).instance.status, 'ACTIVE');
  });

  test('every instance is deleted, and no engine process is left', { timeout: stepMs }, async () => {
    for (const [name, { id }] of instances) {
      await api('DELETE', `/instances/${id}`, 202);
      await eventually(`${name} to be gone`, () => request('GET', troveUrl(session, `/instances/${id}`), { token: session.token }), (r) => r.status === 404, waitMs);
      assert.deepEqual(processesMentioning(id), [], `no process of ${name} is left`);
    }
    const log = await readFile(join(run.dataDir.path, 'coffer.log'), 'utf8');
    for (const secret of [adminPassword, memberPassword, appPassword]) assert.ok(!log.includes(secret), 'a password is in coffer.log');
  });
});
