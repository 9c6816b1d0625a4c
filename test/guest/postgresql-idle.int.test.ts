// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import { silentLogger } from '../../src/common/logger.js';
import { engineRegistry, type EngineDriver, type ProcessRunner } from '../../src/guest/index.js';
import { withAdminClient, type AdminEndpoint } from '../../src/guest/engines/postgresql/admin.js';
import { isSegmentName } from '../../src/guest/engines/postgresql/wal-files.js';
import { archiveTimeoutSeconds } from '../../src/guest/engines/postgresql/wal-archive.js';
import { tempDataDir } from '../support/temp-dir.js';
import { eventually, until } from '../support/wait.js';
import { cleanUp, localRunner, randomAddress } from './engine-fixture.js';

// What an idle PostgreSQL instance as the guest makes it does, on its own and at the guest's
// asking (bench/results/postgresql-idle.md): autovacuum visits only the databases someone
// connected to, not template1 as initdb's own statistics would have it; the WAL archive's reach
// check asks over the health check's kept connection (no login) and reads the WAL with pg_waldump
// only when WAL was inserted since its last look, so a check on an idle server runs nothing; and
// the archive's timeout holds from a server's start on (its checkpointer woken once it is ready).

const adminPassword = 'admin-Pass-1';

async function instanceDir(path: string): Promise<string> {
  await mkdir(path);
  await chmod(path, 0o711);
  return path;
}

/** The runner, counting the programs run through it (each a process spawned as the engine's user). */
function counting(runner: ProcessRunner): { runner: ProcessRunner; programs: () => number } {
  let programs = 0;
  const proxy = new Proxy(runner, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver) as unknown;
      if ((name === 'run' || name === 'stream') && typeof value === 'function') {
        return (...args: unknown[]) => {
          programs += 1;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { runner: proxy, programs: () => programs };
}

describe('postgresql when idle', () => {
  let root: string;
  const drivers: EngineDriver[] = [];

  async function prepared(
    name: string,
    runner: ProcessRunner,
    overrides: Record<string, string | boolean>,
  ): Promise<{ driver: EngineDriver; dir: string; endpoint: AdminEndpoint; address: string }> {
    const dir = await instanceDir(join(root, name));
    const address = randomAddress();
    const discovery = await engineRegistry.postgresql.discover([], runner);
    assert.ok(discovery.binaries[0] !== undefined, JSON.stringify(discovery.reports));
    const driver = engineRegistry.postgresql.create({
      placement: { instanceId: name, dir, address, port: 5432 },
      binary: discovery.binaries[0],
      runner,
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
      archiveLog: true,
    });
    drivers.push(driver);
    await driver.prepare({
      memoryMb: 256,
      databases: [{ name: 'app' }],
      users: [{ name: 'tenant', password: 'tenant-Pass-1', databases: [{ name: 'app' }] }],
      adminPassword,
      access: null,
      overrides,
    });
    return { driver, dir, endpoint: { socketDir: join(dir, 'data'), port: 5432, password: adminPassword }, address };
  }

  before(async () => {
    root = await tempDataDir('coffer-pgidle-');
  });

  after(async () => {
    for (const driver of drivers) await driver.stop().catch(() => undefined);
    await cleanUp(root);
  });

  it("tells the guest whether others use the server (its checks of an idle one are spaced out)", async () => {
    const { driver, address } = await prepared('activity', await localRunner(), { autovacuum: false });
    const checkedIdle = async () => {
      assert.equal(await driver.health(), 'healthy');
      return driver.idle?.() === true;
    };
    // the kept session's own opening reaches the statistics a moment later: idle within a few checks
    await until('idle with nobody connected', checkedIdle, 30_000);
    const tenant = new Client({ host: address, port: 5432, user: 'tenant', password: 'tenant-Pass-1', database: 'app' });
    await tenant.connect();
    try {
      await tenant.query('SELECT 1');
      assert.equal(await checkedIdle(), false, 'a session opened and used since the last check');
      // a session left open and unused (a pool's) does not keep the server in use
      await until('idle with a quiet session open', checkedIdle, 30_000);
      await tenant.query('SELECT 1');
      assert.equal(await checkedIdle(), false, 'a statement since the last check');
    } finally {
      await tenant.end();
    }
    await until('idle once the session is gone', checkedIdle, 30_000);
  });

  it('runs autovacuum in the databases sessions use, and never in template1', async () => {
    // a worker per database with statistics every second between them
    const { endpoint } = await prepared('vacuum', await localRunner(), { autovacuum_naptime: '1s' });
    // what a session (an autovacuum worker's too) leaves in a database's statistics: its
    // transactions and the pages it read
    const touched = () =>
      withAdminClient(endpoint, 'postgres', async (client) => {
        const { rows } = await client.query<{ datname: string; touched: string }>(
          "SELECT datname, (xact_commit + xact_rollback + blks_hit + blks_read)::text AS touched FROM pg_stat_database WHERE datname IN ('app', 'template1')",
        );
        return Object.fromEntries(rows.map((row) => [row.datname, Number(row.touched)]));
      });
    const first = await touched();
    // initdb's own sessions counted there, left in the statistics it wrote, would send autovacuum there
    assert.equal(first.template1, 0);
    // no session of the guest's is in app now: what moves its figures is autovacuum's workers
    const once = await eventually('an autovacuum worker in app', touched, (now) => now.app! > first.app!, 30_000);
    await eventually('another autovacuum worker in app', touched, (now) => now.app! > once.app!, 30_000);
    // by now the launcher has had as many turns for template1, had it an entry
    assert.equal((await touched()).template1, 0, 'an autovacuum worker went into template1');
  });

  it('checks how far an idle archive reaches over the kept connection, reading the WAL only after new writes', async () => {
    const { runner, programs } = counting(await localRunner());
    // autovacuum off: nothing but the test writes WAL (the background writer's snapshots aside)
    const { driver, dir, endpoint } = await prepared('archive', runner, { autovacuum: false, log_connections: true });
    const archive = driver.backup!.walArchive!;
    const logins = async () => ((await readFile(join(dir, 'postgresql.log'), 'utf8')).match(/connection authorized/g) ?? []).length;
    // a write in a finished segment: what the shipper has shipped before
    await withAdminClient(endpoint, 'app', (client) => client.query('CREATE TABLE t (id int); INSERT INTO t VALUES (1)'));
    await withAdminClient(endpoint, 'postgres', (client) => client.query('SELECT pg_switch_wal()'));
    let last: string | undefined;
    await until(
      'the finished segment in the spool',
      async () => {
        for (const name of await archive.pending()) {
          if (isSegmentName(name)) last = name;
          await archive.remove(name);
        }
        return last !== undefined;
      },
      30_000,
    );
    // the health check's connection, kept from here on; and the test's own, opened once
    assert.equal(await driver.health(), 'healthy');
    const watcher = await withAdminClientKept(endpoint);
    try {
      const insertLsn = async () => (await watcher.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]!.lsn;
      const loginsBefore = await logins();
      // the first look reads the WAL after the segment; a second with nothing inserted since reads none
      let checked = false;
      for (let attempt = 0; attempt < 5 && !checked; attempt += 1) {
        const lsn = await insertLsn();
        const first = await archive.archivedThrough(last!);
        assert.ok(first !== undefined);
        const programsBefore = programs();
        const second = await archive.archivedThrough(last!);
        const ran = programs() - programsBefore;
        // the background writer may log a snapshot of running transactions in between: then again
        if ((await insertLsn()) !== lsn) continue;
        assert.equal(ran, 0, 'pg_waldump ran though no WAL was inserted since the last look');
        assert.ok(second !== undefined && second >= first, `${String(second)} before ${first.toISOString()}`);
        checked = true;
      }
      assert.ok(checked, 'the insert position never held still for two checks');
      assert.equal(await logins(), loginsBefore, 'a reach check logged in a session of its own');

      // a commit after the archive's end: the next check reads the WAL again and stops before it
      const programsBefore = programs();
      const began = new Date();
      await withAdminClient(endpoint, 'app', (client) => client.query('INSERT INTO t VALUES (2)'));
      const committed = new Date();
      const reach = await archive.archivedThrough(last!);
      assert.ok(programs() > programsBefore, 'pg_waldump did not read the new WAL');
      assert.ok(reach !== undefined && reach.getTime() >= began.getTime() - 1000 && reach < committed, `${String(reach)} not between ${began.toISOString()} and ${committed.toISOString()}`);
    } finally {
      await watcher.end();
    }
  });

  it('archives what is written right after a start within archive_timeout', async () => {
    const { driver, endpoint } = await prepared('restart', await localRunner(), { autovacuum: false });
    const archive = driver.backup!.walArchive!;
    await driver.stop();
    for (const name of await archive.pending()) await archive.remove(name);
    await driver.start();
    const written = Date.now();
    await withAdminClient(endpoint, 'app', (client) => client.query('CREATE TABLE t (id int); INSERT INTO t VALUES (1)'));
    // a checkpointer asleep for its first checkpoint_timeout would finish the segment after 5 minutes
    await until('the segment with the write in the spool', async () => (await archive.pending()).some(isSegmentName), (archiveTimeoutSeconds + 30) * 1000);
    assert.ok(Date.now() - written < (archiveTimeoutSeconds + 30) * 1000);
  });
});

/** An admin session of the test's own, kept open (a login counted once). */
async function withAdminClientKept(endpoint: AdminEndpoint): Promise<Client> {
  const client = new Client({ host: endpoint.socketDir, port: endpoint.port, user: 'os_admin', password: endpoint.password, database: 'postgres' });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}
