// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import assert from 'node:assert/strict';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/common/logger.js';
import { engineRegistry, type EngineDriver, type ProcessRunner } from '../../src/guest/index.js';
import { withAdminClient, type AdminEndpoint } from '../../src/guest/engines/postgresql/admin.js';
import { tempDataDir } from '../support/temp-dir.js';
import { eventually } from '../support/wait.js';
import { cleanUp, localRunner, randomAddress } from './engine-fixture.js';

// What an idle PostgreSQL instance as the guest makes it does (bench/results/postgresql-idle.md):
// autovacuum visits only the databases someone connected to, not template1 as initdb's own
// statistics would have it.

const adminPassword = 'admin-Pass-1';

async function instanceDir(path: string): Promise<string> {
  await mkdir(path);
  await chmod(path, 0o711);
  return path;
}

describe('postgresql when idle', () => {
  let root: string;
  const drivers: EngineDriver[] = [];

  async function prepared(name: string, runner: ProcessRunner, overrides: Record<string, string | boolean>): Promise<{ driver: EngineDriver; dir: string; endpoint: AdminEndpoint }> {
    const dir = await instanceDir(join(root, name));
    const discovery = await engineRegistry.postgresql.discover([], runner);
    assert.ok(discovery.binaries[0] !== undefined, JSON.stringify(discovery.reports));
    const driver = engineRegistry.postgresql.create({
      placement: { instanceId: name, dir, address: randomAddress(), port: 5432 },
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
    return { driver, dir, endpoint: { socketDir: join(dir, 'data'), port: 5432, password: adminPassword } };
  }

  before(async () => {
    root = await tempDataDir('coffer-pgidle-');
  });

  after(async () => {
    for (const driver of drivers) await driver.stop().catch(() => undefined);
    await cleanUp(root);
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
});

