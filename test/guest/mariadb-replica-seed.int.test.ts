// test-lane: alone (each node runs as an OS user of its own, walled to the group's endpoints: nftables elements by uid, and uids are reused by the next useradd anywhere)
import assert from 'node:assert/strict';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RowDataPacket } from 'mysql2/promise';
import { LocalProcessRunner, type EngineIdentity } from '../../src/agent/index.js';
import { createInstanceUser, removeInstanceUser } from '../../src/agent/instance-user.js';
import { NetworkWall } from '../../src/agent/network-wall.js';
import { silentLogger } from '../../src/common/index.js';
import { LocalDirectoryStorage, MasterKey, newProjectKey, wrapKey } from '../../src/backup/index.js';
import type { PrepareInput, RestoreLinkSpec } from '../../src/bus/index.js';
import { engineRegistry, type EngineBinary } from '../../src/guest/index.js';
import { withAdminConnection } from '../../src/guest/engines/mysql-family/connection.js';
import { tempDataDir } from '../support/temp-dir.js';
import { eventually, until } from '../support/wait.js';
import { fullBackup, startBusGuest, type BusGuest } from './bus-guest.js';
import { localRunner, randomAddress } from './engine-fixture.js';
import { cleanUpMysqlFamily, connectTenant } from './mysql-family-fixture.js';

// A MariaDB replica started from its primary's latest backup, through real guests: the chain is
// restored, replication starts at the GTID the backup ends at, and the replica holds the
// primary's transactions alone (no GTID of its own: a failover would find it diverged), the
// archived binary log since the backup replayed first (the primary no longer holds it). It works
// for a primary whose binary log no longer starts at its creation, which cannot get a replica
// any other way; a seed that cannot be read falls back to replaying the primary's log from
// nothing, which such a primary refuses with a message saying what to do.

const projectId = 'project-seed';
const container = 'backups';
const prefix = 'source/binlog';
const adminPassword = 'source-Admin-1';

type Row = RowDataPacket & Record<string, unknown>;
type Node = BusGuest & { address: string; dir: string };

describe('mariadb replicas from a backup', () => {
  let root: string;
  /** each node's engine runs as an OS user of its own, walled as an agent walls it: the group's endpoints, nothing else */
  const names = ['source', 'seeded', 'unreadable'];
  const addresses = new Map(names.map((name) => [name, randomAddress()]));
  const users: EngineIdentity[] = [];
  const wall = new NetworkWall(new LocalProcessRunner(undefined));
  let binary: EngineBinary;
  let storage: LocalDirectoryStorage;
  const masterKey = MasterKey.generate();
  const wrappedKey = wrapKey(masterKey, newProjectKey(), projectId);
  const guests: BusGuest[] = [];
  let source: Node;
  let base: RestoreLinkSpec;

  async function guest(name: string): Promise<Node> {
    const dir = join(root, name);
    await mkdir(dir);
    await chmod(dir, 0o711);
    const address = addresses.get(name)!;
    const user = await createInstanceUser(`seed-${name}`, silentLogger());
    users.push(user);
    await wall.raise(user.uid, [...addresses.values()].map((each) => ({ address: each, port: 3306 })));
    const bus = await startBusGuest({
      instance: { instanceId: name, dir, address, port: 3306, volumeSizeGb: 1 },
      engine: { manager: 'mariadb', binary },
      runner: new LocalProcessRunner(user),
      desiredState: 'running',
      backups: { storage, masterKey },
      walShipIntervalMs: 200,
      captureLog: true,
    });
    guests.push(bus);
    return Object.assign(bus, { address, dir });
  }

  /** until the guest reports HEALTHY or FAILED: which one */
  async function prepare(bus: BusGuest, input: PrepareInput): Promise<{ status: string; message?: string }> {
    await bus.rpc.prepare(input);
    await until('prepare ends', () => bus.beats.some((beat) => beat.status === 'HEALTHY' || beat.status === 'FAILED'), 180_000);
    return bus.beats.find((beat) => beat.status === 'HEALTHY' || beat.status === 'FAILED')!;
  }

  async function tenant(address: string, text: string): Promise<Row[]> {
    const connection = await connectTenant({ address, port: 3306, user: 'tenant', password: 'tenant-Pass-1', database: 'app' });
    try {
      const [result] = await connection.query<Row[]>(text);
      return result;
    } finally {
      await connection.end();
    }
  }
  /** as the guest, over the instance's socket (a replica's guest logs in with its primary's password) */
  const admin = (at: Node, text: string) =>
    withAdminConnection({ socketPath: join(at.dir, 'data', 'mysqld.sock'), password: adminPassword }, async (c) => (await c.query<Row[]>(text))[0]);

  const ids = async (address: string) => (await tenant(address, 'SELECT id FROM events ORDER BY id')).map((row) => Number(row.id));
  const copiedFrom = (bus: BusGuest) => bus.logs.find((record) => record.copiedFrom !== undefined)?.copiedFrom;
  async function insertRows(count: number): Promise<void> {
    for (let i = 0; i < count; i += 1) await tenant(source.address, 'INSERT INTO events () VALUES ()');
  }
  async function caughtUp(replica: Node): Promise<void> {
    const expected = JSON.stringify(await ids(source.address));
    await eventually(`${replica.address} to show ${expected}`, () => ids(replica.address).catch(() => undefined), (seen) => JSON.stringify(seen) === expected, 30_000);
  }
  const replicaInput = (replicaOf: PrepareInput['replicaOf'], restore?: PrepareInput['restore']): PrepareInput => ({
    memoryMb: 256,
    databases: [],
    users: [],
    adminPassword: 'unused-Admin-1',
    access: null,
    overrides: {},
    replicaOf,
    ...(restore === undefined ? {} : { restore }),
  });

  before(async () => {
    root = await tempDataDir('coffer-myseed-');
    const discovery = await engineRegistry.mariadb.discover([], await localRunner());
    assert.ok(discovery.binaries[0] !== undefined, JSON.stringify(discovery.reports));
    binary = discovery.binaries[0];
    await mkdir(join(root, 'storage'));
    storage = new LocalDirectoryStorage(join(root, 'storage'));
    await storage.ensureContainer(container);

    source = await guest('source');
    const made = await prepare(source, {
      memoryMb: 256,
      databases: [{ name: 'app' }],
      users: [{ name: 'tenant', password: 'tenant-Pass-1', host: '%', databases: [{ name: 'app' }] }],
      adminPassword,
      access: null,
      overrides: {},
    });
    assert.equal(made.status, 'HEALTHY', made.message);
    await tenant(source.address, 'CREATE TABLE events (id INT AUTO_INCREMENT PRIMARY KEY, payload TEXT)');
    await insertRows(3);
    // the binary log no longer starts at the instance's creation (a file still needed for crash recovery is kept a moment)
    await admin(source, 'FLUSH BINARY LOGS');
    const [current] = await admin(source, 'SHOW MASTER STATUS');
    await eventually(
      'the first binary log to be purged',
      async () => {
        await admin(source, `PURGE BINARY LOGS TO '${String(current!.File)}'`);
        return (await admin(source, 'SHOW BINARY LOGS'))[0]!.Log_name;
      },
      (first) => first === current!.File,
      30_000,
    );
    await insertRows(2);
    base = await fullBackup(source, storage, { backupId: 'b1', container, objectName: 'b1.mariadb.zst.enc', wrappedKey, projectId, walPrefix: prefix });
    assert.ok(base.facts.gtid !== undefined, 'the backup records the GTID it ends at');
    // rows the backup does not hold, archived: the archive purges what it shipped from the
    // primary, so a replica of the backup finds them in the archive alone
    await insertRows(2);
    await admin(source, 'FLUSH BINARY LOGS');
    await until('the file after the backup is shipped and purged', async () => (await admin(source, 'SHOW BINARY LOGS'))[0]!.Log_name !== base.facts['binlog-file'], 60_000);
    await insertRows(1);
  });

  after(async () => {
    for (const bus of guests) {
      await bus.guest.destroy().catch(() => undefined);
      await bus.closeBus();
    }
    if (root !== undefined) await cleanUpMysqlFamily(root);
    for (const user of users) {
      await wall.remove(user.uid).catch(() => undefined);
      await removeInstanceUser(user.name, silentLogger()).catch(() => undefined);
    }
  });

  it('refuses a replica made from nothing of a primary whose binary log no longer starts at its creation', async () => {
    await assert.rejects(source.rpc.addReplica({ replicaId: 'from-nothing', address: randomAddress() }), /no longer starts at its creation|does not go back/);
  });

  it("starts a replica from the backup at the backup's GTID, with no transaction of its own, then replicates what the primary writes next", async () => {
    const replica = await guest('seeded');
    const grant = await source.rpc.addReplica({ replicaId: 'seeded', address: replica.address, fromBackup: true });
    const made = await prepare(replica, replicaInput(grant, { projectId, chain: [base], pointInTime: { container, prefix, wrappedKey } }));
    assert.equal(made.status, 'HEALTHY', made.message);
    assert.equal(copiedFrom(replica), 'backup', JSON.stringify(replica.logs.filter((r) => (r.level as number) >= 40)));
    assert.ok(!replica.logs.some((r) => /no archived binary log follows/.test(String(r.msg))), 'the archive was replayed');
    await caughtUp(replica);
    await insertRows(2);
    await caughtUp(replica);
    await assert.rejects(tenant(replica.address, 'INSERT INTO events () VALUES ()'), /read-only|READ ONLY|--read-only/i);
    // every GTID the replica holds is its primary's
    const [primary] = await admin(source, 'SELECT @@gtid_binlog_pos AS pos, @@server_id AS id');
    await eventually(
      'the replica to hold exactly the primary’s transactions',
      async () => (await admin(replica, 'SELECT @@gtid_current_pos AS pos'))[0]!.pos,
      (pos) => pos === primary!.pos,
      30_000,
    );
    const [own] = await admin(replica, 'SELECT @@gtid_binlog_pos AS pos, @@server_id AS id');
    assert.notEqual(own!.id, primary!.id);
    assert.ok(!String(own!.pos).split(',').some((gtid) => gtid.split('-')[1] === String(own!.id)), `no GTID of the replica's own: ${String(own!.pos)}`);
    const status = await replica.rpc.getReplicationStatus({});
    assert.ok(status.role === 'replica' && status.streaming);
  });

  it('falls back to replaying from nothing when the backup cannot be read, which such a primary refuses with what to do', async () => {
    const replica = await guest('unreadable');
    const grant = await source.rpc.addReplica({ replicaId: 'unreadable', address: replica.address, fromBackup: true });
    const made = await prepare(replica, replicaInput(grant, { projectId, chain: [{ ...base, sha256: '0'.repeat(64) }], pointInTime: { container, prefix, wrappedKey } }));
    assert.ok(replica.logs.some((r) => r.level === 40 && /making it as its primary was made instead/.test(String(r.msg))));
    assert.equal(made.status, 'FAILED');
    assert.match(made.message ?? '', /1236[\s\S]*Take a backup of the primary/);
  });
});
