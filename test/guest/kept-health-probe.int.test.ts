// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { PrepareInput } from '../../src/bus/index.js';
import { silentLogger } from '../../src/common/index.js';
import { engineRegistry, type EngineDriver, type EngineName } from '../../src/guest/index.js';
import { withAdminClient as withPostgresAdmin } from '../../src/guest/engines/postgresql/admin.js';
import { withAdminConnection as withMysqlAdmin } from '../../src/guest/engines/mysql-family/connection.js';
import { withAdminClient as withRedisAdmin } from '../../src/guest/engines/redis/admin.js';
import { isProcessAlive } from '../../src/guest/engines/process-watch.js';
import { tempDataDir } from '../support/temp-dir.js';
import { until } from '../support/wait.js';
import { cleanUp, localRunner, randomAddress } from './engine-fixture.js';

// The guest's health check keeps one administrative session per instance across checks
// (kept-probe.ts) instead of logging in every 10 s. Each engine's own list of sessions shows the
// same one across checks; a session killed from outside, an engine restarted under it and an
// engine that hangs are each told apart from a healthy engine.

interface ProbeFixture {
  engine: EngineName;
  /** the guest's other administrative sessions, as the engine lists them, seen from a session of our own */
  guestSessions(dir: string, adminPassword: string): Promise<string[]>;
  /** ends the session `id` (from guestSessions) from inside the engine, as a tenant's superuser could */
  kill(dir: string, adminPassword: string, id: string): Promise<void>;
  /** the processes to freeze so that the engine answers nothing, neither the kept session nor a new one */
  frozen(dir: string, adminPassword: string, serverPid: number): Promise<number[]>;
}

const postgresEndpoint = (dir: string, password: string) => ({ socketDir: join(dir, 'data'), port: 5432, password });
const mysqlEndpoint = (dir: string, password: string) => ({ socketPath: join(dir, 'data', 'mysqld.sock'), password });
/** Redis's guest secret is the engine's own, written at prepare */
const redisEndpoint = async (dir: string) => ({
  socketPath: join(dir, 'data', 'redis.sock'),
  password: await readFile(join(dir, 'os_admin.password'), 'utf8'),
});

const postgresql: ProbeFixture = {
  engine: 'postgresql',
  guestSessions: (dir, password) =>
    withPostgresAdmin(postgresEndpoint(dir, password), 'postgres', async (client) => {
      const result = await client.query<{ session: string }>(
        "SELECT pid || '@' || backend_start AS session FROM pg_stat_activity WHERE usename = 'os_admin' AND backend_type = 'client backend' AND pid <> pg_backend_pid() ORDER BY 1",
      );
      return result.rows.map((row) => row.session);
    }),
  kill: (dir, password, id) =>
    withPostgresAdmin(postgresEndpoint(dir, password), 'postgres', async (client) => {
      await client.query('SELECT pg_terminate_backend($1)', [Number(id.split('@')[0])]);
    }),
  // a backend serves its session without the postmaster: both are frozen
  frozen: async (dir, password, serverPid) => [serverPid, ...(await postgresql.guestSessions(dir, password)).map((id) => Number(id.split('@')[0]))],
};

const mariadb: ProbeFixture = {
  engine: 'mariadb',
  guestSessions: (dir, password) =>
    withMysqlAdmin(mysqlEndpoint(dir, password), async (connection) => {
      const [rows] = await connection.query(
        "SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = 'os_admin' AND ID <> CONNECTION_ID() ORDER BY ID",
      );
      return (rows as { id: number }[]).map((row) => String(row.id));
    }),
  kill: (dir, password, id) =>
    withMysqlAdmin(mysqlEndpoint(dir, password), async (connection) => {
      await connection.query(`KILL ${Number(id)}`);
    }),
  frozen: async (_dir, _password, serverPid) => [serverPid],
};

const redis: ProbeFixture = {
  engine: 'redis',
  guestSessions: async (dir) =>
    withRedisAdmin(await redisEndpoint(dir), async (client) => {
      const own = String(await client.call('CLIENT', ['ID']));
      const list = String(await client.call('CLIENT', ['LIST']));
      return list
        .split('\n')
        .filter((line) => line.includes(' user=os_admin '))
        .map((line) => /(?:^|\s)id=(\d+)/.exec(line)![1]!)
        .filter((id) => id !== own)
        .sort();
    }),
  kill: async (dir, _password, id) =>
    withRedisAdmin(await redisEndpoint(dir), async (client) => {
      await client.call('CLIENT', ['KILL', 'ID', id]);
    }),
  frozen: async (_dir, _password, serverPid) => [serverPid],
};

function runProbeChecks(fixture: ProbeFixture): void {
  const factory = engineRegistry[fixture.engine];
  const adminPassword = 'Adm1n-kept-probe';
  const input: PrepareInput = { memoryMb: 256, databases: [], users: [], adminPassword, access: null, overrides: {} };

  describe(`${fixture.engine}: the health check's kept session`, () => {
    let root: string;
    let dir: string;
    let driver: EngineDriver;
    const sessions = () => fixture.guestSessions(dir, adminPassword);

    before(async () => {
      root = await tempDataDir('coffer-kp-');
      dir = join(root, 'i');
      await mkdir(dir);
      await chmod(dir, 0o711);
      const runner = await localRunner();
      const binary = (await factory.discover([], runner)).binaries[0];
      assert.ok(binary !== undefined, `no ${fixture.engine} binaries here`);
      driver = factory.create({
        placement: { instanceId: 'kept-probe', dir, address: randomAddress(), port: factory.standardPort },
        binary,
        runner,
        logger: silentLogger(),
        defaultClientCidrs: ['127.0.0.0/8'],
      });
      await driver.prepare(input);
    });

    after(async () => {
      await driver?.stop().catch(() => undefined);
      driver?.release();
      if (root !== undefined) await cleanUp(root);
    });

    test('several checks use one session, the same throughout', async () => {
      assert.equal(await driver.health(), 'healthy');
      const first = await sessions();
      assert.equal(first.length, 1, `one guest session: ${first.join(', ')}`);
      for (let check = 0; check < 4; check += 1) {
        assert.equal(await driver.health(), 'healthy');
        assert.deepEqual(await sessions(), first, `check ${check + 2} reuses the session`);
      }
    });

    test('a session killed from inside the engine is replaced within the same check', async () => {
      const [kept] = await sessions();
      await fixture.kill(dir, adminPassword, kept!);
      assert.equal(await driver.health(), 'healthy');
      const now = await sessions();
      assert.equal(now.length, 1);
      assert.notEqual(now[0], kept);
    });

    test('a query over a session killed from inside the engine is answered over a new one', async () => {
      assert.equal(await driver.health(), 'healthy');
      const [kept] = await sessions();
      await fixture.kill(dir, adminPassword, kept!);
      // a query is not preceded by a check: it fails on the dead session, which is replaced, and runs again
      assert.notEqual(await driver.metrics(), undefined);
      const now = await sessions();
      assert.equal(now.length, 1);
      assert.notEqual(now[0], kept);
    });

    test('a hung engine is not healthy while the kept session is open, and healthy once it answers again', async () => {
      const pids = await fixture.frozen(dir, adminPassword, (await driver.processId())!);
      for (const pid of pids) process.kill(pid, 'SIGSTOP');
      try {
        assert.equal(await driver.health(), 'running');
      } finally {
        for (const pid of pids) process.kill(pid, 'SIGCONT');
      }
      assert.equal(await driver.health(), 'healthy');
      // the broken one ends once its process runs again and reads that it was closed
      await until('one guest session, the broken one closed', async () => (await sessions()).length === 1);
    });

    test('an engine killed and started again is seen stopped, then healthy on a new session', async () => {
      const [before] = await sessions();
      const pid = (await driver.processId())!;
      process.kill(pid, 'SIGKILL');
      await until('the killed engine to be gone', async () => !(await isProcessAlive(pid)));
      assert.equal(await driver.health(), 'stopped');
      await driver.start();
      assert.equal(await driver.health(), 'healthy');
      const now = await sessions();
      assert.equal(now.length, 1);
      assert.notEqual(now[0], before);
    });

    test('release closes the session; the next check opens one again', async () => {
      driver.release();
      // the close is sent, not waited for: the engine ends the session when it reads it
      await until('the released session to end', async () => (await sessions()).length === 0);
      assert.equal(await driver.health(), 'healthy');
      assert.equal((await sessions()).length, 1);
    });
  });
}

for (const fixture of [postgresql, mariadb, redis]) runProbeChecks(fixture);
