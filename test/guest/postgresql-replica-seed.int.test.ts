// test-lane: alone (each node runs as an OS user of its own, walled to the group's endpoints: nftables elements by uid, and uids are reused by the next useradd anywhere)
import assert from 'node:assert/strict';
import { access, chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import { LocalProcessRunner, type EngineIdentity } from '../../src/agent/index.js';
import { createInstanceUser, removeInstanceUser } from '../../src/agent/instance-user.js';
import { NetworkWall } from '../../src/agent/network-wall.js';
import { silentLogger } from '../../src/common/index.js';
import { LocalDirectoryStorage, MasterKey, newProjectKey, wrapKey } from '../../src/backup/index.js';
import type { PrepareInput, RestoreLinkSpec } from '../../src/bus/index.js';
import { engineRegistry, type EngineBinary } from '../../src/guest/index.js';
import { tempDataDir } from '../support/temp-dir.js';
import { eventually, until } from '../support/wait.js';
import { fullBackup, startBusGuest, type BusGuest } from './bus-guest.js';
import { cleanUp, localRunner, randomAddress } from './engine-fixture.js';

// A PostgreSQL replica started from its primary's latest backup instead of a copy of the
// primary, through real guests: the base backup is unpacked, the archived WAL since it replayed,
// and the replica then streams from its slot like any other. When the backup cannot be read, or
// the WAL between it and the slot is gone, the replica copies its primary instead, and says so.

const projectId = 'project-seed';
const container = 'backups';
const prefix = 'source/wal';

type Node = BusGuest & { address: string; dir: string };

describe('postgresql replicas from a backup', () => {
  let root: string;
  /** each node's engine runs as an OS user of its own, walled as an agent walls it: the group's endpoints, nothing else */
  const names = ['source', 'seeded', 'unreadable', 'stalled'];
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
  const archive = { container, prefix, wrappedKey };

  const replicaInput = (replicaOf: PrepareInput['replicaOf'], restore: PrepareInput['restore']): PrepareInput => ({
    memoryMb: 256,
    databases: [],
    users: [],
    adminPassword: 'unused-Admin-1',
    access: null,
    overrides: {},
    replicaOf,
    ...(restore === undefined ? {} : { restore }),
  });

  async function guest(name: string): Promise<Node> {
    const dir = join(root, name);
    await mkdir(dir);
    await chmod(dir, 0o711);
    const address = addresses.get(name)!;
    const user = await createInstanceUser(`seed-${name}`, silentLogger());
    users.push(user);
    await wall.raise(user.uid, [...addresses.values()].map((each) => ({ address: each, port: 5432 })));
    const bus = await startBusGuest({
      instance: { instanceId: name, dir, address, port: 5432, volumeSizeGb: 1 },
      engine: { manager: 'postgresql', binary },
      runner: new LocalProcessRunner(user),
      desiredState: 'running',
      backups: { storage, masterKey },
      walShipIntervalMs: 200,
      captureLog: true,
    });
    guests.push(bus);
    return Object.assign(bus, { address, dir });
  }

  async function prepared(bus: BusGuest, input: PrepareInput): Promise<void> {
    await bus.rpc.prepare(input);
    const reported = (status: string) => bus.beats.some((beat) => beat.status === status);
    await until('prepare reports HEALTHY', () => reported('HEALTHY') || reported('FAILED'), 180_000);
    assert.ok(!reported('FAILED'), JSON.stringify(bus.beats.at(-1)));
  }

  async function sql<T extends Record<string, unknown>>(host: string, text: string): Promise<T[]> {
    const client = new Client({ host, port: 5432, user: 'tenant', password: 'tenant-Pass-1', database: 'app', connectionTimeoutMillis: 5000 });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return (await client.query<T>(text)).rows;
    } finally {
      await client.end();
    }
  }
  async function sourceAdmin<T extends Record<string, unknown>>(text: string, values: unknown[] = []): Promise<T[]> {
    const client = new Client({ host: join(source.dir, 'data'), port: 5432, user: 'os_admin', password: 'source-Admin-1', database: 'postgres' });
    await client.connect();
    try {
      return (await client.query<T>(text, values)).rows;
    } finally {
      await client.end();
    }
  }

  const ids = async (host: string) => (await sql<{ id: number }>(host, 'SELECT id FROM events ORDER BY id')).map((row) => Number(row.id));
  /** until the replica shows every row the source has */
  async function caughtUp(replica: Node): Promise<void> {
    const expected = JSON.stringify(await ids(source.address));
    await eventually(`${replica.address} to show ${expected}`, () => ids(replica.address).catch(() => undefined), (seen) => JSON.stringify(seen) === expected, 30_000);
  }
  const copiedFrom = (bus: BusGuest) => bus.logs.find((record) => record.copiedFrom !== undefined)?.copiedFrom;

  async function insertRows(count: number): Promise<void> {
    for (let i = 0; i < count; i += 1) await sql(source.address, 'INSERT INTO events DEFAULT VALUES');
  }

  async function replicaOf(name: string, restore: PrepareInput['restore']): Promise<Node> {
    const replica = await guest(name);
    const grant = await source.rpc.addReplica({ replicaId: name, address: replica.address });
    await prepared(replica, replicaInput(grant, restore));
    return replica;
  }

  before(async () => {
    root = await tempDataDir('coffer-pgseed-');
    const discovery = await engineRegistry.postgresql.discover([], await localRunner());
    assert.ok(discovery.binaries[0] !== undefined, JSON.stringify(discovery.reports));
    binary = discovery.binaries[0];
    await mkdir(join(root, 'storage'));
    storage = new LocalDirectoryStorage(join(root, 'storage'));
    await storage.ensureContainer(container);

    source = await guest('source');
    await prepared(source, {
      memoryMb: 256,
      databases: [{ name: 'app' }],
      users: [{ name: 'tenant', password: 'tenant-Pass-1', databases: [{ name: 'app' }] }],
      adminPassword: 'source-Admin-1',
      access: null,
      overrides: {},
    });
    await sql(source.address, 'CREATE TABLE events (id serial PRIMARY KEY, payload text DEFAULT repeat(md5(random()::text), 20))');
    await insertRows(3);
    base = await fullBackup(source, storage, { backupId: 'b1', container, objectName: 'b1.postgresql.zst.enc', wrappedKey, projectId, walPrefix: prefix });
  });

  after(async () => {
    for (const bus of guests) {
      await bus.guest.destroy().catch(() => undefined);
      await bus.closeBus();
    }
    if (root !== undefined) await cleanUp(root);
    for (const user of users) {
      await wall.remove(user.uid).catch(() => undefined);
      await removeInstanceUser(user.name, silentLogger()).catch(() => undefined);
    }
  });

  it('starts a replica from the backup and the WAL archived since, then streams what the primary writes next', async () => {
    // rows the backup does not hold, in segments the archive does, and one in the segment still being written
    await insertRows(3);
    await sourceAdmin('SELECT pg_switch_wal()');
    const archived = source.walArchived.length;
    await until('a segment after the backup is archived', () => source.walArchived.length > archived, 60_000);
    await insertRows(1);
    const replica = await replicaOf('seeded', { projectId, chain: [base], pointInTime: archive });
    assert.equal(copiedFrom(replica), 'backup', JSON.stringify(replica.logs.filter((r) => (r.level as number) >= 40)));
    await caughtUp(replica);
    assert.ok(replica.progress.some((p) => /^restoring: .* read$/.test(p.step)), 'the backup was read');
    await insertRows(2);
    await caughtUp(replica);
    await assert.rejects(sql(replica.address, 'INSERT INTO events DEFAULT VALUES'), (err: { code?: string }) => err.code === '25006');
    // the catch-up's files and restore_command are gone once it streams
    await assert.rejects(access(join(replica.dir, 'data', 'coffer_restore_wal')));
    await assert.rejects(access(join(replica.dir, 'data', 'postgresql.auto.conf')));
    const status = await replica.rpc.getReplicationStatus({});
    assert.equal(status.role, 'replica');
    assert.ok(status.role === 'replica' && status.streaming);
  });

  it('copies the primary instead when the backup cannot be read', async () => {
    const broken = { ...base, sha256: '0'.repeat(64) };
    const replica = await replicaOf('unreadable', { projectId, chain: [broken], pointInTime: archive });
    assert.equal(copiedFrom(replica), 'source');
    assert.ok(replica.logs.some((r) => r.level === 40 && /copying the primary instead/.test(String(r.msg))));
    await caughtUp(replica);
  });

  it('copies the primary instead when the WAL between the backup and the replica is gone', async () => {
    // without the archive, and with the segment the backup ends in gone from the primary
    // (switched, archived and recycled by checkpoints: how long that takes varies)
    const [{ stop }] = (await sourceAdmin<{ stop: string }>('SELECT pg_walfile_name($1) AS stop', [base.facts['stop-lsn']])) as [{ stop: string }];
    await eventually(
      `segment ${stop} to leave the primary's pg_wal`,
      async () => {
        await insertRows(1);
        await sourceAdmin('SELECT pg_switch_wal()');
        await sourceAdmin('CHECKPOINT');
        const [{ oldest }] = (await sourceAdmin<{ oldest: string | null }>("SELECT min(name) AS oldest FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'")) as [{ oldest: string | null }];
        return oldest ?? '';
      },
      (oldest) => oldest > stop,
      60_000,
    );
    const replica = await replicaOf('stalled', { projectId, chain: [base] });
    assert.equal(copiedFrom(replica), 'source');
    assert.ok(replica.logs.some((r) => r.level === 40 && /did not catch up/.test(JSON.stringify(r))), JSON.stringify(replica.logs.filter((r) => (r.level as number) >= 40)));
    await caughtUp(replica);
  });
});
