// test-lane: parallel (engines as coffer-test-db, a user no agent walls, replicate between random loopback addresses; their own directories)
import assert from 'node:assert/strict';
import { chmod, mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RowDataPacket } from 'mysql2/promise';
import { LocalProcessRunner, type EngineIdentity } from '../../src/agent/index.js';
import { createInstanceUser, removeInstanceUser } from '../../src/agent/instance-user.js';
import { NetworkWall } from '../../src/agent/network-wall.js';
import type { PrepareInput } from '../../src/bus/index.js';
import { silentLogger } from '../../src/common/index.js';
import { engineRegistry, type EngineBinary, type EngineDriver, type WarmSource } from '../../src/guest/index.js';
import { tempDataDir } from '../support/temp-dir.js';
import { eventually } from '../support/wait.js';
import { localRunner, randomAddress } from './engine-fixture.js';
import { cleanUpMysqlFamily, connectTenant } from './mysql-family-fixture.js';

// A primary prepared from the warm pool can have replicas made as it was made (an install of
// their own, then its whole binary log replayed by GTID): what the pool's install made equals
// what the replica's makes, and the primary's binary log holds everything since its creation
// but the pool password's rotation. The replica's engine runs as an OS user of its own, walled
// as the agent walls it.

type Row = RowDataPacket & Record<string, unknown>;

describe('mariadb replica of a primary from the warm pool', () => {
  let root: string;
  let binary: EngineBinary;
  const drivers: EngineDriver[] = [];
  let replicaUser: EngineIdentity | undefined;
  const wall = new NetworkWall(new LocalProcessRunner(undefined));
  const input: PrepareInput = {
    memoryMb: 256,
    databases: [{ name: 'app' }],
    users: [{ name: 'tenant', password: 'tenant-Pass-1', databases: [{ name: 'app' }] }],
    adminPassword: 'primary-Admin-1',
    access: null,
    overrides: {},
  };

  async function instance(name: string, runner: LocalProcessRunner, warm?: WarmSource) {
    const dir = join(root, name);
    await mkdir(dir);
    await chmod(dir, 0o711);
    const address = randomAddress();
    const driver = engineRegistry.mariadb.create({
      placement: { instanceId: name, dir, address, port: 3306 },
      binary,
      runner,
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
      ...(warm === undefined ? {} : { warm }),
    });
    drivers.push(driver);
    return { driver, address, dir };
  }

  async function values(address: string): Promise<unknown[]> {
    const connection = await connectTenant({ address, port: 3306, user: 'tenant', password: 'tenant-Pass-1', database: 'app' });
    try {
      return (await connection.query<Row[]>('SELECT v FROM t ORDER BY v'))[0].map((row) => row.v);
    } finally {
      await connection.end();
    }
  }

  before(async () => {
    root = await tempDataDir('coffer-mywr-');
    await chmod(root, 0o711);
    const runner = await localRunner();
    binary = (await engineRegistry.mariadb.discover([], runner)).binaries[0]!;
    assert.ok(binary !== undefined, 'no MariaDB binaries');
    replicaUser = await createInstanceUser('mywarmreplica', silentLogger());
  });

  after(async () => {
    for (const driver of drivers) await driver.stop().catch(() => undefined);
    await cleanUpMysqlFamily(root);
    if (replicaUser !== undefined) {
      await wall.remove(replicaUser.uid).catch(() => undefined);
      await removeInstanceUser(replicaUser.name, silentLogger()).catch(() => undefined);
    }
  });

  it("replays all of the pooled primary's binary log on a replica of its own install", async () => {
    const runner = await localRunner();
    const entry = join(root, 'entry');
    await mkdir(entry);
    await chmod(entry, 0o711);
    await engineRegistry.mariadb.warm!.make(entry, binary, runner, new AbortController().signal);
    let taken = false;
    const source: WarmSource = {
      take: async (dest) => {
        if (taken) return false;
        taken = true;
        await rename(entry, dest);
        return true;
      },
    };
    const primary = await instance('primary', runner, source);
    await primary.driver.prepare(input);
    assert.equal(taken, true);
    const tenant = await connectTenant({ address: primary.address, port: 3306, user: 'tenant', password: 'tenant-Pass-1', database: 'app' });
    await tenant.query("CREATE TABLE t (v VARCHAR(20) PRIMARY KEY) AS SELECT 'before' AS v");
    await tenant.end();

    const replica = await instance('replica', new LocalProcessRunner(replicaUser!));
    await wall.raise(replicaUser!.uid, [
      { address: replica.address, port: 3306 },
      { address: primary.address, port: 3306 },
    ]);
    const grant = await primary.driver.replication!.addReplica({ id: 'replica', address: replica.address });
    const timings = await replica.driver.replication!.prepareReplica({ ...input, databases: [], users: [], adminPassword: 'replica-Admin-1' }, grant);
    assert.equal(timings.copiedFrom, 'source');
    const want = JSON.stringify(['before']);
    await eventually('the replica to show the primary\'s row', () => values(replica.address).catch(() => undefined), (rows) => JSON.stringify(rows) === want);
    const status = await replica.driver.replication!.status();
    assert.ok(status.role === 'replica' && status.streaming, JSON.stringify(status));
  });
});
