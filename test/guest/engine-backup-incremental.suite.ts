import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { access, chmod, mkdir, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import type { PrepareInput } from '../../src/bus/index.js';
import { CofferError, silentLogger, sleep } from '../../src/common/index.js';
import { engineRegistry, type EngineBinary, type EngineDriver, type EngineName, type PrepareStep } from '../../src/guest/index.js';
import type { BackupFacts, BackupKind, RestoreLink } from '../../src/guest/engines/engine.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { tempDataDir } from '../support/temp-dir.js';
import type { EngineConnectOptions, EngineSession } from './engine-conformance.suite.js';
import { localRunner } from './engine-fixture.js';

// Incremental backups of an engine with capability `backup` and `incremental` backups, against
// real engine processes: a full backup and two incrementals of a source that changes between
// them, each point of the chain restored into a new instance (another address) and compared
// with the source as it was when that backup was taken; chains that are out of order or miss a
// link; the admin password of the restored instance; a restore whose second link fails midway;
// aborting a running backup; the source serving while a backup runs. The shared full-backup
// section lives in engine-backup.suite.ts; what differs between engines comes from the fixture.

export interface IncrementalBackupFixture<S extends EngineSession> {
  engine: EngineName;
  /** the first two octets of the caller's loopback range (e.g. `127.94`) */
  loopbackPrefix: string;
  /** logs in with the engine's real client; resolves once the engine accepted the login */
  connect(options: EngineConnectOptions): Promise<S>;
  /** writes `value` under `key` in the session's database, creating what it needs on first use */
  write(session: S, key: string, value: string): Promise<void>;
  /** everything `write` stored, each as `key=value`, in a stable order: what a restore must reproduce exactly */
  snapshot(session: S): Promise<string[]>;
  /** whether the guest's administrative account of the instance in `dir` accepts `password` */
  adminAccepts(dir: string, password: string): Promise<boolean>;
  /** the pids of the engine's backup and restore programs still working for the instance in `dir` */
  toolProcesses(dir: string): Promise<number[]>;
  /** what must not exist in the instance directory `dir` after a failed restore (scratch and data directories) */
  restoreLeftovers(dir: string): string[];
  /** the root user's name, with capability `root` */
  rootUser?: string;
  /** kills whatever engine process a failed check left under `root`; the suite removes `root` after */
  cleanUp(root: string): Promise<void>;
}

/** A backup kept in a file, as storage would keep it. */
export interface StoredBackup {
  kind: BackupKind;
  facts: BackupFacts;
  file: string;
}

export interface TestInstance {
  dir: string;
  address: string;
  driver: EngineDriver;
  adminPassword: string;
}

/** What the caller's own checks may use, once the suite has built its chain. */
export interface IncrementalBackupContext {
  source: TestInstance;
  full: StoredBackup;
  incremental1: StoredBackup;
  incremental2: StoredBackup;
  /** a new instance (its directory made, on an address of its own) prepared from `chain`; rejects as prepare rejects */
  restoreInto(chain: readonly RestoreLink[], name: string): Promise<TestInstance>;
  linkOf(backup: StoredBackup): RestoreLink;
}

/** Reads a running backup to `file`; resolves with what `finished` recorded. */
export async function storeBackup(driver: EngineDriver, file: string, parent?: StoredBackup): Promise<StoredBackup> {
  const run = await driver.backup!.start({ parent: parent?.facts, signal: new AbortController().signal });
  await pipeline(run.stream, createWriteStream(file));
  const facts = await run.finished;
  return { kind: parent === undefined ? 'full' : 'incremental', facts, file };
}

export function runIncrementalBackupSuite<S extends EngineSession>(
  fixture: IncrementalBackupFixture<S>,
  extra?: (context: () => IncrementalBackupContext) => void,
): void {
  const factory = engineRegistry[fixture.engine];
  const port = factory.standardPort;
  const net = `${fixture.loopbackPrefix}.${randomInt(1, 255)}`;
  const tenantPassword = `t3nant-${randomInt(1e9)}`;
  const rootPassword = `r00t-${randomInt(1e9)}`;
  let nextHost = 1;
  let root: string;
  let binary: EngineBinary;
  let runner: Awaited<ReturnType<typeof localRunner>>;
  const instances: TestInstance[] = [];
  let context: IncrementalBackupContext | undefined;
  /** the source's data as each backup of the chain saw it */
  const seen: string[][] = [];

  const newInstance = (name: string): TestInstance => {
    const dir = join(root, name);
    const address = `${net}.${nextHost++}`;
    const driver = factory.create({
      placement: { instanceId: name, dir, address, port },
      binary,
      runner,
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
    });
    const instance = { dir, address, driver, adminPassword: `Adm1n-${name}-${randomInt(1e9)}` };
    instances.push(instance);
    return instance;
  };
  const makeDir = async (instance: TestInstance) => {
    // the instance directory as the agent makes it: the host's, traversable by the engine's user
    await mkdir(instance.dir, { recursive: true });
    await chmod(instance.dir, 0o711);
  };
  const inputFor = (instance: TestInstance, users: PrepareInput['users']): PrepareInput => ({
    memoryMb: 256,
    databases: [{ name: 'app' }],
    users,
    adminPassword: instance.adminPassword,
    access: null,
    overrides: {},
  });
  const restoreUsers = (): PrepareInput['users'] => [{ name: 'fresh', password: 'fr3sh-pass', databases: [{ name: 'app' }] }];
  const as = async <T>(instance: TestInstance, login: { user: string; password: string; database?: string }, work: (session: S) => Promise<T>) => {
    const session = await fixture.connect({ address: instance.address, port, ...login });
    try {
      return await work(session);
    } finally {
      await session.end().catch(() => undefined);
    }
  };
  const asTenant = <T>(instance: TestInstance, work: (session: S) => Promise<T>) =>
    as(instance, { user: 'tenant', password: tenantPassword, database: 'app' }, work);
  const snapshotOf = (instance: TestInstance) => asTenant(instance, (session) => fixture.snapshot(session));
  /** `count` rows of about 1 KB under `prefix`, and a new value for every third row written before */
  const change = (instance: TestInstance, prefix: string, count: number) =>
    asTenant(instance, async (session) => {
      for (let i = 0; i < count; i += 1) await fixture.write(session, `${prefix}-${String(i).padStart(4, '0')}`, `${prefix} ${i} `.repeat(100));
      for (const key of await fixture.snapshot(session)) {
        const name = key.slice(0, key.indexOf('='));
        if (!name.startsWith(prefix) && randomInt(3) === 0) await fixture.write(session, name, `changed by ${prefix}`);
      }
    });
  const linkOf = (backup: StoredBackup): RestoreLink => ({
    kind: backup.kind,
    facts: backup.facts,
    open: async () => createReadStream(backup.file),
  });
  const restoreInto = async (chain: readonly RestoreLink[], name: string, steps: PrepareStep[] = []) => {
    const instance = newInstance(name);
    await makeDir(instance);
    await instance.driver.prepare(inputFor(instance, restoreUsers()), (step) => steps.push(step), chain);
    return instance;
  };
  const backups = () => {
    assert.ok(context !== undefined, 'the chain was built');
    return context;
  };
  const noToolLeft = async (instance: TestInstance) => {
    const pids = await fixture.toolProcesses(instance.dir);
    assert.deepEqual(pids, [], 'no backup or restore program is left running');
  };
  /** whether a TCP connection to `address`:`port` is accepted */
  const listening = (address: string) =>
    new Promise<boolean>((resolve) => {
      const socket = connect({ host: address, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  const absent = async (path: string) =>
    assert.equal(
      await access(path).then(
        () => true,
        () => false,
      ),
      false,
      `${path} is gone`,
    );

  describe(`${fixture.engine} incremental backups and restores`, () => {
    before(async () => {
      root = await tempDataDir('coffer-bk-');
      runner = await localRunner();
      const discovery = await factory.discover([], runner);
      assert.ok(discovery.binaries[0] !== undefined, `no ${fixture.engine} binaries: ${JSON.stringify(discovery.reports)}`);
      binary = discovery.binaries[0];
      assert.equal(factory.capabilities.backup, true);
      await mkdir(join(root, 'backups'));
      const source = newInstance('source');
      await makeDir(source);
      await source.driver.prepare(inputFor(source, [{ name: 'tenant', password: tenantPassword, databases: [{ name: 'app' }] }]));
      assert.equal(source.driver.backup?.incremental, true);
      if (fixture.rootUser !== undefined) await source.driver.root!.enable(rootPassword);
      const file = (name: string) => join(root, 'backups', name);

      await change(source, 'first', 200);
      seen.push(await snapshotOf(source));
      const full = await storeBackup(source.driver, file('full'));
      await change(source, 'second', 50);
      seen.push(await snapshotOf(source));
      const incremental1 = await storeBackup(source.driver, file('incremental-1'), full);
      await change(source, 'third', 50);
      seen.push(await snapshotOf(source));
      const incremental2 = await storeBackup(source.driver, file('incremental-2'), incremental1);
      context = {
        source,
        full,
        incremental1,
        incremental2,
        restoreInto: (chain, name) => restoreInto(chain, name),
        linkOf,
      };
    });

    after(async () => {
      for (const instance of instances) await instance.driver.stop().catch(() => undefined);
      if (root !== undefined) {
        await fixture.cleanUp(root).catch(() => undefined);
        await rm(root, { recursive: true, force: true });
      }
    });

    test('each point of the chain changed the data the next backup saw', () => {
      assert.equal(seen.length, 3);
      assert.notDeepEqual(seen[0], seen[1]);
      assert.notDeepEqual(seen[1], seen[2]);
      const { full, incremental1, incremental2 } = backups();
      assert.deepEqual([full.kind, incremental1.kind, incremental2.kind], ['full', 'incremental', 'incremental']);
    });

    test('restores the full backup alone into a new instance, exactly as the source was then', async () => {
      const { full } = backups();
      const steps: PrepareStep[] = [];
      const restored = await restoreInto([linkOf(full)], 'restored-full', steps);
      assert.ok(steps.includes('restoring'), `steps: ${steps.join(', ')}`);
      assert.ok(!steps.includes('initialising'), `steps: ${steps.join(', ')}`);
      assert.equal(await restored.driver.health(), 'healthy');
      assert.deepEqual(await snapshotOf(restored), seen[0]);
    });

    test('restores the full backup and the first incremental, exactly as the source was then', async () => {
      const { full, incremental1 } = backups();
      const restored = await restoreInto([linkOf(full), linkOf(incremental1)], 'restored-1');
      assert.deepEqual(await snapshotOf(restored), seen[1]);
    });

    test('restores the whole chain, exactly as the source was at the last incremental', async () => {
      const { full, incremental1, incremental2 } = backups();
      const restored = await restoreInto([linkOf(full), linkOf(incremental1), linkOf(incremental2)], 'restored-2');
      assert.deepEqual(await snapshotOf(restored), seen[2]);
      // a backup verification's check: the engine's own, over every table of the restored chain
      const checked = await restored.driver.backup!.checkData(new AbortController().signal);
      assert.equal(checked.checks.errors, 0, JSON.stringify(checked));
      assert.deepEqual(checked.problems, []);
      assert.ok((checked.checks.databases ?? 0) >= 1 && (checked.checks.tables ?? 0) >= 1, JSON.stringify(checked.checks));
      // the prepare's own users are made beside the ones the backup brought
      await as(restored, { user: 'fresh', password: 'fr3sh-pass', database: 'app' }, async (session) => {
        assert.deepEqual(await fixture.snapshot(session), seen[2]);
      });
    });

    test('the restored instance takes its own admin password and refuses the source\'s', async () => {
      const { full, incremental1, source } = backups();
      const restored = await restoreInto([linkOf(full), linkOf(incremental1)], 'restored-admin');
      assert.equal(await fixture.adminAccepts(restored.dir, restored.adminPassword), true, 'the new admin password works');
      assert.equal(await fixture.adminAccepts(restored.dir, source.adminPassword), false, "the source's admin password does not");
      assert.equal(await fixture.adminAccepts(source.dir, source.adminPassword), true, 'the source keeps its own');
      if (fixture.rootUser !== undefined) {
        // root is disabled on a restore: the source's root password opens the source only
        await as(source, { user: fixture.rootUser, password: rootPassword }, async () => undefined);
        await assert.rejects(as(restored, { user: fixture.rootUser, password: rootPassword }, async () => undefined));
        assert.equal(await restored.driver.root!.enable('n3w-root'), fixture.rootUser);
        await as(restored, { user: fixture.rootUser, password: 'n3w-root' }, async () => undefined);
      }
    });

    test('no TCP client reaches the restored engine before the restore has made it the new instance\'s', async () => {
      const { full, incremental1 } = backups();
      const target = newInstance('restored-window');
      await makeDir(target);
      let starting = false;
      let done = false;
      let reachedEarly = 0;
      const watch = (async () => {
        while (!done) {
          // counted only when the connection was accepted before the real start began
          if ((await listening(target.address)) && !starting) reachedEarly += 1;
          await sleep(2);
        }
      })();
      try {
        await target.driver.prepare(
          inputFor(target, restoreUsers()),
          (step) => {
            if (step === 'starting') starting = true;
          },
          [linkOf(full), linkOf(incremental1)],
        );
      } finally {
        done = true;
        await watch;
      }
      assert.equal(reachedEarly, 0, 'no TCP connection before the start that follows the restore');
      assert.equal(await listening(target.address), true, 'it serves TCP once prepared');
    });

    test('refuses a chain out of order, with a missing link or without its full backup, before opening any backup', async () => {
      const { full, incremental1, incremental2 } = backups();
      let opened = 0;
      const counted = (backup: StoredBackup): RestoreLink => ({ ...linkOf(backup), open: async () => (opened++, createReadStream(backup.file)) });
      const target = newInstance('refused');
      await makeDir(target);
      const input = inputFor(target, []);
      for (const chain of [
        [full, incremental2, incremental1],
        [full, incremental2],
        [incremental1, incremental2],
        [incremental1],
        [full, full],
        [],
      ]) {
        await rejectsWithCode(target.driver.prepare(input, undefined, chain.map(counted)), 'BadRequest');
      }
      await assert.rejects(target.driver.prepare(input, undefined, [full, incremental2].map(counted)), /out of order or misses a backup/);
      assert.equal(opened, 0, 'no backup was opened');
      assert.equal(await target.driver.processId(), undefined);
      assert.equal(await target.driver.health(), 'stopped');
    });

    test('a restore whose second link fails midway leaves no process and nothing a later prepare would take for finished', async () => {
      const { full, incremental1 } = backups();
      const size = (await stat(incremental1.file)).size;
      const failing: RestoreLink = {
        ...linkOf(incremental1),
        open: async () =>
          Readable.from(
            (async function* () {
              let read = 0;
              for await (const chunk of createReadStream(incremental1.file, { highWaterMark: 64 * 1024 })) {
                read += (chunk as Buffer).length;
                if (read > size / 2) throw new CofferError('ChecksumMismatch', 'The backup object does not match its checksum.');
                yield chunk as Buffer;
              }
            })(),
          ),
      };
      const target = newInstance('failed-restore');
      await makeDir(target);
      const input = inputFor(target, restoreUsers());
      await rejectsWithCode(target.driver.prepare(input, undefined, [linkOf(full), failing]), 'ChecksumMismatch');
      assert.equal(await target.driver.processId(), undefined, 'no engine process');
      assert.equal(await target.driver.health(), 'stopped');
      await noToolLeft(target);
      for (const path of fixture.restoreLeftovers(target.dir)) await absent(path);
      // the same request again, with a sound chain: a restore from the start, not a half-finished one taken as done
      await target.driver.prepare(input, undefined, [linkOf(full), linkOf(incremental1)]);
      assert.deepEqual(await snapshotOf(target), seen[1]);
    });

    test('aborting a running backup kills its tool and its finished rejects; the next backup runs', async () => {
      const { source } = backups();
      const controller = new AbortController();
      const run = await source.driver.backup!.start({ signal: controller.signal });
      // the tool blocks on its full pipe until read: it is running now
      await new Promise((resolve) => run.stream.once('readable', resolve));
      assert.ok((await fixture.toolProcesses(source.dir)).length > 0, 'the tool runs');
      controller.abort();
      run.stream.resume();
      await rejectsWithCode(run.finished, 'EngineError');
      await noToolLeft(source);
      assert.equal(await source.driver.health(), 'healthy');
      const again = await storeBackup(source.driver, join(root, 'backups', 'after-abort'));
      assert.ok(again.facts['to-lsn'] !== undefined);
    });

    test('a reader that destroys the stream kills the tool, and finished rejects', async () => {
      const { source } = backups();
      const run = await source.driver.backup!.start({ signal: new AbortController().signal });
      await new Promise((resolve) => run.stream.once('readable', resolve));
      run.stream.destroy();
      await assert.rejects(run.finished);
      await noToolLeft(source);
    });

    test('the source keeps serving while a backup runs', async () => {
      const { source } = backups();
      const run = await source.driver.backup!.start({ signal: new AbortController().signal });
      // the first bytes read, the rest left waiting: the tool is mid-way through its copy
      await new Promise((resolve) => run.stream.once('readable', resolve));
      await asTenant(source, async (session) => {
        await fixture.write(session, 'during-backup', 'written while a backup ran');
        assert.ok((await fixture.snapshot(session)).includes('during-backup=written while a backup ran'));
      });
      const sink = createWriteStream(join(root, 'backups', 'during'));
      await pipeline(run.stream, sink);
      assert.ok((await run.finished)['to-lsn'] !== undefined);
      await noToolLeft(source);
    });

    extra?.(backups);
  });
}
