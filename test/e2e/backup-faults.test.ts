// test-lane: parallel (its own vhost, data directory, random loopback pool and Swift address; it checks only processes its own agent started and processes of its own instances)
// test-long (minutes: a real agent killed and restarted around real backups and restores of PostgreSQL)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { bootstrapIdentity, buildApiServer, seedFlavors } from '../../src/api/index.js';
import { readMasterKeyFile, SwiftStorage } from '../../src/backup/index.js';
import { BusKey, connectTransport, type Transport } from '../../src/bus/index.js';
import { createLogger } from '../../src/common/index.js';
import { startConductor, type Conductor } from '../../src/conductor/index.js';
import { openStateStore, type StateStore } from '../../src/db/index.js';
import { startTaskmanager, type Taskmanager } from '../../src/taskmanager/index.js';
import { login, request, trove, type Session } from '../support/api-client.js';
import { startRole, type RoleProcess } from '../support/coffer-process.js';
import { liveDescendants, processesMentioning, stillRunning } from '../support/processes.js';
import { makeVhost } from '../support/rabbitmq-vhost.js';
import { startSwift, type SwiftServer } from '../support/swift-server.js';
import { makeDataDir } from '../support/temp-dir.js';
import { eventually, until } from '../support/wait.js';
import { randomPool } from '../guest/engine-fixture.js';

// Issue 10's fault proof: what a backup or a restore leaves when the agent taking it is killed
// (SIGKILL, as a crash or the OOM killer does), when the storage goes silent mid-upload, when a
// stored object is damaged and when the restoring host has another master key. The agent is a
// real `coffer agent` process with a real PostgreSQL, storing into a real Swift; the control
// plane (API over HTTP, taskmanager, conductor) runs in this process on the same RabbitMQ, so
// that the taskmanager's stall window can be seconds instead of two minutes.
//
// Each fault must end in a defined state with a reason, leave nothing in storage that looks
// complete, leave no process behind, and never stop the source instance from serving.

const adminPassword = 'Faults-admin-pass-1234';
const appPassword = 'Faults-app-pass-1234';
const suffix = randomBytes(3).toString('hex');
const agentHost = `faults-${suffix}`;
const addressPool = randomPool();
const container = 'database_backups';
/**
 * A backup here is a few of them, so there is a moment between the first and the manifest. Not
 * fewer bytes: Swift's SLO serves at most one segment a second after the tenth of an object.
 */
const segmentBytes = 4 * 1024 * 1024;
/** how long the agent's and taskmanager's storage wait on a silent Swift */
const storageIdleMs = 2000;
/** a running backup whose guest says nothing for this long is failed */
const backupStallMs = 10_000;
/** guards against a hung step, not measures */
const waitMs = 90_000;
/** the engine's own processes, which outlive their agent by design; everything else the agent runs dies with it */
const engineProcessNames = new Set(['postgres']);

let vhost: ReturnType<typeof makeVhost>;
let swift: SwiftServer;
let dataDir: Awaited<ReturnType<typeof makeDataDir>>;
let busKeyFile: string;
const masterKeyFiles: { right: string; other: string } = { right: '', other: '' };
let store: StateStore;
let transport: Transport;
let storage: SwiftStorage;
let conductor: Conductor;
let taskmanager: Taskmanager;
let app: FastifyInstance;
let session: Session;
let agent: RoleProcess | undefined;
/** every agent process this file started, for the log on failure */
const agentLogs: string[] = [];

interface Source {
  id: string;
  address: string;
}
let source: Source;
/** the rows of `items` in the source, as last written */
const sourceRows: [number, string][] = [];

async function writeKeyFile(name: string): Promise<string> {
  const path = join(dataDir.path, name);
  await writeFile(path, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  return path;
}

/** `coffer agent` with the Swift storage and the master key file given, until it says it runs. */
async function startAgent(masterKeyFile = masterKeyFiles.right): Promise<void> {
  const storageConfig = { driver: 'swift', authUrl: swift.authUrl, user: swift.user, key: swift.key, segmentBytes, idleTimeoutMs: storageIdleMs };
  const started = startRole(
    [
      'agent',
      '--data-dir', dataDir.path,
      '--agent-host', agentHost,
      '--address-pool', addressPool,
      '--warm-pool-size', '0',
      '--backup-storage', JSON.stringify(storageConfig),
      '--backup-master-key-file', masterKeyFile,
    ],
    { COFFER_BUS_URL: vhost.url, COFFER_BUS_KEY_FILE: busKeyFile, COFFER_LOG_LEVEL: 'info' },
  );
  agent = started;
  agentLogs.push('');
  const index = agentLogs.length - 1;
  started.child.on('exit', () => (agentLogs[index] = started.output()));
  await started.waitFor(/agent running/, 60_000);
}

async function killAgent(): Promise<void> {
  const running = agent!;
  await running.kill();
  agentLogs[agentLogs.length - 1] = running.output();
}

async function api<T = any>(method: string, path: string, status: number, body?: unknown): Promise<T> {
  const res = await request<T>(method, trove(session, path), { token: session.token, ...(body === undefined ? {} : { body }) });
  assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.body)}`);
  return res.body;
}

async function instanceView(id: string): Promise<any> {
  return (await api('GET', `/instances/${id}`, 200)).instance;
}

async function backupView(id: string): Promise<any> {
  return (await api('GET', `/backups/${id}`, 200)).backup;
}

async function waitInstance(id: string, what: string, ok: (view: any) => boolean): Promise<any> {
  return eventually(what, () => instanceView(id), ok, waitMs);
}

const settled = (view: any) => view.status === 'ERROR' || (view.status === 'ACTIVE' && view.operating_status === 'HEALTHY');

async function waitBackup(id: string, states: string[]): Promise<any> {
  return eventually(`backup ${id} to be ${states.join(' or ')}`, () => backupView(id), (view) => states.includes(view.status), waitMs);
}

async function connect(address: string): Promise<pg.Client> {
  const client = new pg.Client({ host: address, port: 5432, user: 'app', password: appPassword, database: 'app' });
  await client.connect();
  return client;
}

async function query<T extends pg.QueryResultRow>(address: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = await connect(address);
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

async function itemRows(address: string): Promise<[number, string][]> {
  return (await query<{ id: number; note: string }>(address, 'SELECT id, note FROM items ORDER BY id')).map((r) => [r.id, r.note]);
}

/** Writes a row into the source and reads every row back: it serves, and it kept what it had. */
async function sourceServes(note: string): Promise<void> {
  const id = (sourceRows.at(-1)?.[0] ?? 0) + 1;
  await query(source.address, 'INSERT INTO items (id, note) VALUES ($1, $2)', [id, note]);
  sourceRows.push([id, note]);
  assert.deepEqual(await itemRows(source.address), sourceRows, 'the source holds every row written to it');
}

async function createInstance(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const body = await api('POST', '/instances', 200, {
    instance: {
      name,
      flavorRef: '1',
      volume: { size: 1 },
      datastore: { type: 'postgresql' },
      ...extra,
    },
  });
  return body.instance.id as string;
}

async function startBackup(name: string): Promise<{ id: string; objectName: string }> {
  const body = await api('POST', '/backups', 202, { backup: { name, instance: source.id } });
  const row = await store.backups.get(body.backup.id);
  assert.ok(row !== undefined);
  assert.equal(row.container, container);
  return { id: row.id, objectName: row.objectName };
}

/** The names Swift holds for an object: itself, and every segment of every upload of it. */
async function storedNames(objectName: string): Promise<string[]> {
  const names: string[] = [];
  for (const [where, prefix] of [[container, objectName], [`${container}_segments`, `${objectName}/`]] as const) {
    const reply = await swift.call('GET', `/${where}?format=json&prefix=${encodeURIComponent(prefix)}`);
    if (reply.status === 404 || reply.status === 204) continue;
    assert.equal(reply.status, 200, `listing ${where}`);
    names.push(...((await reply.json()) as { name: string }[]).map((entry) => `${where}/${entry.name}`).filter((n) => n === `${container}/${objectName}` || n.startsWith(`${container}_segments/`)));
  }
  return names;
}

/** Waits until the upload has stored its first segment: the backup is under way, its manifest not yet put. */
async function waitFirstSegment(objectName: string): Promise<void> {
  await eventually(`a first segment of ${objectName}`, () => storedNames(objectName), (names) => names.some((n) => n.startsWith(`${container}_segments/`)), waitMs);
}

/**
 * The processes the agent runs now for its work, apart from the engines that outlive it by design
 * and the shells it keeps up for its nftables changes (src/agent/nft-session.ts: `sh` named
 * nft-session, living as long as the agent).
 */
function agentTools(): { pid: number; name: string }[] {
  return liveDescendants(agent!.child.pid!).filter((proc) => !engineProcessNames.has(proc.name) && !isNftSessionShell(proc.pid));
}

function isNftSessionShell(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('nft-session');
  } catch {
    return false;
  }
}

/** Fails with what is left when a process in `pids` is still running once its agent is gone. */
async function toolsEnd(pids: readonly number[], what: string): Promise<void> {
  await until(what, () => stillRunning(pids).length === 0, waitMs).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}: still running ${stillRunning(pids).join(', ')}`);
  });
}

/** An instance deleted leaves no process and no directory. */
async function deleteInstance(id: string): Promise<void> {
  await api('DELETE', `/instances/${id}`, 202);
  await eventually(`instance ${id} to be deleted`, () => request('GET', trove(session, `/instances/${id}`), { token: session.token }), (res) => res.status === 404, waitMs);
  assert.deepEqual(processesMentioning(id), [], `no process of instance ${id} is left`);
}

before(async () => {
  dataDir = await makeDataDir('coffer-faults');
  vhost = makeVhost({ ownUser: true });
  swift = await startSwift();
  busKeyFile = join(dataDir.path, 'bus.key');
  await writeFile(busKeyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  masterKeyFiles.right = await writeKeyFile('master.key');
  masterKeyFiles.other = await writeKeyFile('other-master.key');

  const logger = createLogger({ name: 'control-plane', level: 'info', file: controlLog() });
  store = await openStateStore(`sqlite:${join(dataDir.path, 'state.sqlite')}`);
  transport = await connectTransport(vhost.url, { key: BusKey.fromText(await readFile(busKeyFile, 'utf8')), logger });
  storage = new SwiftStorage({ credentials: { authUrl: swift.authUrl, user: swift.user, key: swift.key }, segmentBytes, idleTimeoutMs: storageIdleMs });
  await bootstrapIdentity(store, adminPassword);
  await seedFlavors(store);
  conductor = await startConductor({ store, transport, logger });
  taskmanager = await startTaskmanager({
    store,
    transport,
    logger,
    backups: { storage, masterKey: await readMasterKeyFile(masterKeyFiles.right) },
    backupStallMs,
    statusPollMs: 200,
  });
  app = await buildApiServer({ store, transport, logger, backupStorage: storage, defaultBackupContainer: container });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  assert.ok(address !== null && typeof address === 'object');
  session = await login(`http://127.0.0.1:${address.port}`, 'admin', adminPassword, 'admin');
  await startAgent();

  const id = await createInstance('faults-source', {
    databases: [{ name: 'app' }],
    users: [{ name: 'app', password: appPassword, databases: [{ name: 'app' }] }],
  });
  const view = await waitInstance(id, 'the source to be ACTIVE', settled);
  assert.equal(view.status, 'ACTIVE', JSON.stringify(view.fault));
  source = { id, address: view.addresses[0].address };
  await query(source.address, 'CREATE TABLE items (id int PRIMARY KEY, note text NOT NULL)');
  // about 40 MB of rows that compress no better than real data: a backup spans many segments
  await query(source.address, 'CREATE TABLE filler AS SELECT g AS id, md5(random()::text) || md5(random()::text) AS a, md5(random()::text) AS b FROM generate_series(1, 300000) g');
  await sourceServes('before any backup');
});

after(async () => {
  await agent?.stop();
  // the engines outlive their agent by design: stop those this file made
  for (const pid of processesMentioning(dataDir.path)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await app?.close();
  await taskmanager?.stop();
  await conductor?.stop();
  await transport?.close();
  await store?.close();
  await swift?.stop();
  vhost?.remove();
  await dataDir?.remove();
});

const controlLog = () => join(dataDir.path, 'control-plane.log');

/** A test whose failure prints the end of each agent's log and the control plane's: what they did is the first thing to look at. */
function faultTest(name: string, body: (t: TestContext) => Promise<void>): void {
  test(name, async (t) => {
    try {
      await body(t);
    } catch (err) {
      for (const [i, log] of agentLogs.entries()) {
        console.log(`--- agent ${i} ---\n${(log === '' ? (agent?.output() ?? '') : log).split('\n').slice(-60).join('\n')}`);
      }
      const control = await readFile(controlLog(), 'utf8').catch(() => '');
      console.log(`--- control plane ---\n${control.split('\n').slice(-60).join('\n')}`);
      throw err;
    }
  });
}

describe('backup faults', { concurrency: 1, timeout: 600_000 }, () => {
  faultTest('the agent killed mid-backup: the backup is FAILED, nothing is stored, its tools die with it, the source keeps serving', async (t) => {
    const backup = await startBackup('killed-mid-backup');
    await waitFirstSegment(backup.objectName);
    // Swift is held still only so that the kill lands mid-upload every time, not after the manifest
    swift.pause();
    const tools = agentTools();
    // the shells the agent keeps for nftables (it walled the source when creating it) end with it too
    const shells = liveDescendants(agent!.child.pid!).filter((proc) => isNftSessionShell(proc.pid));
    await killAgent();
    const killedAt = Date.now();
    swift.resume();
    assert.ok(tools.some((p) => p.name === 'pg_basebackup'), `pg_basebackup ran: ${JSON.stringify(tools)}`);
    assert.ok(shells.length > 0, 'the agent kept a shell for its nftables changes');

    await toolsEnd(tools.map((p) => p.pid), 'pg_basebackup and zstd to end with their agent');
    await toolsEnd(shells.map((p) => p.pid), "the agent's nftables shells to end with it");
    await sourceServes('while its agent is dead');
    await startAgent();
    const failed = await waitBackup(backup.id, ['FAILED', 'COMPLETED']);
    t.diagnostic(`FAILED ${Date.now() - killedAt} ms after the kill (stall window ${backupStallMs} ms)`);
    assert.equal(failed.status, 'FAILED');
    assert.match(failed.fail_reason, /stopped reporting/);
    // the taskmanager removes what the upload left once it recorded the failure
    await eventually('nothing of the failed backup to be left in Swift', () => storedNames(backup.objectName), (names) => names.length === 0, waitMs);
    await eventually('the source to be ACTIVE again', () => instanceView(source.id), (view) => view.status === 'ACTIVE' && view.operating_status === 'HEALTHY', waitMs);
    await sourceServes('after its agent came back');
  });

  faultTest('Swift goes silent mid-upload: the backup is FAILED saying so, no tool is left, the source keeps serving', async (t) => {
    const backup = await startBackup('silent-storage');
    await waitFirstSegment(backup.objectName);
    swift.pause();
    let failed: any;
    try {
      const tools = agentTools();
      assert.ok(tools.some((p) => p.name === 'pg_basebackup'), `pg_basebackup runs: ${JSON.stringify(tools)}`);
      failed = await waitBackup(backup.id, ['FAILED', 'COMPLETED']);
      await toolsEnd(tools.map((p) => p.pid), 'pg_basebackup and zstd to end');
      await sourceServes('while its storage is silent');
    } finally {
      swift.resume();
    }
    assert.equal(failed.status, 'FAILED');
    t.diagnostic(`fail_reason: ${failed.fail_reason}`);
    assert.match(failed.fail_reason, /storage .*(timed out|did not answer)/i);
    assert.equal(await storage.head(container, backup.objectName), undefined, 'no object under the backup\'s name');
    assert.ok(!(await storage.list(container)).some((o) => o.name === backup.objectName), 'none listed');
    await eventually('the source to be ACTIVE', () => instanceView(source.id), (view) => view.status === 'ACTIVE', waitMs);
    // what the upload stored before Swift went silent could not be removed then; deleting the
    // failed backup once Swift answers again removes it
    await api('DELETE', `/backups/${backup.id}`, 202);
    await eventually('the failed backup to be deleted', () => request('GET', trove(session, `/backups/${backup.id}`), { token: session.token }), (res) => res.status === 404, waitMs);
    assert.deepEqual(await storedNames(backup.objectName), [], 'nothing of the failed backup is left in Swift');
  });

  let good: { id: string; objectName: string; rows: [number, string][] };

  test('after those faults a backup completes', async () => {
    const backup = await startBackup('good');
    const view = await waitBackup(backup.id, ['FAILED', 'COMPLETED']);
    assert.equal(view.status, 'COMPLETED', view.fail_reason);
    good = { ...backup, rows: [...sourceRows] };
    await sourceServes('after the good backup');
  });

  faultTest('the agent killed mid-restore: the restore runs again from the start and the new instance holds the backup exactly', async (t) => {
    const id = await createInstance('restore-killed', { restorePoint: { backupRef: good.id } });
    // tar extracts what zstd decompresses of the object Swift sends; Swift held still there, the
    // kill lands mid-restore every time
    await eventually('the restore to be extracting', () => agentTools().map((p) => p.name), (names) => names.includes('tar') && names.includes('zstd'), waitMs);
    swift.pause();
    const tools = agentTools();
    await killAgent();
    swift.resume();
    t.diagnostic(`the agent ran ${JSON.stringify(tools)} when killed`);
    assert.ok(tools.some((p) => p.name === 'tar'), 'tar was extracting the backup');
    await toolsEnd(tools.map((p) => p.pid), 'the restore\'s tar and zstd to end with their agent');
    await startAgent();
    const view = await waitInstance(id, 'the restored instance to settle', settled);
    assert.equal(view.status, 'ACTIVE', JSON.stringify(view.fault));
    assert.deepEqual(await itemRows(view.addresses[0].address), good.rows, 'the restore holds the rows of its backup, no more, no less');
    await sourceServes('after a restore of it was killed');
    await deleteInstance(id);
  });

  faultTest('a host with another master key refuses to restore, saying the key changed; nothing is left running', async (t) => {
    await agent!.stop();
    await startAgent(masterKeyFiles.other);
    try {
      const id = await createInstance('restore-other-key', { restorePoint: { backupRef: good.id } });
      const view = await waitInstance(id, 'the restore to fail', settled);
      assert.equal(view.status, 'ERROR');
      t.diagnostic(`fault: ${view.fault?.message}`);
      assert.match(view.fault.message, /master key/);
      assert.deepEqual(processesMentioning(id), [], 'nothing of the failed restore runs');
      await deleteInstance(id);
    } finally {
      await agent!.stop();
      await startAgent();
    }
    await sourceServes('after a restore under another key failed');
  });

  faultTest('a project key altered in the state database is refused as damaged', async (t) => {
    const db = new Database(join(dataDir.path, 'state.sqlite'));
    const row = db.prepare('SELECT tenant_id, wrapped_key FROM project_keys').get() as { tenant_id: string; wrapped_key: string };
    const flipped = `${row.wrapped_key.slice(0, -3)}${row.wrapped_key.at(-3) === 'A' ? 'B' : 'A'}${row.wrapped_key.slice(-2)}`;
    db.prepare('UPDATE project_keys SET wrapped_key = ? WHERE tenant_id = ?').run(flipped, row.tenant_id);
    try {
      const id = await createInstance('restore-altered-key', { restorePoint: { backupRef: good.id } });
      const view = await waitInstance(id, 'the restore to fail', settled);
      assert.equal(view.status, 'ERROR');
      t.diagnostic(`fault: ${view.fault?.message}`);
      assert.match(view.fault.message, /altered|damaged/);
      assert.deepEqual(processesMentioning(id), [], 'nothing of the failed restore runs');
      await deleteInstance(id);
    } finally {
      db.prepare('UPDATE project_keys SET wrapped_key = ? WHERE tenant_id = ?').run(row.wrapped_key, row.tenant_id);
      db.close();
    }
  });

  faultTest('a damaged object is refused as altered; the new instance is ERROR and nothing is left running', async (t) => {
    await swift.corruptObject(container, good.objectName);
    const id = await createInstance('restore-damaged', { restorePoint: { backupRef: good.id } });
    const view = await waitInstance(id, 'the restore to fail', settled);
    assert.equal(view.status, 'ERROR');
    t.diagnostic(`fault: ${view.fault?.message}`);
    assert.match(view.fault.message, /altered|checksum/);
    assert.deepEqual(processesMentioning(id), [], 'nothing of the failed restore runs');
    await deleteInstance(id);
    await sourceServes('at the end');
  });
});
