import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { createReadStream, createWriteStream, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import type { PrepareInput } from '../../src/bus/index.js';
import { CofferError, silentLogger } from '../../src/common/index.js';
import { engineRegistry, type EngineBinary, type EngineDriver, type PrepareStep } from '../../src/guest/index.js';
import type { BackupFacts, RestoreLink } from '../../src/guest/engines/engine.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { tempDataDir } from '../support/temp-dir.js';
import type { EngineConformanceFixture, EngineConnectOptions, EngineSession } from './engine-conformance.suite.js';
import { localRunner } from './engine-fixture.js';

// The backup part of the engine conformance suite, for every engine whose factory has a backup
// module: a full backup taken from a serving instance, restored into a new instance (its own
// directory and address) by that instance's prepare, and compared through the engine's own
// client as a tenant reads it. Also what a restore must not carry over (the source's admin and
// root passwords), what a failed restore leaves (nothing running, nothing a later prepare
// takes for finished) and what an aborted backup leaves (no tool process). Engines without a
// backup module get one check: their driver has no backup admin.

export interface EngineBackupFixture<S extends EngineSession = EngineSession> extends EngineConformanceFixture<S> {
  /**
   * The password of the guest's administrative user of the instance in `dir`, prepared with
   * `input`: `input.adminPassword`, or a secret the engine made itself (Redis).
   */
  adminPassword(dir: string, input: PrepareInput): Promise<string>;
  /** logs in as the guest's administrative user over the instance's local socket; rejects when refused */
  adminLogin(dir: string, password: string): Promise<void>;
}

/** Children of this process (the engines' servers among them), zombies left out. */
function childProcesses(): { pid: number; name: string }[] {
  const children: { pid: number; name: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const text = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // "pid (comm) state ppid …": comm may hold spaces and parentheses
      const close = text.lastIndexOf(')');
      const [state, ppid] = text.slice(close + 2).split(' ');
      if (Number(ppid) === process.pid && state !== 'Z') children.push({ pid: Number(entry), name: text.slice(text.indexOf('(') + 1, close) });
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

/** The stream a storage read hands back when the stored bytes turn out altered after `bytes` of them. */
function failingAfter(file: string, bytes: number): Readable {
  return Readable.from(
    (async function* () {
      yield* createReadStream(file, { end: bytes - 1 });
      throw new CofferError('ChecksumMismatch', 'The backup object differs from the checksum recorded when it was stored.');
    })(),
  );
}

export function runEngineBackup<S extends EngineSession>(fixture: EngineBackupFixture<S>): void {
  const factory = engineRegistry[fixture.engine];
  const caps = factory.capabilities;
  const port = factory.standardPort;
  // addresses the conformance suite (.1, .2, .200, .201 of its own random /24) never uses
  const net = `${fixture.loopbackPrefix}.${randomInt(1, 255)}`;
  const address = { source: `${net}.11`, restored: `${net}.12`, failed: `${net}.13` };
  const tenantPassword = `t3nant-${randomInt(1e9)} ☃ 'q"`;
  const rootPassword = `r00t-${randomInt(1e9)}`;

  const inputFor = (adminPassword: string): PrepareInput => ({
    memoryMb: 256,
    databases: caps.databases ? [{ name: 'app' }] : [],
    users: caps.users ? [{ name: 'tenant', password: tenantPassword, databases: caps.userAccess ? [{ name: 'app' }] : [] }] : [],
    adminPassword,
    access: null,
    overrides: {},
  });
  const sourceInput = inputFor(`Src-adm1n-${randomInt(1e9)}`);
  // a restore is a create: the new instance's own admin password, the same tenant as the request names
  const restoreInput = inputFor(`Rst-adm1n-${randomInt(1e9)}`);
  const tenant = (input: PrepareInput) => {
    if (caps.users) return { user: 'tenant', password: tenantPassword };
    assert.ok(fixture.tenantLogin, 'an engine without users needs fixture.tenantLogin');
    return fixture.tenantLogin(input);
  };
  const tenantDatabase = caps.databases && caps.userAccess ? 'app' : undefined;

  // what the source holds at backup time and the restore must give back exactly
  const data: Record<string, string> = {
    k1: 'hello ☃',
    hostile: `it's "x"; DROP TABLE t; -- ünïcødé 名前 \\ $$`,
    empty: '',
    // incompressible and larger than any pipe or stream buffer, so that a backup takes a while
    bulk: randomBytes(3 * 1024 * 1024).toString('base64'),
  };

  let root: string;
  let backupFile: string;
  let facts: BackupFacts;
  const drivers: Record<keyof typeof address, EngineDriver | undefined> = { source: undefined, restored: undefined, failed: undefined };
  const dirs = { source: '', restored: '', failed: '' };

  const makeDriver = async (which: keyof typeof address): Promise<EngineDriver> => {
    const dir = join(root, which);
    await mkdir(dir);
    await chmod(dir, 0o711);
    factory.checkInstanceDir(dir);
    const runner = await localRunner();
    const discovery = await factory.discover([], runner);
    const binary: EngineBinary | undefined = discovery.binaries[0];
    assert.ok(binary !== undefined, `no ${fixture.engine} binaries: ${JSON.stringify(discovery.reports)}`);
    const driver = factory.create({
      placement: { instanceId: `backup-${which}`, dir, address: address[which], port },
      binary,
      runner,
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
    });
    dirs[which] = dir;
    drivers[which] = driver;
    return driver;
  };

  const as = async <T>(options: Omit<EngineConnectOptions, 'port'>, work: (session: S) => Promise<T>): Promise<T> => {
    const session = await fixture.connect({ port, ...options });
    try {
      return await work(session);
    } finally {
      await session.end().catch(() => undefined);
    }
  };
  const asTenant = <T>(which: keyof typeof address, input: PrepareInput, work: (session: S) => Promise<T>) =>
    as({ address: address[which], ...tenant(input), database: tenantDatabase }, work);

  const link = (open: () => Promise<Readable>): RestoreLink => ({ kind: 'full', facts, open });
  /** children of this process from before the suite (the test runner's own helpers) */
  let baseline = new Set<number>();
  /** children of this process other than those and the engine servers of the suite's drivers: none may remain */
  const strayChildren = async () => {
    const servers = new Set(await Promise.all(Object.values(drivers).map((driver) => driver?.processId())));
    return childProcesses().filter(({ pid }) => !servers.has(pid) && !baseline.has(pid));
  };

  if (!caps.backup) {
    describe(`${fixture.engine} engine backup`, () => {
      test('has no backup admin without capability backup', async () => {
        root = await tempDataDir('coffer-bk-');
        try {
          assert.equal((await makeDriver('source')).backup, undefined);
        } finally {
          await rm(root, { recursive: true, force: true });
        }
      });
    });
    return;
  }

  describe(`${fixture.engine} engine backup`, () => {
    before(async () => {
      baseline = new Set(childProcesses().map(({ pid }) => pid));
      root = await tempDataDir('coffer-bk-');
      backupFile = join(root, 'backup');
      const source = await makeDriver('source');
      await source.prepare(sourceInput);
      await asTenant('source', sourceInput, async (session) => {
        for (const [key, value] of Object.entries(data)) await fixture.write(session, key, value);
      });
      if (caps.root) await source.root!.enable(rootPassword);
    });

    after(async () => {
      for (const driver of Object.values(drivers)) await driver?.stop().catch(() => undefined);
      if (root !== undefined) {
        await fixture.cleanUp?.(root).catch(() => undefined);
        await rm(root, { recursive: true, force: true });
      }
    });

    test('takes a full backup while the engine keeps serving', async () => {
      const source = drivers.source!;
      assert.equal(typeof source.backup!.incremental, 'boolean');
      const run = await source.backup!.start({ signal: new AbortController().signal });
      let servedDuring = false;
      // on the first chunk, with the tool's output still pending: the tenant writes and reads
      const probe = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          if (servedDuring) return done(null, chunk);
          asTenant('source', sourceInput, async (session) => {
            await fixture.write(session, 'during', 'written while backing up');
            assert.equal(await fixture.read(session, 'k1'), data.k1);
          }).then(
            () => {
              servedDuring = true;
              done(null, chunk);
            },
            (err: Error) => done(err),
          );
        },
      });
      await pipeline(run.stream, probe, createWriteStream(backupFile));
      facts = await run.finished;
      assert.ok(servedDuring, 'the tenant was served during the backup');
      assert.ok((await stat(backupFile)).size > 3 * 1024 * 1024, 'the backup holds the data');
      assert.ok(Object.keys(facts).length > 0, 'the engine recorded facts');
      for (const [name, value] of Object.entries(facts)) assert.equal(typeof value, 'string', name);
      assert.equal(await source.health(), 'healthy');
      assert.deepEqual(await strayChildren(), [], 'no tool process outlives the backup');
      await asTenant('source', sourceInput, async (session) => assert.equal(await fixture.read(session, 'k1'), data.k1));
    });

    test('restores into a new instance with exactly the data', async () => {
      const restored = await makeDriver('restored');
      const steps: PrepareStep[] = [];
      await restored.prepare(restoreInput, (step) => steps.push(step), [link(async () => createReadStream(backupFile))]);
      assert.ok(steps.includes('restoring'), `steps: ${steps.join(', ')}`);
      assert.ok(!steps.includes('initialising') && !steps.includes('taking a prepared cluster'), `steps: ${steps.join(', ')}`);
      assert.equal(await restored.health(), 'healthy');
      await asTenant('restored', restoreInput, async (session) => {
        for (const [key, value] of Object.entries(data)) assert.equal(await fixture.read(session, key), value, key);
      });
      // the source is untouched and separate
      await asTenant('restored', restoreInput, (session) => fixture.write(session, 'k1', 'changed in the restore'));
      await asTenant('source', sourceInput, async (session) => assert.equal(await fixture.read(session, 'k1'), data.k1));
    });

    test("the engine's own check of the restored data finds no errors and counts what the tenant wrote", async () => {
      const checked = await drivers.restored!.backup!.checkData(new AbortController().signal);
      assert.equal(checked.checks.errors, 0, JSON.stringify(checked));
      assert.deepEqual(checked.problems, []);
      if (caps.databases) assert.ok((checked.checks.databases ?? 0) >= 1 && (checked.checks.tables ?? 0) >= 1, JSON.stringify(checked.checks));
      else assert.ok((checked.checks.keys ?? 0) >= Object.keys(data).length, JSON.stringify(checked.checks));
      assert.deepEqual(await strayChildren(), [], 'no check tool outlives the check');
    });

    test('the restored instance keeps its data across a restart', async () => {
      const restored = drivers.restored!;
      await restored.stop();
      await restored.start();
      assert.equal(await restored.health(), 'healthy');
      await asTenant('restored', restoreInput, async (session) => {
        assert.equal(await fixture.read(session, 'k1'), 'changed in the restore');
        assert.equal(await fixture.read(session, 'bulk'), data.bulk);
      });
    });

    test('converges when the restoring prepare is delivered again, keeping the restored engine and data', async () => {
      const restored = drivers.restored!;
      const pid = await restored.processId();
      await restored.prepare(restoreInput, undefined, [link(() => Promise.reject(new Error('a finished restore reads no backup')))]);
      assert.equal(await restored.processId(), pid);
      await asTenant('restored', restoreInput, async (session) => {
        assert.equal(await fixture.read(session, 'k1'), 'changed in the restore');
        assert.equal(await fixture.read(session, 'bulk'), data.bulk);
      });
    });

    test("the restore's administrative user takes the new instance's password, not the source's", async () => {
      const fresh = await fixture.adminPassword(dirs.restored, restoreInput);
      const old = await fixture.adminPassword(dirs.source, sourceInput);
      assert.notEqual(fresh, old);
      await fixture.adminLogin(dirs.restored, fresh);
      await assert.rejects(fixture.adminLogin(dirs.restored, old), "the source's admin password opens nothing");
      // and the source keeps its own
      await fixture.adminLogin(dirs.source, old);
    });

    if (caps.root) {
      test("the source's root password does not open the restore", async () => {
        assert.ok(fixture.rootUser !== undefined, 'an engine with root needs fixture.rootUser');
        await as({ address: address.source, user: fixture.rootUser, password: rootPassword }, async () => undefined);
        await assert.rejects(
          as({ address: address.restored, user: fixture.rootUser, password: rootPassword }, async () => undefined),
          'root as on the source is refused',
        );
        // root can be enabled on the restore anew
        await drivers.restored!.root!.enable(`${rootPassword}-new`);
        await as({ address: address.restored, user: fixture.rootUser, password: `${rootPassword}-new` }, async () => undefined);
      });
    }

    test('a restore whose stream fails midway leaves no engine running; a later prepare without restore works', async () => {
      const failed = await makeDriver('failed');
      const size = (await stat(backupFile)).size;
      await rejectsWithCode(
        failed.prepare(restoreInput, undefined, [link(async () => failingAfter(backupFile, Math.floor(size / 2)))]),
        'ChecksumMismatch',
      );
      assert.equal(await failed.processId(), undefined);
      assert.equal(await failed.health(), 'stopped');
      assert.deepEqual(await strayChildren(), [], 'no tool process outlives the failed restore');
      // nothing of the half-restored data is taken for a finished instance
      await failed.prepare(restoreInput);
      assert.equal(await failed.health(), 'healthy');
      await asTenant('failed', restoreInput, async (session) => assert.equal(await fixture.read(session, 'k1'), undefined));
      await failed.stop();
    });

    test('an aborted backup rejects finished and leaves no tool process; the source keeps serving', async () => {
      const source = drivers.source!;
      const controller = new AbortController();
      const run = await source.backup!.start({ signal: controller.signal });
      // one chunk read, the rest left waiting in the tool's pipe
      await new Promise<void>((resolve, reject) => {
        run.stream.once('data', () => resolve());
        run.stream.once('error', reject);
      });
      run.stream.pause();
      controller.abort();
      await assert.rejects(run.finished, (err: Error) => {
        assert.equal((err as { code?: string }).code, 'EngineError', err.message);
        return true;
      });
      assert.deepEqual(await strayChildren(), []);
      assert.equal(await source.health(), 'healthy');
      await asTenant('source', sourceInput, async (session) => assert.equal(await fixture.read(session, 'k1'), data.k1));
    });

    test('destroying the stream aborts the backup: finished rejects, no tool process is left', async () => {
      const run = await drivers.source!.backup!.start({ signal: new AbortController().signal });
      await new Promise<void>((resolve, reject) => {
        run.stream.once('data', () => resolve());
        run.stream.once('error', reject);
      });
      run.stream.destroy();
      await assert.rejects(run.finished);
      assert.deepEqual(await strayChildren(), []);
      assert.equal(await drivers.source!.health(), 'healthy');
    });

    test('a backup taken after the restore, of the restored instance, restores too', async () => {
      // the restore is a full instance in its own right: its own backups work
      const run = await drivers.restored!.backup!.start({ signal: new AbortController().signal });
      const chunks: Buffer[] = [];
      for await (const chunk of run.stream) chunks.push(chunk as Buffer);
      const second = await run.finished;
      assert.ok(Object.keys(second).length > 0);
      assert.ok(Buffer.concat(chunks).length > 3 * 1024 * 1024);
    });
  });
}
