// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import { isCofferError, silentLogger } from '../../src/common/index.js';
import { engineRegistry, type EngineDriver } from '../../src/guest/index.js';
import { withAdminClient, type AdminEndpoint } from '../../src/guest/engines/postgresql/admin.js';
import { postgresqlParameters } from '../../src/guest/engines/postgresql/parameters.js';
import { tempDataDir } from '../support/temp-dir.js';
import { cleanUp, localRunner, randomAddress } from './engine-fixture.js';

// Configuration groups on a real PostgreSQL 15, beyond what the conformance suite checks for
// every engine: the published parameters against the server's own pg_settings, a group given
// at prepare, values that try to break out of their quotes, the guest's own sessions under a
// tenant's limits, and starts that fail because of a restart-only value.

const adminPassword = 'Adm1n-config-tests';
const tenant = { name: 'app', password: 'app-Secret-1', database: 'appdb' };

describe('postgresql configuration groups', () => {
  let root: string;
  let dir: string;
  let address: string;
  let driver: EngineDriver;
  let admin: AdminEndpoint;

  /** `options`: the tenant's own startup settings, e.g. `-c statement_timeout=0` */
  const asTenant = async <T>(work: (client: Client) => Promise<T>, options?: string): Promise<T> => {
    const client = new Client({ host: address, port: 5432, user: tenant.name, password: tenant.password, database: tenant.database, options });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  };
  const show = (name: string) =>
    asTenant(async (client) => (await client.query<{ value: string }>('SELECT current_setting($1) AS value', [name])).rows[0]!.value);
  const rejectsWithEngineError = (promise: Promise<unknown>, ...mentions: string[]) =>
    assert.rejects(promise, (err: unknown) => {
      assert.ok(isCofferError(err) && err.code === 'EngineError', String(err));
      for (const text of mentions) assert.ok(err.message.includes(text), `${err.message} should mention ${text}`);
      return true;
    });

  before(async () => {
    root = await tempDataDir('coffer-pgcfg-');
    dir = join(root, 'i');
    await mkdir(dir);
    await chmod(dir, 0o711);
    address = randomAddress();
    const runner = await localRunner();
    const discovery = await engineRegistry.postgresql.discover([], runner);
    const binary = discovery.binaries.find((b) => b.versionName === '15');
    assert.ok(binary, `no PostgreSQL 15: ${JSON.stringify(discovery.reports)}`);
    driver = engineRegistry.postgresql.create({
      placement: { instanceId: 'i', dir, address, port: 5432 },
      binary,
      runner,
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
    });
    admin = { socketDir: join(dir, 'data'), port: 5432, password: adminPassword };
    await driver.prepare({
      memoryMb: 256,
      databases: [{ name: tenant.database }],
      users: [{ name: tenant.name, password: tenant.password, databases: [{ name: tenant.database }] }],
      adminPassword,
      access: null,
      // names as a Trove client may spell them: compared case-insensitively
      overrides: {
        Work_Mem: '8MB',
        max_locks_per_transaction: 100,
        log_connections: true,
        random_page_cost: 1.5,
        statement_timeout: 60_000,
        timezone: 'Europe/Paris',
      },
    });
  });

  after(async () => {
    await driver?.stop().catch(() => undefined);
    await cleanUp(root);
  });

  it('publishes only settings PostgreSQL 15 has, restart-only exactly where pg_settings says postmaster', async () => {
    const rows = await withAdminClient(admin, 'postgres', async (client) =>
      (
        await client.query<{ name: string; context: string; vartype: string; min_val: string | null; max_val: string | null; enumvals: string[] | null }>(
          'SELECT lower(name) AS name, context, vartype, min_val, max_val, enumvals FROM pg_settings',
        )
      ).rows,
    );
    const settings = new Map(rows.map((row) => [row.name, row]));
    assert.ok(postgresqlParameters.length >= 50, 'a useful set');
    assert.equal(new Set(postgresqlParameters.map((p) => p.name)).size, postgresqlParameters.length, 'no name twice');
    for (const parameter of postgresqlParameters) {
      const setting = settings.get(parameter.name);
      assert.ok(setting, `${parameter.name} is not a PostgreSQL 15 setting`);
      assert.equal(parameter.restartRequired, setting.context === 'postmaster', `${parameter.name}: context ${setting.context}`);
      switch (parameter.type) {
        case 'boolean':
          // synchronous_commit is an enum whose on/off is what Trove's boolean sets
          assert.ok(setting.vartype === 'bool' || setting.enumvals?.includes('off'), `${parameter.name} is ${setting.vartype}`);
          break;
        case 'integer':
          assert.equal(setting.vartype, 'integer', parameter.name);
          break;
        case 'float':
          assert.equal(setting.vartype, 'real', parameter.name);
          break;
        case 'string':
          // an enum, or a number with its unit ('256MB', '5min') as Trove takes it
          break;
      }
      if (parameter.min !== undefined) assert.ok(parameter.min >= Number(setting.min_val), `${parameter.name} min below PostgreSQL's`);
      if (parameter.max !== undefined) assert.ok(parameter.max <= Number(setting.max_val), `${parameter.name} max above PostgreSQL's`);
    }
    const forbidden = /^(archive_|restore_command|ssl|listen_addresses$|port$|unix_socket_|.*_file$|.*_directory$|.*preload_libraries$|dynamic_library_path$|data_directory$|log_destination$|logging_collector$)/;
    for (const parameter of postgresqlParameters) assert.doesNotMatch(parameter.name, forbidden);
  });

  it('starts with the overrides given at prepare, everything else following the memory', async () => {
    assert.equal(await show('work_mem'), '8MB');
    assert.equal(await show('max_locks_per_transaction'), '100');
    assert.equal(await show('log_connections'), 'on');
    assert.equal(await show('random_page_cost'), '1.5');
    assert.equal(await show('statement_timeout'), '1min');
    assert.equal(await show('TimeZone'), 'Europe/Paris');
    assert.equal(await show('shared_buffers'), '64MB', 'a quarter of 256 MB');

    const effective = await driver.configuration!.effective();
    assert.equal(effective.work_mem, '8MB', 'under its published name');
    assert.equal(effective.Work_Mem, undefined);
    assert.equal(effective.max_locks_per_transaction, 100);
    assert.equal(effective.log_connections, true);
    assert.equal(effective.random_page_cost, 1.5);
    assert.equal(effective.timezone, 'Europe/Paris');
    assert.equal(effective.shared_buffers, '64MB');
    assert.equal(effective.max_connections, 25);
    assert.equal(effective.ssl, false);
    assert.equal(effective.hba_file, undefined, "the host's paths are not the tenant's configuration");

    const conf = await readFile(join(dir, 'postgresql.conf'), 'utf8');
    assert.equal(conf.match(/^work_mem = /gm)?.length, 1, 'the override replaces Coffer’s own line');
    assert.equal(conf.match(/^timezone = /gm)?.length, 1);
  });

  it('refuses a value that tries to leave its quotes, as one value PostgreSQL does not know', async () => {
    const hostile = "UTC' listen_addresses = '*";
    const before = await readFile(join(dir, 'postgresql.conf'), 'utf8');
    await rejectsWithEngineError(driver.configuration!.apply({ timezone: hostile }), 'timezone', hostile);
    assert.equal(await readFile(join(dir, 'postgresql.conf'), 'utf8'), before, 'the previous file is back');
    const listening = await withAdminClient(admin, 'postgres', async (client) => (await client.query('SHOW listen_addresses')).rows[0].listen_addresses);
    assert.equal(listening, address);
    assert.equal(await show('TimeZone'), 'Europe/Paris', 'the prepare overrides still run');
    assert.equal(await show('work_mem'), '8MB');
  });

  it("keeps the guest's own sessions out of the group's timeouts and statement log", async () => {
    assert.deepEqual(
      await driver.configuration!.apply({ statement_timeout: 1, lock_timeout: 1, log_statement: 'all', log_min_duration_statement: 0 }),
      { pendingRestart: ['max_locks_per_transaction'] },
      'dropping the prepare value of a restart-only parameter waits for the restart',
    );
    await driver.users!.create([{ name: 'logged', password: 'Secret-in-no-log-1', databases: [{ name: tenant.database }] }]);
    await driver.databases!.create([{ name: 'slow_enough' }]);
    const log = await readFile(join(dir, 'postgresql.log'), 'utf8');
    assert.doesNotMatch(log, /ROLE "logged"|PASSWORD/i, 'the guest’s statements are not logged');
    // the tenant's sessions do run under them
    await asTenant(async (client) => {
      await assert.rejects(client.query('SELECT pg_sleep(0.05)'), /statement timeout/);
    });
    await asTenant((client) => client.query("SELECT 'tenant statement'"), '-c statement_timeout=0');
    assert.match(await readFile(join(dir, 'postgresql.log'), 'utf8'), /statement: SELECT 'tenant statement'/, 'the tenant’s are');
  });

  it('falls back to the configuration it last started with when a restart-only value keeps it from starting', async () => {
    await driver.configuration!.apply({ work_mem: '4MB' });
    await driver.stop();
    await driver.start();
    // 4 TB of shared memory, which the kernel refuses to map (unless it overcommits blindly)
    const outcome = await driver.configuration!.apply({ work_mem: '4MB', shared_buffers: '4TB' });
    assert.deepEqual(outcome, { pendingRestart: ['shared_buffers'] });
    assert.equal(await show('shared_buffers'), '64MB', 'the old value runs until the restart');
    await driver.stop();
    await rejectsWithEngineError(driver.start(), 'shared_buffers');
    assert.equal(await driver.health(), 'healthy');
    assert.equal(await show('shared_buffers'), '64MB');
    assert.equal(await show('work_mem'), '4MB', 'the configuration it last started with, overrides included');
    // detaching the value makes the next start a plain one
    assert.deepEqual(await driver.configuration!.apply({ work_mem: '4MB' }), { pendingRestart: [] });
    await driver.stop();
    await driver.start();
    assert.equal(await show('shared_buffers'), '64MB');
  });

  it('writes a stopped engine’s values for its next start, which falls back when PostgreSQL refuses one', async () => {
    await driver.stop();
    assert.deepEqual(await driver.configuration!.apply({ work_mem: '16MB' }), { pendingRestart: [] });
    await driver.start();
    assert.equal(await show('work_mem'), '16MB');

    await driver.stop();
    await driver.configuration!.apply({ work_mem: '32MB', timezone: 'No/Such_Zone' });
    await rejectsWithEngineError(driver.start(), 'timezone', 'work_mem');
    assert.equal(await driver.health(), 'healthy');
    assert.equal(await show('work_mem'), '16MB');
    assert.equal(await show('TimeZone'), 'UTC');
  });

  it('keeps the overrides through an access update and a resize, which recomputes only the rest', async () => {
    await driver.configuration!.apply({ work_mem: '12MB', max_connections: 40 });
    await driver.stop();
    await driver.start();
    await driver.updateAccess({ isPublic: false, allowedCidrs: ['127.0.0.0/8'] });
    await driver.resize(512);
    assert.equal(await show('work_mem'), '12MB');
    assert.equal(await show('max_connections'), '40');
    assert.equal(await show('shared_buffers'), '128MB', 'a quarter of the new memory');
    const spec = JSON.parse(await readFile(join(dir, 'engine-spec.json'), 'utf8'));
    assert.deepEqual(spec, {
      memoryMb: 512,
      access: { isPublic: false, allowedCidrs: ['127.0.0.0/8'] },
      overrides: { work_mem: '12MB', max_connections: 40 },
    });
    assert.deepEqual(
      await driver.configuration!.apply({ work_mem: '12MB', max_connections: 40, jit: false }),
      { pendingRestart: [] },
      'a restart-only value the server already runs with waits for nothing',
    );
  });
});
