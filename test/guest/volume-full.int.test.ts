// test-lane: parallel (PostgreSQL, MariaDB and Redis as coffer-test-db on random loopback addresses, each in its own directory)
import assert from 'node:assert/strict';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import type { Connection } from 'mysql2/promise';
import type { Redis } from 'ioredis';
import { engineRegistry, type EngineName } from '../../src/guest/index.js';
import { volumeNearlyFullMessage } from '../../src/guest/volume-guard.js';
import { killServerProcesses } from '../../src/guest/engines/redis/server-process.js';
import { connectRedis } from '../support/redis-client.js';
import { tempDataDir } from '../support/temp-dir.js';
import { until } from '../support/wait.js';
import { startBusGuest, type BusGuest } from './bus-guest.js';
import { cleanUp, localRunner, randomAddress } from './engine-fixture.js';
import { cleanUpMysqlFamily, connectTenant } from './mysql-family-fixture.js';

// A volume that fills (issue 13): the guest of a real engine whose volume is already over its
// size (the size is made smaller than what the prepared instance uses, rather than gigabytes
// written) puts the engine in read-only mode and reports BLOCKED with the fault's message; the
// tenant's writes are refused with the engine's own error while its reads work, a restart keeps
// it so, and a resize (the guest call the resize_volume flow makes) lets writes in again.

const user = 'app';
const password = 'App-pass-1x';

interface TenantSession {
  write(key: string): Promise<void>;
  read(): Promise<string[]>;
  close(): Promise<void>;
}

interface EngineCase {
  manager: EngineName;
  port: number;
  databases: { name: string }[];
  userDatabases: { name: string }[];
  connect(address: string): Promise<TenantSession>;
  /** the engine's own refusal of a write */
  refusal: RegExp;
  cleanUp(root: string, dir: string): Promise<void>;
}

function postgresqlSession(client: Client): TenantSession {
  return {
    write: async (key) => {
      await client.query('CREATE TABLE IF NOT EXISTS t (k text)');
      await client.query('INSERT INTO t VALUES ($1)', [key]);
    },
    read: async () => (await client.query<{ k: string }>('SELECT k FROM t ORDER BY k')).rows.map((row) => row.k),
    close: () => client.end(),
  };
}

function mariadbSession(connection: Connection): TenantSession {
  return {
    write: async (key) => {
      await connection.query('CREATE TABLE IF NOT EXISTS t (k varchar(64))');
      await connection.query('INSERT INTO t VALUES (?)', [key]);
    },
    read: async () => {
      const [rows] = await connection.query('SELECT k FROM t ORDER BY k');
      return (rows as { k: string }[]).map((row) => row.k);
    },
    close: () => connection.end(),
  };
}

function redisSession(client: Redis): TenantSession {
  return {
    write: async (key) => {
      await client.call('SADD', ['t', key]);
    },
    read: async () => ((await client.call('SMEMBERS', ['t'])) as string[]).sort(),
    close: async () => {
      client.disconnect();
    },
  };
}

const cases: EngineCase[] = [
  {
    manager: 'postgresql',
    port: 5432,
    databases: [{ name: 'app' }],
    userDatabases: [{ name: 'app' }],
    connect: async (address) => {
      const client = new Client({ host: address, port: 5432, user, password, database: 'app', connectionTimeoutMillis: 10_000 });
      client.on('error', () => undefined);
      await client.connect();
      return postgresqlSession(client);
    },
    refusal: /cannot execute (INSERT|CREATE TABLE) in a read-only transaction/,
    cleanUp: (root) => cleanUp(root),
  },
  {
    manager: 'mariadb',
    port: 3306,
    databases: [{ name: 'app' }],
    userDatabases: [{ name: 'app' }],
    connect: async (address) => mariadbSession(await connectTenant({ address, port: 3306, user, password, database: 'app' })),
    refusal: /running with the --read-only option/,
    cleanUp: (root) => cleanUpMysqlFamily(root),
  },
  {
    manager: 'redis',
    port: 6379,
    databases: [],
    userDatabases: [],
    connect: async (address) => redisSession(await connectRedis(address, 6379, [user, password])),
    refusal: /NOREPLICAS Not enough good replicas to write/,
    cleanUp: async (root, dir) => {
      await killServerProcesses(join(dir, 'data')).catch(() => undefined);
      await cleanUp(root);
    },
  },
];

const fullMessage = /^The volume is full \(\d+(\.\d+)? of \d+(\.\d+)? GB used\): writes are refused until it is resized \(coffer instance resize-volume\)\.$/;

for (const engine of cases) {
  describe(`a full volume on ${engine.manager}`, () => {
    const instanceId = `volume-full-${engine.manager}`;
    const address = randomAddress();
    let root: string;
    let dir: string;
    let bus: BusGuest | undefined;
    let session: TenantSession | undefined;

    const startGuest = async (volumeSizeGb: number) => {
      const runner = await localRunner();
      const binary = (await engineRegistry[engine.manager].discover([], runner)).binaries[0];
      assert.ok(binary !== undefined, `${engine.manager} binaries`);
      bus = await startBusGuest({
        instance: { instanceId, dir, address, port: engine.port, volumeSizeGb },
        engine: { manager: engine.manager, binary },
        runner,
        desiredState: 'running',
      });
      return bus;
    };

    before(async () => {
      root = await tempDataDir('coffer-vf-');
      dir = join(root, 'i');
      await mkdir(dir);
      await chmod(dir, 0o711);
      const first = await startGuest(1);
      await first.rpc.prepare({
        memoryMb: 256,
        databases: engine.databases,
        users: [{ name: user, password, databases: engine.userDatabases }],
        adminPassword: 'Adm1n-guest-test',
        access: null,
      });
      await until('prepare reports HEALTHY', () => first.beats.some((b) => b.status === 'HEALTHY' || b.status === 'FAILED'), 120_000);
      assert.ok(!first.beats.some((b) => b.status === 'FAILED'), JSON.stringify(first.beats));
      session = await engine.connect(address);
      await session.write('before');
    });

    after(async () => {
      await session?.close().catch(() => undefined);
      await bus?.guest.destroy().catch(() => undefined);
      await bus?.closeBus();
      if (root !== undefined) await engine.cleanUp(root, dir);
    });

    const restartGuest = async (volumeSizeGb: number) => {
      await bus!.guest.close();
      await bus!.closeBus();
      return startGuest(volumeSizeGb);
    };

    it('warns from 90% and still takes writes', async () => {
      const { usedBytes } = await bus!.rpc.getFilesystemStats({});
      // the guest of a restarted host takes the instance over with a volume its data fills to 95%
      const guest = await restartGuest(usedBytes / 0.95 / 1024 ** 3);
      await until('the guest reports', () => guest.beats.length > 0, 60_000);
      assert.deepEqual([guest.beats[0]?.status, guest.beats[0]?.message], ['HEALTHY', volumeNearlyFullMessage]);
      await session!.write('nearly full');
      assert.deepEqual(await session!.read(), ['before', 'nearly full']);
    });

    it('refuses writes with the engine’s error, serves reads, and takes writes again once resized', async () => {
      const { usedBytes } = await bus!.rpc.getFilesystemStats({});
      // the same with a volume smaller than its data
      const guest = await restartGuest((usedBytes * 0.9) / 1024 ** 3);
      await until('the guest reports BLOCKED', () => guest.beats.some((b) => b.status === 'BLOCKED'), 60_000);
      const blocked = guest.beats.find((b) => b.status === 'BLOCKED');
      assert.match(blocked?.message ?? '', fullMessage);

      await assert.rejects(session!.write('while full'), engine.refusal);
      assert.deepEqual(await session!.read(), ['before', 'nearly full']);

      // a restart forgets a mode set on the running engine: the guest sets it again
      await guest.rpc.restart({});
      assert.equal(guest.beats.at(-1)?.status, 'BLOCKED');
      await session!.close();
      session = await engine.connect(address);
      await assert.rejects(session.write('after a restart'), engine.refusal);
      assert.deepEqual(await session.read(), ['before', 'nearly full']);

      const resized = await guest.rpc.resizeVolume({ sizeGb: 1 });
      assert.equal(resized.totalBytes, 1024 ** 3);
      assert.equal(guest.beats.at(-1)?.status, 'HEALTHY');
      await session.write('after the resize');
      assert.deepEqual(await session.read(), ['after the resize', 'before', 'nearly full']);
    });
  });
}
