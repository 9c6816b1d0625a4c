// test-lane: parallel (its own temporary directories, an in-process bus)
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { decodeBackup, LocalDirectoryStorage, MasterKey, newProjectKey, unwrapKey, wrapKey } from '../../src/backup/index.js';
import { BusKey, conductorContract, conductorTopic, connectTransport, createRpcClient, serveRpc, type Subscription, type Transport } from '../../src/bus/index.js';
import { silentLogger } from '../../src/common/index.js';
import type { RoundOfChecks } from '../../src/guest/check-round.js';
import type { WalArchive } from '../../src/guest/engines/engine.js';
import { readWalTarget, WalShipper } from '../../src/guest/wal-shipper.js';
import { makeDataDir } from '../support/temp-dir.js';
import { until } from '../support/wait.js';
import { handDrivenRound } from '../support/hand-round.js';

// The guest's WAL shipper against a spool of plain files (the engine's side, which the
// PostgreSQL point-in-time test runs for real) and a real local directory storage: what it does
// with the log before any backup asked for it, what it stores and how, what it does while the
// storage fails, and when it reports how far the archive reaches.

/** A spool of files in a directory, as an engine's archiving leaves them; segments are the names without a dot. */
class DirectoryArchive implements WalArchive {
  reach: Date | undefined = new Date('2026-12-03T10:00:00Z');
  reachChecks = 0;

  constructor(readonly dir: string) {}

  async pending(): Promise<string[]> {
    return (await readdir(this.dir)).sort();
  }

  async inspect(name: string): Promise<Record<string, string>> {
    return { 'last-commit': `${name}-commit` };
  }

  read(name: string): Readable {
    const file = join(this.dir, name);
    return Readable.from(
      (async function* () {
        yield await readFile(file);
      })(),
    );
  }

  async remove(name: string): Promise<void> {
    await rm(join(this.dir, name));
  }

  advances(name: string): boolean {
    return !name.includes('.');
  }

  async archivedThrough(): Promise<Date | undefined> {
    this.reachChecks += 1;
    return this.reach;
  }
}

describe('WAL shipper', () => {
  let root: { path: string; remove: () => Promise<void> };
  let transport: Transport;
  let conductor: Subscription;
  const reports: string[] = [];
  const masterKey = MasterKey.generate();
  const projectId = 'project-w';
  const wrappedKey = wrapKey(masterKey, newProjectKey(), projectId);

  before(async () => {
    root = await makeDataDir('coffer-wal-shipper');
    transport = await connectTransport('memory:', { key: BusKey.generate() });
    conductor = await serveRpc(transport, conductorContract, conductorTopic, {
      heartbeat: async () => undefined,
      heartbeats: async () => undefined,
      agentHeartbeat: async () => undefined,
      reportProgress: async () => undefined,
      updateBackup: async () => undefined,
      walArchived: async ({ through }) => {
        reports.push(through);
      },
      renewLease: async () => ({ lease: 'none' as const }),
    });
  });

  after(async () => {
    await conductor.close();
    await transport.close();
    await root.remove();
  });

  async function setUp(name: string, round?: RoundOfChecks) {
    const dir = join(root.path, name);
    const spool = join(dir, 'spool');
    const storageDir = join(dir, 'storage');
    await mkdir(spool, { recursive: true });
    await mkdir(storageDir);
    const archive = new DirectoryArchive(spool);
    const storage = new LocalDirectoryStorage(storageDir);
    const shipper = new WalShipper({
      archive,
      host: { storage, masterKey },
      dir,
      instanceId: name,
      conductor: createRpcClient(transport, conductorContract, conductorTopic),
      log: silentLogger(),
      intervalMs: 20,
      ...(round === undefined ? {} : { round }),
    });
    return { dir, spool, storageDir, archive, storage, shipper };
  }

  it('discards the log while no backup asked for it, so the spool never grows', async () => {
    const { spool, storage, shipper } = await setUp('discards');
    await writeFile(join(spool, '000000010000000000000001'), 'segment 1');
    await shipper.flush();
    assert.deepEqual(await readdir(spool), []);
    await storage.ensureContainer('c');
    assert.deepEqual(await storage.list('c'), []);
  });

  it('stores each file sealed under the target prefix with what the engine recorded, then removes it; the target survives a restart', async () => {
    const { dir, spool, storage, shipper } = await setUp('ships');
    await storage.ensureContainer('c');
    await shipper.setTarget({ projectId, container: 'c', prefix: 'inst/wal', wrappedKey });
    await writeFile(join(spool, '000000010000000000000002'), 'segment 2');
    await writeFile(join(spool, '00000002.history'), 'history');
    await shipper.flush();
    assert.deepEqual(await readdir(spool), []);
    const stored = await storage.list('c', 'inst/wal/');
    assert.deepEqual(stored.map((o) => [o.name, o.metadata['last-commit']]), [
      ['inst/wal/000000010000000000000002', '000000010000000000000002-commit'],
      ['inst/wal/00000002.history', '00000002.history-commit'],
    ]);
    const body = await storage.get('c', 'inst/wal/000000010000000000000002', { expectedSha256: stored[0]!.sha256 });
    const raw: Buffer[] = [];
    for await (const chunk of await storage.get('c', 'inst/wal/000000010000000000000002')) raw.push(chunk as Buffer);
    assert.ok(!Buffer.concat(raw).includes(Buffer.from('segment 2')), 'not stored in the clear');
    const plain: Buffer[] = [];
    for await (const chunk of decodeBackup(body, { key: unwrapKey(masterKey, wrappedKey, projectId) })) plain.push(chunk as Buffer);
    assert.equal(Buffer.concat(plain).toString(), 'segment 2');
    assert.deepEqual(await readWalTarget(dir), { projectId, container: 'c', prefix: 'inst/wal', wrappedKey });
    assert.equal((await stat(join(dir, 'wal-archive.json'))).mode & 0o777, 0o600);
  });

  it('keeps the files while the storage fails and ships them once it is back', async () => {
    const { spool, storageDir, storage, shipper } = await setUp('storage-down');
    await storage.ensureContainer('c');
    await shipper.setTarget({ projectId, container: 'c', prefix: 'p', wrappedKey });
    await rm(storageDir, { recursive: true });
    await writeFile(join(spool, '000000010000000000000003'), 'segment 3');
    await shipper.flush();
    assert.deepEqual(await readdir(spool), ['000000010000000000000003'], 'not removed before it is stored');
    await mkdir(storageDir);
    await storage.ensureContainer('c');
    await shipper.flush();
    assert.deepEqual(await readdir(spool), []);
    assert.deepEqual((await storage.list('c', 'p/')).map((o) => o.name), ['p/000000010000000000000003']);
  });

  it('reports the reach at once after a shipment, then at most every 15 s, and never backwards', async () => {
    const { spool, archive, storage, shipper } = await setUp('reach');
    await storage.ensureContainer('c');
    await shipper.setTarget({ projectId, container: 'c', prefix: 'r', wrappedKey });
    reports.length = 0;
    await writeFile(join(spool, '000000010000000000000004'), 'segment 4');
    await shipper.flush();
    assert.deepEqual(reports, ['2026-12-03T10:00:00.000Z']);
    const checks = archive.reachChecks;
    archive.reach = new Date('2026-12-03T10:00:30Z');
    await shipper.flush();
    assert.equal(archive.reachChecks, checks, 'nothing shipped: not checked again so soon');
    archive.reach = new Date('2026-12-03T09:00:00Z');
    await writeFile(join(spool, '000000010000000000000005'), 'segment 5');
    await shipper.flush();
    assert.deepEqual(reports, ['2026-12-03T10:00:00.000Z'], 'an earlier reach is not reported');
    shipper.start();
    await writeFile(join(spool, '000000010000000000000006'), 'segment 6');
    archive.reach = new Date('2026-12-03T10:01:00Z');
    await until('the running shipper reports', () => reports.length === 2, 10_000);
    await shipper.stop();
    assert.equal(reports[1], '2026-12-03T10:01:00.000Z');
  });
  it("ships in the host round's turns when given the round, with no timer of its own, and leaves the round when stopped", async () => {
    const { round, members, turn } = handDrivenRound();
    const { spool, shipper } = await setUp('in-round', round);
    shipper.start();
    assert.equal(members.size, 1, 'joined the round');
    await writeFile(join(spool, '000000010000000000000003'), 'segment 3');
    // its interval (20 ms) passes many times over: without a turn nothing runs
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(await readdir(spool), ['000000010000000000000003']);
    await turn();
    await until('the turn shipped (here: discarded, no target yet)', async () => (await readdir(spool)).length === 0, 10_000);
    await shipper.stop();
    assert.equal(members.size, 0, 'left the round');
  });
});
