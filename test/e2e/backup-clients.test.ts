// test-lane: parallel (coffer serve on a loopback range, a port and a data directory of its own; it checks processes of its own instances only)
// test-long (minutes: real backups and restores of PostgreSQL and MariaDB through Python clients)
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createConnection } from 'mysql2/promise';
import pg from 'pg';
import { login, request, trove as troveUrl, type Session } from '../support/api-client.js';
import { runCli } from '../support/coffer-process.js';
import { describeRun, lastJson, openstack, troveCli, type ClientResult, type Credentials } from '../support/openstack-clients.js';
import { processesMentioning } from '../support/processes.js';
import { eventually } from '../support/wait.js';
import { startServe, type ServeRun } from './serve-run.js';

// Backups through Trove's own clients, against a real `coffer serve` with a real PostgreSQL and a
// real MariaDB: Debian's `openstack database backup …` and `instance create --backup`, the legacy
// `trove backup-*`, and Coffer's own CLI. Rows are written with real drivers before and after
// each backup, and every restore is compared row for row with its source as it was when the
// backup was taken. One source instance per engine; the steps share them and run in order.
//
// Each client command costs seconds on a busy machine (Python starts, then logs in), so the
// clients do what is under test, and the waiting and the set-up around it go straight to the API.

const adminPassword = 'Backup-admin-pass-1234';
const memberPassword = 'Backup-member-pass-1234';
const appPassword = 'Backup-app-pass-1234';
const bobPassword = 'Backup-bob-pass-1234';
const bobNewPassword = 'Backup-bob-new-pass-1234';
const addressPool = '127.99.0.0/16';
const waitMs = 180_000;
/** a guard against a hung step, not a measure */
const stepMs = 600_000;
/** how often the API is asked while waiting: often enough to see a step, rarely enough not to load the server */
const pollMs = 100;
/** how often an instance's status is read while its backup runs */
const watchMs = 20;
/** the pause between two rows of the client that writes while a backup runs */
const tickMs = 5;

type Row = [number, string];

interface Connection {
  query(sql: string, params?: unknown[]): Promise<Array<Record<string, unknown>>>;
  end(): Promise<void>;
}

interface Engine {
  datastore: 'postgresql' | 'mariadb';
  /** the name of this engine's source instance */
  source: string;
  /** the engine's placeholder for the `i`th parameter (from 0) */
  placeholder(i: number): string;
  /** a session of a tenant's user over TCP, in the database `app` */
  connect(address: string, user?: string, password?: string): Promise<Connection>;
  /** a login as the guest's own admin over the instance's Unix socket: '' when it works, else the error's message */
  adminLogin(instanceDir: string, password: string): Promise<string>;
}

async function refusal(attempt: Promise<unknown>): Promise<string> {
  try {
    await attempt;
    return '';
  } catch (err) {
    return (err as Error).message;
  }
}

const postgresql: Engine = {
  datastore: 'postgresql',
  source: 'backup-pg',
  placeholder: (i) => `$${i + 1}`,
  async connect(address, user = 'app', password = appPassword) {
    const client = new pg.Client({ host: address, port: 5432, user, password, database: 'app' });
    await client.connect().catch(async (err: unknown) => {
      await client.end().catch(() => undefined);
      throw err;
    });
    return { query: async (sql, params = []) => (await client.query(sql, params)).rows, end: () => client.end() };
  },
  adminLogin(instanceDir, password) {
    const client = new pg.Client({ host: join(instanceDir, 'data'), user: 'os_admin', password, database: 'postgres' });
    return refusal(client.connect().finally(() => client.end().catch(() => undefined)));
  },
};

const mariadb: Engine = {
  datastore: 'mariadb',
  source: 'backup-maria',
  placeholder: () => '?',
  async connect(address, user = 'app', password = appPassword) {
    const connection = await createConnection({ host: address, port: 3306, user, password, database: 'app' });
    return { query: async (sql, params = []) => (await connection.query(sql, params))[0] as Array<Record<string, unknown>>, end: () => connection.end() };
  },
  adminLogin: (instanceDir, password) =>
    refusal(createConnection({ socketPath: join(instanceDir, 'data', 'mysqld.sock'), user: 'os_admin', password }).then((c) => c.end())),
};

async function query(engine: Engine, address: string, sql: string, params: unknown[] = []): Promise<Array<Record<string, unknown>>> {
  const connection = await engine.connect(address);
  try {
    return await connection.query(sql, params);
  } finally {
    await connection.end();
  }
}

async function itemRows(engine: Engine, address: string): Promise<Row[]> {
  return (await query(engine, address, 'SELECT id, note FROM items ORDER BY id')).map((r) => [Number(r.id), String(r.note)]);
}

async function tickNumbers(engine: Engine, address: string): Promise<number[]> {
  return (await query(engine, address, 'SELECT n FROM ticks ORDER BY n')).map((r) => Number(r.n));
}

/** '' when the user logs in, else the error's message */
function loginRefusal(engine: Engine, address: string, user: string, password: string): Promise<string> {
  return refusal(engine.connect(address, user, password).then((c) => c.end()));
}

async function insertRows(engine: Engine, address: string, from: number, to: number, note: string): Promise<void> {
  const ids = Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const values = ids.map((_, i) => `(${engine.placeholder(i * 2)}, ${engine.placeholder(i * 2 + 1)})`).join(', ');
  await query(engine, address, `INSERT INTO items (id, note) VALUES ${values}`, ids.flatMap((id) => [id, `${note} ${id}`]));
}

/**
 * A client that commits one row a transaction into `ticks`, numbered on from the last, until
 * stopped: a backup taken meanwhile must restore the rows up to some number without a gap, at
 * least those committed before it was asked for and none committed after it was stored.
 */
async function startTicking(engine: Engine, address: string): Promise<{ committed: () => number; stop: () => Promise<void> }> {
  const connection = await engine.connect(address);
  let committed = Number((await connection.query('SELECT count(*) AS c FROM ticks'))[0]!.c);
  let running = true;
  const loop = (async () => {
    while (running) {
      await connection.query(`INSERT INTO ticks (n) VALUES (${engine.placeholder(0)})`, [committed + 1]);
      committed += 1;
      await sleep(tickMs);
    }
  })();
  return {
    committed: () => committed,
    stop: async () => {
      running = false;
      try {
        await loop;
      } finally {
        await connection.end();
      }
    },
  };
}

const engines = [postgresql, mariadb];

let run: ServeRun;
let member: Credentials;
let session: Session;
/** every instance made here, by name */
const instances = new Map<string, { id: string; address: string; engine: Engine; adminPassword: string; deleted?: boolean }>();
/** the root password each source was given, by engine */
const rootPasswords = new Map<Engine, string>();

interface BackupRecord {
  id: string;
  version: string;
  /** the rows of `items` when it was taken */
  rows: Row[];
  /** how many rows of `ticks` it may hold: those committed before it was asked for, at least */
  ticks: { atLeast: number; atMost: number };
  /** bob's password when it was taken */
  bobPassword: string;
}
const backups = new Map<string, BackupRecord>();

before(async () => {
  run = await startServe('coffer-e2e-backup', adminPassword, ['--address-pool', addressPool, '--rate-limit', '100000']);
  member = { authUrl: `${run.baseUrl}/identity/v3`, user: 'backup-member', password: memberPassword, project: 'backup-project' };
});

after(async () => {
  await run?.stop();
});

async function os(args: string[]): Promise<ClientResult> {
  const r = await openstack(member, args);
  assert.equal(r.code, 0, describeRun(['openstack', ...args], r));
  return r;
}

async function osJson<T = any>(args: string[]): Promise<T> {
  return lastJson<T>((await os([...args, '-f', 'json'])).stdout);
}

async function trove(args: string[]): Promise<ClientResult> {
  const r = await troveCli(member, args);
  assert.equal(r.code, 0, describeRun(['trove', ...args], r));
  return r;
}

/** A request to the API as the member, which must answer `status`. */
async function api<T = any>(method: string, path: string, status: number, body?: unknown): Promise<T> {
  const res = await request<T>(method, troveUrl(session, path), { token: session.token, ...(body === undefined ? {} : { body }) });
  assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.body)}`);
  return res.body;
}

/** The admin makes the project and its member, over Keystone's API. */
async function makeMember(): Promise<void> {
  const adminSession = await login(run.baseUrl, 'admin', adminPassword, 'admin');
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

/**
 * Polls the API until `ok` accepts the view (ERROR or FAILED fails at once). Returns the view
 * and when `ok` first held.
 */
async function poll(path: string, key: 'instance' | 'backup', what: string, ok: (view: any) => boolean): Promise<{ view: any; at: number }> {
  const view = await eventually(
    what,
    async () => {
      const body = await api('GET', path, 200);
      assert.ok(body[key].status !== 'ERROR' && body[key].status !== 'FAILED', `${what}: ${JSON.stringify(body)}`);
      if (!ok(body[key])) await sleep(pollMs);
      return body[key];
    },
    ok,
    waitMs,
  );
  return { view, at: Date.now() };
}

const healthy = (view: any) => view.status === 'ACTIVE' && view.operating_status === 'HEALTHY';

/** Waits until the instance is ACTIVE/HEALTHY; records it. Returns when that was first seen. */
async function waitHealthy(name: string, id: string, engine: Engine): Promise<number> {
  const { view, at } = await poll(`/instances/${id}`, 'instance', `${name} to be ACTIVE/HEALTHY`, healthy);
  const address = view.addresses[0].address as string;
  assert.match(address, /^127\.99\.\d+\.\d+$/, 'the address comes from the configured pool');
  // the guest's own password for its engine, which only the host reads
  const adminPassword = await readFile(join(run.dataDir.path, 'instances', id, 'os_admin.password'), 'utf8');
  instances.set(name, { id, address, engine, adminPassword });
  return at;
}

/** The file a COMPLETED backup's locationRef names: in <data dir>/backups. */
function objectPath(backup: { locationRef: string }): string {
  const path = fileURLToPath(backup.locationRef);
  assert.ok(path.startsWith(join(run.dataDir.path, 'backups') + '/'), `${path} is under <data dir>/backups`);
  return path;
}

/**
 * Every backup object file in <data dir>/backups, the storage's own dot-files left out, and the
 * archived log (`<instance id>/wal/…`, the directories beside them) too.
 */
async function storedObjects(): Promise<string[]> {
  const root = join(run.dataDir.path, 'backups');
  const found: string[] = [];
  for (const container of await readdir(root)) {
    for (const entry of await readdir(join(root, container), { withFileTypes: true })) {
      if (entry.isFile() && !entry.name.startsWith('.')) found.push(join(root, container, entry.name));
    }
  }
  return found.sort();
}

/** A point-in-time restore's target: the PostgreSQL source's state at a moment between two commits. */
let pitr: { moment: Date; lastCommit: Date } | undefined;

/**
 * Reads the instance's status over and over until stopped; returns each status seen, with how
 * many reads in a row saw it. The last read starts after `stop` was called: one in flight then
 * may have been answered before the change the caller waited for.
 */
function watchStatus(instanceId: string): { stop: () => Promise<Array<{ status: string; reads: number }>> } {
  const seen: Array<{ status: string; reads: number }> = [];
  let running = true;
  const loop = (async () => {
    for (;;) {
      const last = !running;
      const status = (await api('GET', `/instances/${instanceId}`, 200)).instance.status as string;
      const previous = seen.at(-1);
      if (previous?.status === status) previous.reads += 1;
      else seen.push({ status, reads: 1 });
      if (last) return;
      await sleep(watchMs);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return seen;
    },
  };
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** What the instance holds now, for the backup about to be taken. */
async function snapshot(instance: string): Promise<Omit<BackupRecord, 'id' | 'version'>> {
  const { address, engine } = instances.get(instance)!;
  const ticks = (await tickNumbers(engine, address)).length;
  return {
    rows: await itemRows(engine, address),
    ticks: { atLeast: ticks, atMost: ticks },
    bobPassword: (await loginRefusal(engine, address, 'bob', bobPassword)) === '' ? bobPassword : bobNewPassword,
  };
}

/**
 * `openstack database backup create` and `backup show`, with a client writing to the source
 * and the instance's status watched throughout: it must show BACKUP while the backup runs, and
 * ACTIVE again after.
 */
async function backupWithOpenstack(t: TestContext, engine: Engine, name: string, extra: string[] = []): Promise<any> {
  const source = instances.get(engine.source)!;
  const state = await snapshot(engine.source);
  const ticker = await startTicking(engine, source.address);
  const watch = watchStatus(source.id);
  const started = Date.now();
  let accepted = 0;
  let completed = 0;
  let id = '';
  let watched: Array<{ status: string; reads: number }>;
  try {
    await eventually('the first ticks', ticker.committed, (n) => n >= state.ticks.atLeast + 3);
    state.ticks.atLeast = ticker.committed();
    const created = await osJson(['database', 'backup', 'create', name, '--instance', engine.source, '--description', `e2e ${name}`, ...extra]);
    accepted = Date.now();
    assert.equal(created.name, name);
    assert.equal(created.instance_id, source.id);
    assert.match(created.status, /^(NEW|BUILDING|COMPLETED)$/);
    id = created.id;
    completed = (await poll(`/backups/${id}`, 'backup', `${name} to be COMPLETED`, (b) => b.status === 'COMPLETED')).at;
    // the row being written as COMPLETED was seen may be in the backup too
    state.ticks.atMost = ticker.committed() + 1;
  } finally {
    watched = await watch.stop();
    await ticker.stop();
  }
  const statuses = watched.map((w) => w.status);
  t.diagnostic(
    `${name}: \`openstack database backup create\` answered in ${seconds(accepted - started)}, ` +
      `COMPLETED ${seconds(completed - started)} after it started, with ${state.ticks.atMost - state.ticks.atLeast} rows committed meanwhile; ` +
      `the instance showed ${watched.map((w) => `${w.status} (${w.reads} reads)`).join(' → ')}`,
  );
  // The backup is recorded (NEW) before the API answers and runs for a second or more (a tool
  // starts, a checkpoint, an upload): the watch reads the status every 20 ms meanwhile.
  assert.ok(statuses.includes('BACKUP'), `the instance shows BACKUP while its backup runs: ${statuses.join(', ')}`);
  assert.equal(statuses.at(-1), 'ACTIVE', 'the instance is ACTIVE again once its backup is stored');

  const shown = await osJson(['database', 'backup', 'show', name]);
  assert.equal(shown.id, id);
  assert.equal(shown.status, 'COMPLETED');
  assert.equal(shown.description, `e2e ${name}`);
  assert.equal(shown.instance_id, source.id);
  assert.equal(shown.datastore, engine.datastore);
  const object = await stat(objectPath(shown));
  assert.equal(shown.size, Math.round((object.size / 1024 ** 3) * 100) / 100, 'size is the stored object’s, in GB');
  assert.equal(object.mode & 0o777, 0o600, 'only the control plane reads the object, not the engines’ users');
  backups.set(name, { id, version: shown.datastore_version, ...state });
  return shown;
}

/**
 * The restored instance holds exactly the rows of its backup (and of the rows written during it,
 * an unbroken run), its tenant's users log in as they did then, root and the source's guest
 * admin do not, and it takes writes.
 */
async function checkRestored(name: string, backup: string, sourceName: string): Promise<void> {
  const restored = instances.get(name)!;
  const source = instances.get(sourceName)!;
  const engine = restored.engine;
  const expected = backups.get(backup)!;
  assert.deepEqual(await itemRows(engine, restored.address), expected.rows, `${name} holds the rows of ${backup}`);
  const ticks = await tickNumbers(engine, restored.address);
  assert.deepEqual(ticks, Array.from({ length: ticks.length }, (_, i) => i + 1), `${name}: the rows written during the backup have no gap`);
  assert.ok(
    ticks.length >= expected.ticks.atLeast && ticks.length <= expected.ticks.atMost,
    `${name} holds ${ticks.length} rows written around the backup: from ${expected.ticks.atLeast} to ${expected.ticks.atMost} were committed while it ran`,
  );

  const users = (await api('GET', `/instances/${restored.id}/users`, 200)).users;
  assert.deepEqual(users.map((u: any) => u.name).sort(), ['app', 'bob']);
  const databases = (await api('GET', `/instances/${restored.id}/databases`, 200)).databases;
  assert.deepEqual(databases.map((d: any) => d.name), ['app']);
  assert.equal(await loginRefusal(engine, restored.address, 'app', appPassword), '', 'the tenant’s user logs in with its password');
  // as Trove does on a restore, root is disabled: the source's root password opens nothing
  assert.notEqual(await loginRefusal(engine, restored.address, 'root', rootPasswords.get(engine)!), '', 'the source’s root password opens nothing on the copy');
  const later = expected.bobPassword === bobPassword ? bobNewPassword : bobPassword;
  assert.equal(await loginRefusal(engine, restored.address, 'bob', expected.bobPassword), '', 'bob logs in with the password he had at the backup');
  assert.notEqual(await loginRefusal(engine, restored.address, 'bob', later), '', 'and not with the one he was given after it');

  const restoredDir = join(run.dataDir.path, 'instances', restored.id);
  assert.notEqual(restored.adminPassword, source.adminPassword, 'the restored instance has a guest admin password of its own');
  assert.equal(await engine.adminLogin(restoredDir, restored.adminPassword), '', 'the guest admin logs in with its own password');
  assert.notEqual(await engine.adminLogin(restoredDir, source.adminPassword), '', 'the source’s guest admin password opens nothing on the copy');

  // a copy that still thought it was recovering would refuse this
  const next = expected.rows.at(-1)![0] + 1;
  await insertRows(engine, restored.address, next, next, 'written to the copy');
}

describe('backups through the OpenStack clients and the coffer CLI', { concurrency: 1 }, () => {
  test('openstack database instance create: a PostgreSQL and a MariaDB instance, with rows and two users', { timeout: stepMs }, async () => {
    await makeMember();
    await Promise.all(
      engines.map(async (engine) => {
        const versions = (await api('GET', `/datastores/${engine.datastore}/versions`, 200)).versions;
        const created = await osJson([
          'database', 'instance', 'create', engine.source,
          '--flavor', 'm1.small', '--size', '1',
          '--datastore', engine.datastore, '--datastore-version', versions[0].name,
          '--databases', 'app', '--users', `app:${appPassword}`, `bob:${bobPassword}`,
        ]);
        await waitHealthy(engine.source, created.id, engine);
        const { address } = instances.get(engine.source)!;
        await query(engine, address, 'CREATE TABLE items (id integer PRIMARY KEY, note varchar(100) NOT NULL)');
        await query(engine, address, 'CREATE TABLE ticks (n integer PRIMARY KEY)');
        await insertRows(engine, address, 1, 50, 'before the full backup');
        const root = (await api('POST', `/instances/${created.id}/root`, 200)).user;
        assert.equal(root.name, 'root');
        assert.equal(await loginRefusal(engine, address, 'root', root.password), '');
        rootPasswords.set(engine, root.password);
      }),
    );
  });

  test('openstack database backup create / show on both engines; then more writes, and bob gets a new password', { timeout: stepMs }, async (t) => {
    await Promise.all(
      engines.map(async (engine) => {
        // the PostgreSQL one in a container of its own choosing
        const container = engine === postgresql ? ['--swift-container', 'e2e-pg'] : [];
        const shown = await backupWithOpenstack(t, engine, `${engine.datastore}-full`, container);
        assert.equal(shown.parent_id, null);
        const path = objectPath(shown);
        assert.equal(basename(dirname(path)), engine === postgresql ? 'e2e-pg' : 'database_backups');
        const { id, address } = instances.get(engine.source)!;
        await insertRows(engine, address, 51, 80, 'after the full backup');
        await query(engine, address, "UPDATE items SET note = 'changed after the full backup' WHERE id = 1");
        await query(engine, address, 'DELETE FROM items WHERE id = 2');
        await api('PUT', `/instances/${id}/users/bob`, 202, { user: { password: bobNewPassword } });
        assert.equal(await loginRefusal(engine, address, 'bob', bobNewPassword), '');
        if (engine === postgresql) {
          // a row, a moment, a row: restored to the moment, the copy has the first and not the second
          await insertRows(engine, address, 81, 81, 'before the moment');
          await sleep(1200);
          const moment = new Date();
          backups.set('pitr-moment', { id: '', version: '', ...(await snapshot(engine.source)) });
          await sleep(1200);
          await insertRows(engine, address, 82, 82, 'after the moment');
          pitr = { moment, lastCommit: new Date() };
        }
      }),
    );
  });

  test('openstack database backup list, backup list --instance', { timeout: stepMs }, async () => {
    const listed = await osJson(['database', 'backup', 'list']);
    assert.deepEqual(
      listed.map((b: any) => [b.Name, b.Status, b['Instance ID'], b['Parent ID']]).sort(),
      engines.map((e) => [`${e.datastore}-full`, 'COMPLETED', instances.get(e.source)!.id, null]).sort(),
    );
    const ofPostgresql = await osJson(['database', 'backup', 'list', '--instance', postgresql.source]);
    assert.deepEqual(ofPostgresql.map((b: any) => b.ID), [backups.get('postgresql-full')!.id]);
  });

  test('MariaDB: openstack database backup create --incremental; backup list instance shows the chain', { timeout: stepMs }, async (t) => {
    const shown = await backupWithOpenstack(t, mariadb, 'mariadb-incremental', ['--incremental']);
    assert.equal(shown.parent_id, backups.get('mariadb-full')!.id, 'the incremental follows the newest backup');
    const { address } = instances.get(mariadb.source)!;
    await insertRows(mariadb, address, 81, 90, 'after the incremental backup');
    await query(mariadb, address, 'DELETE FROM items WHERE id = 3');
    const chain = await osJson(['database', 'backup', 'list', 'instance', mariadb.source]);
    assert.deepEqual(
      chain.map((b: any) => [b.Name, b['Parent ID']]),
      [['mariadb-incremental', backups.get('mariadb-full')!.id], ['mariadb-full', null]],
      'newest first, each with its parent',
    );
  });

  test('coffer serve restarts: the backups are kept, with the key that opens them', { timeout: stepMs }, async () => {
    const keyFile = join(run.dataDir.path, 'backup-master.key');
    const key = await readFile(keyFile);
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
    assert.equal((await stat(join(run.dataDir.path, 'backups'))).mode & 0o777, 0o700);
    await run.restart();
    assert.deepEqual(await readFile(keyFile), key, 'the master key is read again, not made anew');
    session = await login(run.baseUrl, member.user, memberPassword, member.project);
    const listed = (await api('GET', '/backups', 200)).backups;
    assert.deepEqual(listed.map((b: any) => [b.name, b.status]).sort(), [
      ['mariadb-full', 'COMPLETED'],
      ['mariadb-incremental', 'COMPLETED'],
      ['postgresql-full', 'COMPLETED'],
    ]);
  });

  test('coffer instance create --from-instance --restore-time: the PostgreSQL source as it was at a moment between two commits', { timeout: stepMs }, async (t) => {
    const env = { COFFER_CONFIG_DIR: join(run.dataDir.path, 'cli') };
    const loggedIn = await runCli(['login', '--url', run.baseUrl, '--user', member.user, '--project', member.project, '--password-stdin'], {
      env,
      input: `${memberPassword}\n`,
    });
    assert.equal(loggedIn.code, 0, loggedIn.stderr);
    const source = instances.get(postgresql.source)!;
    const { moment, lastCommit } = pitr!;
    // the WAL segment holding the last commit is archived within archive_timeout (60 s), then shipped
    let started = Date.now();
    const { view } = await poll(`/instances/${source.id}`, 'instance', 'the archive to reach the last commit', (v) =>
      v.recoverable_window !== undefined && Date.parse(`${v.recoverable_window.latest}Z`) >= lastCommit.getTime(),
    );
    t.diagnostic(`the archived log reached the last commit ${seconds(Date.now() - lastCommit.getTime())} after it (waited ${seconds(Date.now() - started)})`);
    assert.ok(Date.parse(`${view.recoverable_window.earliest}Z`) <= moment.getTime(), JSON.stringify(view.recoverable_window));
    const shown = await runCli(['instance', 'show', postgresql.source], { env });
    assert.match(shown.stdout, /Restorable to +│ .+ … .+ \(--from-instance --restore-time\)/);

    started = Date.now();
    const restored = await runCli(
      ['instance', 'create', 'pitr-pg', '--from-instance', postgresql.source, '--restore-time', moment.toISOString(), '--flavor', 'm1.small', '--size', '1'],
      { env, timeoutMs: waitMs },
    );
    assert.equal(restored.code, 0, restored.stderr + restored.stdout);
    t.diagnostic(`pitr-pg: \`coffer instance create --from-instance --restore-time\` done in ${seconds(Date.now() - started)}`);
    const id = (await api('GET', '/instances', 200)).instances.find((i: any) => i.name === 'pitr-pg').id as string;
    await waitHealthy('pitr-pg', id, postgresql);
    await checkRestored('pitr-pg', 'pitr-moment', postgresql.source);

    const late = new Date(Date.now() + 3_600_000).toISOString();
    const refused = await runCli(['instance', 'create', 'pitr-late', '--from-instance', postgresql.source, '--restore-time', late, '--flavor', 'm1.small', '--size', '1'], { env });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /is outside what instance .+ can be restored to: its recoverable window is .+ to .+\.\n`coffer instance show .+` shows the times it can be restored to\.\n$/);
  });

  test('openstack database instance create --backup, three at once: each holds exactly the rows of its backup', { timeout: stepMs }, async (t) => {
    const restores = [
      { name: 'restored-pg', engine: postgresql, backup: 'postgresql-full', flavor: 'm1.small' },
      { name: 'restored-maria', engine: mariadb, backup: 'mariadb-full', flavor: 'm1.small' },
      // a smaller flavor than its source's: the engine's memory settings are the new instance's
      { name: 'restored-maria-incr', engine: mariadb, backup: 'mariadb-incremental', flavor: 'm1.tiny' },
    ];
    await Promise.all(
      restores.map(async ({ name, engine, backup, flavor }) => {
        const started = Date.now();
        const created = await osJson([
          'database', 'instance', 'create', name,
          '--flavor', flavor, '--size', '1',
          '--datastore', engine.datastore, '--datastore-version', backups.get(backup)!.version,
          // by ID, and one by name, which the client looks up
          '--backup', name === 'restored-maria-incr' ? backup : backups.get(backup)!.id,
        ]);
        const accepted = Date.now();
        assert.equal(created.status, 'BUILD');
        const ready = await waitHealthy(name, created.id, engine);
        t.diagnostic(
          `${name} from ${backup}: \`openstack database instance create --backup\` answered in ${seconds(accepted - started)}, ` +
            `ACTIVE/HEALTHY ${seconds(ready - started)} after it started`,
        );
      }),
    );
    for (const { name, engine, backup } of restores) await checkRestored(name, backup, engine.source);
    assert.equal(backups.get('mariadb-incremental')!.rows.length, 50 + 30 - 1, 'the incremental holds the writes after the full backup');
  });

  test('trove backup-create --incremental / backup-list / backup-show / backup-delete, on the restored MariaDB', { timeout: stepMs }, async (t) => {
    const instance = instances.get('restored-maria-incr')!;
    const started = Date.now();
    // the copy has no backup of its own yet: --incremental takes a full one (Trove's rule)
    const created = lastJson((await trove(['backup-create', 'restored-maria-incr', 'maria-trove', '--description', 'legacy client', '--incremental'])).stdout);
    assert.equal(created.name, 'maria-trove');
    const { at } = await poll(`/backups/${created.id}`, 'backup', 'maria-trove to be COMPLETED', (b) => b.status === 'COMPLETED');
    t.diagnostic(`maria-trove: COMPLETED ${seconds(at - started)} after \`trove backup-create\` started`);
    const shown = lastJson((await trove(['backup-show', 'maria-trove'])).stdout);
    assert.equal(shown.id, created.id);
    assert.equal(shown.status, 'COMPLETED');
    assert.equal(shown.description, 'legacy client');
    assert.equal(shown.instance_id, instance.id);
    assert.equal(shown.parent_id, null, 'a full backup');
    const path = objectPath(shown);
    assert.ok(existsSync(path));
    const listed = lastJson<any[]>((await trove(['backup-list'])).stdout);
    assert.deepEqual(listed.filter((b) => b.name === 'maria-trove').map((b) => [b.id, b.status, b.instance_id]), [[created.id, 'COMPLETED', instance.id]]);

    await trove(['backup-delete', 'maria-trove']);
    await eventually('maria-trove to be gone', () => request('GET', troveUrl(session, `/backups/${created.id}`), { token: session.token }), (r) => r.status === 404, waitMs);
    assert.ok(!lastJson<any[]>((await trove(['backup-list'])).stdout).some((b) => b.id === created.id), 'trove backup-list no longer shows it');
    assert.equal(existsSync(path), false, 'its object is gone from the storage');
  });

  test('coffer backup create of the restored PostgreSQL; it is deleted; coffer instance create --from-backup', { timeout: stepMs }, async (t) => {
    const env = { COFFER_CONFIG_DIR: join(run.dataDir.path, 'cli') };
    const loggedIn = await runCli(['login', '--url', run.baseUrl, '--user', member.user, '--project', member.project, '--password-stdin'], {
      env,
      input: `${memberPassword}\n`,
    });
    assert.equal(loggedIn.code, 0, loggedIn.stderr);
    // a copy's own backup: the second generation
    const state = await snapshot('restored-pg');

    let started = Date.now();
    const backedUp = await runCli(['backup', 'create', 'restored-pg', '--name', 'cli-backup'], { env, timeoutMs: waitMs });
    assert.equal(backedUp.code, 0, backedUp.stderr + backedUp.stdout);
    t.diagnostic(`cli-backup: \`coffer backup create\` done in ${seconds(Date.now() - started)}`);
    assert.match(backedUp.stderr, /Backing up restored-pg: (NEW|BUILDING)/, 'progress is shown while it runs');
    assert.match(backedUp.stderr, /Backup cli-backup \([0-9a-f-]{36}\) of restored-pg is COMPLETED after/);
    assert.match(backedUp.stdout, /Restore it into a new instance with `coffer instance create <new name> --from-backup cli-backup --flavor 2 --size 1`/);
    const id = (await api('GET', '/backups', 200)).backups.find((b: any) => b.name === 'cli-backup').id as string;
    backups.set('cli-backup', { id, version: '', ...state });

    // a backup outlives its instance, and restores without it
    const gone = await runCli(['instance', 'delete', 'restored-pg', '--wait'], { env, timeoutMs: waitMs });
    assert.equal(gone.code, 0, gone.stderr + gone.stdout);
    instances.get('restored-pg')!.deleted = true;

    started = Date.now();
    const restored = await runCli(['instance', 'create', 'restored-cli', '--from-backup', 'cli-backup', '--flavor', 'm1.small', '--size', '1'], {
      env,
      timeoutMs: waitMs,
    });
    assert.equal(restored.code, 0, restored.stderr + restored.stdout);
    t.diagnostic(`restored-cli from cli-backup: \`coffer instance create --from-backup\` done in ${seconds(Date.now() - started)}`);
    assert.match(restored.stderr, /Restoring cli-backup into restored-cli: BUILD/);
    const view = (await api('GET', '/instances', 200)).instances.find((i: any) => i.name === 'restored-cli');
    await waitHealthy('restored-cli', view.id, postgresql);
    await checkRestored('restored-cli', 'cli-backup', 'restored-pg');
  });

  test('openstack database backup delete: the backups, and a full backup’s incrementals, leave the list and the storage', { timeout: stepMs }, async () => {
    const before = await storedObjects();
    assert.equal(before.length, 4, before.join('\n'));
    // the backup of the deleted instance is still listed
    const listed = await osJson(['database', 'backup', 'list']);
    assert.deepEqual(listed.map((b: any) => b.Name).sort(), ['cli-backup', 'mariadb-full', 'mariadb-incremental', 'postgresql-full']);
    await os(['database', 'backup', 'delete', 'mariadb-full', 'postgresql-full', 'cli-backup']);
    await eventually('the backups to leave the list', () => api('GET', '/backups', 200), (body) => body.backups.length === 0, waitMs);
    assert.deepEqual(await osJson(['database', 'backup', 'list']), []);
    assert.deepEqual(await storedObjects(), [], 'no backup object is left in <data dir>/backups');
  });

  test('every instance is deleted, and no engine process is left', { timeout: stepMs }, async () => {
    await Promise.all(
      [...instances.entries()].filter(([, i]) => i.deleted !== true).map(async ([name, { id }]) => {
        await api('DELETE', `/instances/${id}`, 202);
        await eventually(`${name} to be gone`, () => request('GET', troveUrl(session, `/instances/${id}`), { token: session.token }), (r) => r.status === 404, waitMs);
        assert.deepEqual(processesMentioning(id), [], `no process of ${name} is left`);
      }),
    );
  });

  test('no password reached the log of coffer serve', async () => {
    const log = await readFile(join(run.dataDir.path, 'coffer.log'), 'utf8');
    for (const password of [adminPassword, memberPassword, appPassword, bobPassword, bobNewPassword]) {
      assert.ok(!log.includes(password), 'a password is in coffer.log');
    }
  });
});
