import assert from 'node:assert/strict';
import { randomInt, X509Certificate } from 'node:crypto';
import { chmod, mkdir, rm, stat } from 'node:fs/promises';
import { join, relative, isAbsolute } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DatabaseSpec, PrepareInput } from '../../src/bus/index.js';
import { silentLogger, type ConfigurationValue } from '../../src/common/index.js';
import type { CertificateAuthority } from '../../src/agent/index.js';
import { engineRegistry, type EngineBinary, type EngineDriver, type EngineName, type TlsMaterial } from '../../src/guest/index.js';
import { isProcessAlive } from '../../src/guest/engines/process-watch.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { processesMentioning } from '../support/processes.js';
import { tempDataDir } from '../support/temp-dir.js';
import { eventually } from '../support/wait.js';
import { newTestCa, testCa } from '../support/test-ca.js';
import { localRunner } from './engine-fixture.js';

// One suite for every engine: a real engine process driven through its EngineDriver, checked
// against each capability its factory reports (what its modules imply, engine-modules.ts), and,
// for each it does not, checked that the driver lacks the matching admin object (so that the
// guest answers OperationNotSupported). engine-modules.test.ts checks the derivation itself.
// What differs between engines (how a client logs in, what "write and read" means, which
// setting shows the flavor's memory) comes from the fixture.

export interface EngineConnectOptions {
  address: string;
  port: number;
  user: string;
  /** undefined: log in without sending any password */
  password?: string;
  /** undefined: whatever the engine's client connects to by default */
  database?: string;
  /** the local (source) address of the TCP connection; undefined: the kernel's choice */
  localAddress?: string;
}

/** An open, authenticated client connection. */
export interface EngineSession {
  end(): Promise<void>;
}

export interface EngineConformanceFixture<S extends EngineSession = EngineSession> {
  engine: EngineName;
  /**
   * The first two octets of the caller's loopback range (e.g. `127.91`): every address the
   * suite listens on or connects from lies in it, so concurrent runs never meet.
   */
  loopbackPrefix: string;
  /**
   * Logs in with the engine's real client driver. Resolves only once the engine accepted the
   * login (e.g. after a first query), and rejects when it refuses it.
   */
  connect(options: EngineConnectOptions): Promise<S>;
  /** writes `value` under `key` in the session's database, creating what it needs on first use */
  write(session: S, key: string, value: string): Promise<void>;
  /** what `write` stored under `key`, undefined when nothing is */
  read(session: S, key: string): Promise<string | undefined>;
  /** a value of the engine's own settings that follows the flavor's memory (e.g. shared_buffers) */
  memorySetting(session: S): Promise<string>;
  /** the guest's administrative user, which must never log in over TCP; undefined: the engine has none */
  adminUser?: string;
  /** the root user's name as `root.enable` resolves it */
  rootUser?: string;
  /** with capability `characterSets`: a non-default character set and collation, as `databases.list` reports them */
  characterSet?: Required<Pick<DatabaseSpec, 'characterSet' | 'collate'>>;
  /** database names the engine must keep exact (defaults: quotes, backticks, semicolons, unicode) */
  hostileDatabaseNames?: string[];
  /** user names the engine must keep exact (same defaults) */
  hostileUserNames?: string[];
  /** without capability `users`: how a tenant logs in to an instance prepared with `input` */
  tenantLogin?(input: PrepareInput): { user: string; password: string };
  /** flavor memory before and after the resize check (defaults 256 and 512) */
  memoryMb?: { initial: number; resized: number };
  /** false where a resize applies the new memory to the running engine (Redis: CONFIG SET maxmemory) */
  resizeRestarts?: boolean;
  /**
   * Logs in over TLS with the engine's real client driver, verifying the server's certificate
   * against `ca` and the address it connects to; resolves once the engine accepted the login.
   */
  connectTls(options: EngineConnectOptions & { ca: string }): Promise<S>;
  /** the serial number (hex, as X509Certificate.serialNumber) of the certificate the session's server presented */
  serverCertificateSerial(session: S): string;
  /** with capability `configurationGroups`: what the configuration checks set and how they read it back */
  configuration?: ConfigurationFixture<S>;
  /** kills whatever engine process a failed check left under `root`; the suite removes `root` after */
  cleanUp?(root: string): Promise<void>;
}

/** A parameter the suite sets, and what the engine reports for it before and after. */
export interface ParameterCase {
  name: string;
  value: ConfigurationValue;
  /** what `setting` reads once `value` is live */
  live: string;
  /** what `setting` reads without an override (Coffer's own rendering) */
  initial: string;
}

export interface ConfigurationFixture<S extends EngineSession> {
  /** a parameter the engine applies without a restart */
  dynamic: ParameterCase;
  /** a parameter that takes effect only at the next start */
  restartOnly: ParameterCase;
  /** a value inside the parameter's published rules that the engine itself refuses */
  rejected: { name: string; value: ConfigurationValue };
  /** the running value of `name`, read from the engine as a tenant would (SHOW, SELECT @@, CONFIG GET) */
  setting(session: S, name: string): Promise<string>;
}

const defaultHostileNames = [
  "it's",
  'say "hi"',
  'back`tick',
  'x; DROP DATABASE victim; --',
  "z'); DROP ROLE victim; --",
  'ünïcødé ☃ 名前',
];

const hostilePassword = 'p\'a"s`s; \\ $$ DROP ROLE x; -- ünï ☃';


export function runEngineConformance<S extends EngineSession>(fixture: EngineConformanceFixture<S>): void {
  const factory = engineRegistry[fixture.engine];
  const caps = factory.capabilities;
  const port = factory.standardPort;
  // one /24 of the caller's range per run: .1 the instance, the rest client source addresses
  const net = `${fixture.loopbackPrefix}.${randomInt(1, 255)}`;
  const address = `${net}.1`;
  const otherAddress = `${net}.2`;
  const memory = fixture.memoryMb ?? { initial: 256, resized: 512 };
  const adminPassword = `Adm1n-${randomInt(1e9)}`;
  const tenantPassword = hostilePassword;

  const input: PrepareInput = {
    memoryMb: memory.initial,
    databases: caps.databases ? [{ name: 'app' }, { name: 'victim' }] : [],
    users: caps.users
      ? [{ name: 'tenant', password: tenantPassword, databases: caps.userAccess ? [{ name: 'app' }] : [] }]
      : [],
    adminPassword,
    access: null,
    overrides: {},
  };
  const tenant = (() => {
    if (caps.users) return { user: 'tenant', password: tenantPassword };
    assert.ok(fixture.tenantLogin, 'an engine without users needs fixture.tenantLogin');
    return fixture.tenantLogin(input);
  })();
  const tenantDatabase = caps.databases && caps.userAccess ? 'app' : undefined;

  let root: string;
  let dir: string;
  let driver: EngineDriver;
  let ca: CertificateAuthority;
  /** what the driver serves now */
  let material: TlsMaterial;
  const serialOf = (pem: string) => new X509Certificate(pem).serialNumber;
  const tlsPort = factory.tlsPort(port);

  const connect = (options: Omit<EngineConnectOptions, 'address' | 'port'> & { address?: string }) =>
    fixture.connect({ address, port, ...options });
  /** connects, runs `work`, always closes */
  const as = async <T>(options: Parameters<typeof connect>[0], work: (session: S) => Promise<T>): Promise<T> => {
    const session = await connect(options);
    try {
      return await work(session);
    } finally {
      await session.end().catch(() => undefined);
    }
  };
  const asTenant = <T>(work: (session: S) => Promise<T>) =>
    as({ user: tenant.user, password: tenant.password, database: tenantDatabase }, work);
  /** connects over TLS trusting `trusted` (default: the CA that signed what the engine serves), runs `work`, always closes */
  const asTls = async <T>(options: Parameters<typeof connect>[0], work: (session: S) => Promise<T>, trusted?: string): Promise<T> => {
    const session = await fixture.connectTls({ address, port: tlsPort, ...options, ca: trusted ?? material.caCertificate });
    try {
      return await work(session);
    } finally {
      await session.end().catch(() => undefined);
    }
  };
  const tenantLogin = () => ({ user: tenant.user, password: tenant.password, database: tenantDatabase });
  const refused = (options: Parameters<typeof connect>[0], message?: string) =>
    assert.rejects(
      as(options, async () => undefined),
      message ?? `login refused: ${JSON.stringify({ ...options, password: options.password === undefined ? 'none' : '***' })}`,
    );

  describe(`${fixture.engine} engine conformance`, () => {
    before(async () => {
      root = await tempDataDir('coffer-cf-');
      dir = join(root, 'i');
      // the instance directory as the agent makes it: the host's, traversable by the engine's user
      await mkdir(dir);
      await chmod(dir, 0o711);
      const runner = await localRunner();
      const discovery = await factory.discover([], runner);
      const binary: EngineBinary | undefined = discovery.binaries[0];
      assert.ok(binary !== undefined, `no ${fixture.engine} binaries: ${JSON.stringify(discovery.reports)}`);
      factory.checkInstanceDir(dir);
      driver = factory.create({
        placement: { instanceId: 'conformance', dir, address, port },
        binary,
        runner,
        logger: silentLogger(),
        defaultClientCidrs: ['127.0.0.0/8'],
      });
      // as the guest does before prepare: the engine serves TLS from its first start
      ca = await testCa();
      material = await ca.issue({ address, validityDays: 90 });
      await driver.installTls(material);
    });

    after(async () => {
      await driver?.stop().catch(() => undefined);
      if (root !== undefined) {
        await fixture.cleanUp?.(root).catch(() => undefined);
        await rm(root, { recursive: true, force: true });
      }
    });

    test('has an admin object exactly for each declared capability', () => {
      assert.equal(driver.databases !== undefined, caps.databases, 'driver.databases');
      assert.equal(driver.users !== undefined, caps.users, 'driver.users');
      assert.equal(driver.users?.access !== undefined, caps.userAccess, 'driver.users.access');
      assert.equal(driver.root !== undefined, caps.root, 'driver.root');
      if (caps.userAccess) assert.ok(caps.databases && caps.users, 'userAccess needs databases and users');
      if (caps.userHosts || caps.characterSets) assert.ok(caps.users || caps.databases);
    });

    test('prepares: initialises, configures, starts; the tenant writes and reads', async () => {
      await driver.prepare(input);
      assert.equal(await driver.health(), 'healthy');
      const pid = await driver.processId();
      assert.ok(pid !== undefined && (await isProcessAlive(pid)), 'a live engine process');
      await asTenant(async (session) => {
        await fixture.write(session, 'k1', 'hello ☃');
        assert.equal(await fixture.read(session, 'k1'), 'hello ☃');
      });
    });

    test('converges when prepare is delivered again, keeping the running engine and the data', async () => {
      const pid = await driver.processId();
      await driver.prepare(input);
      assert.equal(await driver.processId(), pid);
      assert.equal(await driver.health(), 'healthy');
      await asTenant(async (session) => assert.equal(await fixture.read(session, 'k1'), 'hello ☃'));
      if (caps.databases) {
        const names = (await driver.databases!.list()).map((d) => d.name).sort();
        assert.deepEqual(names, ['app', 'victim']);
      }
      if (caps.users) assert.deepEqual((await driver.users!.list()).map((u) => u.name), ['tenant']);
    });

    test("measures itself for its metrics: tenants' connections (not the guest's), the data's size, an operations counter that grows", async () => {
      const before = await driver.metrics();
      assert.ok(before !== undefined, 'a healthy engine answers');
      await asTenant(async (session) => {
        for (let i = 0; i < 5; i += 1) await fixture.write(session, `metrics-${i}`, 'counted');
        // statistics reach the engine's counters within a second or so (PostgreSQL flushes them when a session idles)
        const during = await eventually(
          'the operations counter to grow',
          async () => (await driver.metrics())!,
          (m) => m.operations > before.operations && m.connections >= 1,
          15_000,
        );
        assert.ok(during.databaseBytes > 0, JSON.stringify(during));
        if (during.cacheHitRatio !== undefined) assert.ok(during.cacheHitRatio >= 0 && during.cacheHitRatio <= 1);
        assert.equal(during.replicationLagSeconds, undefined, 'no lag outside replication');
      });
      // the tenant's session is gone: its connection is no longer counted (the guest's own never was)
      await eventually('the connection to close', async () => (await driver.metrics())!.connections, (n) => n === 0, 15_000);
    });

    test('is locked down: its own address only, passwords always, no admin over TCP', async () => {
      // the tenant's valid login, on another address of the same port
      await refused({ address: otherAddress, user: tenant.user, password: tenant.password, database: tenantDatabase });
      await refused({ user: tenant.user, password: undefined, database: tenantDatabase });
      await refused({ user: tenant.user, password: `${tenant.password}x`, database: tenantDatabase });
      await refused({ user: '', password: undefined }, 'no anonymous login');
      await refused({ user: '', password: '' }, 'no anonymous login with an empty password');
      if (fixture.rootUser !== undefined) await refused({ user: fixture.rootUser, password: undefined });
      if (fixture.adminUser !== undefined) {
        await refused({ user: fixture.adminUser, password: adminPassword }, 'the admin user never logs in over TCP');
        await refused({ user: fixture.adminUser, password: undefined });
      }
    });

    test('names its log files inside the instance directory', async () => {
      const files = Object.entries(driver.logFiles());
      assert.ok(files.length > 0);
      for (const [name, path] of files) {
        assert.ok(isAbsolute(path), `${name}: ${path}`);
        const inside = relative(dir, path);
        assert.ok(!inside.startsWith('..') && !isAbsolute(inside), `${name}: ${path} is outside ${dir}`);
        assert.ok((await stat(path)).isFile(), `${name}: ${path} exists`);
      }
    });

    if (caps.databases) {
      describe('databases', () => {
        const names = fixture.hostileDatabaseNames ?? defaultHostileNames;

        test('creates, lists and deletes', async () => {
          const databases = driver.databases!;
          await databases.create([{ name: 'one' }, { name: 'two' }]);
          const listed = (await databases.list()).map((d) => d.name).sort();
          assert.deepEqual(listed, ['app', 'one', 'two', 'victim']);
          await databases.delete('one');
          await databases.delete('two');
          assert.deepEqual((await databases.list()).map((d) => d.name).sort(), ['app', 'victim']);
        });

        test('answers DatabaseAlreadyExists (creating none of the batch) and DatabaseNotFound', async () => {
          const databases = driver.databases!;
          await rejectsWithCode(databases.create([{ name: 'fresh' }, { name: 'app' }]), 'DatabaseAlreadyExists');
          assert.ok(!(await databases.list()).some((d) => d.name === 'fresh'), 'nothing of the batch was created');
          await rejectsWithCode(databases.delete('absent'), 'DatabaseNotFound');
        });

        test('keeps hostile names exact and never breaks out of them', async () => {
          const databases = driver.databases!;
          await databases.create(names.map((name) => ({ name })));
          const listed = (await databases.list()).map((d) => d.name);
          for (const name of names) assert.ok(listed.includes(name), `lists ${JSON.stringify(name)}`);
          assert.ok(listed.includes('victim'), 'no statement broke out of a name');
          for (const name of names) await databases.delete(name);
          assert.deepEqual((await databases.list()).map((d) => d.name).sort(), ['app', 'victim']);
        });

        if (caps.characterSets) {
          test('creates a database with a character set and collation', async () => {
            assert.ok(fixture.characterSet, 'an engine with characterSets needs fixture.characterSet');
            const spec = { name: 'charset db', ...fixture.characterSet };
            await driver.databases!.create([spec]);
            const found = (await driver.databases!.list()).find((d) => d.name === spec.name);
            assert.deepEqual(
              { characterSet: found?.characterSet, collate: found?.collate },
              { characterSet: spec.characterSet, collate: spec.collate },
            );
            await driver.databases!.delete(spec.name);
          });
        }
      });
    }

    if (caps.users) {
      describe('users', () => {
        const names = fixture.hostileUserNames ?? defaultHostileNames;
        const db = caps.userAccess ? 'app' : undefined;
        const dbs = db === undefined ? [] : [{ name: db }];

        test('creates a user that logs in, writes and reads; lists it; deletes it', async () => {
          const users = driver.users!;
          await users.create([{ name: 'u1', password: 'u1-Pass-word', databases: dbs }]);
          await as({ user: 'u1', password: 'u1-Pass-word', database: db }, async (session) => {
            await fixture.write(session, 'u1', 'from u1');
            assert.equal(await fixture.read(session, 'u1'), 'from u1');
          });
          const listed = (await users.list()).find((u) => u.name === 'u1');
          assert.deepEqual(listed, { name: 'u1', host: '%', databases: dbs });
          await users.delete({ name: 'u1', host: '%' });
          assert.ok(!(await users.list()).some((u) => u.name === 'u1'));
          await refused({ user: 'u1', password: 'u1-Pass-word', database: db });
        });

        test('answers UserAlreadyExists (creating none of the batch) and UserNotFound', async () => {
          const users = driver.users!;
          await rejectsWithCode(
            users.create([
              { name: 'fresh', password: 'fresh-Pass-1', databases: [] },
              { name: 'tenant', password: 'other-Pass-1', databases: [] },
            ]),
            'UserAlreadyExists',
          );
          assert.ok(!(await users.list()).some((u) => u.name === 'fresh'), 'nothing of the batch was created');
          // the existing user's password was not touched
          await asTenant(async () => undefined);
          const absent = { name: 'absent', host: '%' };
          await rejectsWithCode(users.delete(absent), 'UserNotFound');
          await rejectsWithCode(users.update(absent, { password: 'x-Pass-1' }), 'UserNotFound');
          await users.create([{ name: 'u2', password: 'u2-Pass-word', databases: [] }]);
          await rejectsWithCode(users.update({ name: 'u2', host: '%' }, { name: 'tenant' }), 'UserAlreadyExists');
          await users.delete({ name: 'u2', host: '%' });
        });

        test('renames a user and changes its password', async () => {
          const users = driver.users!;
          await users.create([{ name: 'before', password: 'old-Pass-1', databases: dbs }]);
          await users.update({ name: 'before', host: '%' }, { name: 'after' });
          await refused({ user: 'before', password: 'old-Pass-1', database: db });
          await as({ user: 'after', password: 'old-Pass-1', database: db }, async () => undefined);
          await users.update({ name: 'after', host: '%' }, { password: hostilePassword });
          await refused({ user: 'after', password: 'old-Pass-1', database: db });
          await as({ user: 'after', password: hostilePassword, database: db }, async () => undefined);
          const listed = (await users.list()).find((u) => u.name === 'after');
          assert.deepEqual(listed?.databases, dbs, 'a renamed user keeps its databases');
          await users.delete({ name: 'after', host: '%' });
        });

        test('keeps hostile user names and passwords exact', async () => {
          const users = driver.users!;
          await users.create(names.map((name) => ({ name, password: `${hostilePassword}${name}`, databases: dbs })));
          const listed = (await users.list()).map((u) => u.name);
          for (const name of names) assert.ok(listed.includes(name), `lists ${JSON.stringify(name)}`);
          for (const name of names) {
            await as({ user: name, password: `${hostilePassword}${name}`, database: db }, async () => undefined);
          }
          for (const name of names) await users.delete({ name, host: '%' });
          assert.deepEqual((await users.list()).map((u) => u.name), ['tenant']);
          if (caps.databases) assert.ok((await driver.databases!.list()).some((d) => d.name === 'victim'));
        });

        if (caps.userHosts) {
          test('limits a user to its host and moves it to another', async () => {
            const users = driver.users!;
            const [first, second] = [`${net}.200`, `${net}.201`];
            await users.create([{ name: 'hosted', password: 'hosted-Pass-1', host: first, databases: dbs }]);
            const login = (localAddress: string) => ({ user: 'hosted', password: 'hosted-Pass-1', database: db, localAddress });
            await as(login(first), async () => undefined);
            await refused(login(second));
            assert.ok((await users.list()).some((u) => u.name === 'hosted' && u.host === first));
            await users.update({ name: 'hosted', host: first }, { host: second });
            await as(login(second), async () => undefined);
            await refused(login(first));
            await rejectsWithCode(users.delete({ name: 'hosted', host: first }), 'UserNotFound');
            await users.delete({ name: 'hosted', host: second });
          });
        } else {
          test('answers BadRequest for a host other than %, which users of this engine do not have', async () => {
            const users = driver.users!;
            await rejectsWithCode(
              users.create([{ name: 'hosted', password: 'hosted-Pass-1', host: '10.0.0.1', databases: [] }]),
              'BadRequest',
            );
            assert.ok(!(await users.list()).some((u) => u.name === 'hosted'));
            await rejectsWithCode(users.update({ name: 'tenant', host: '%' }, { host: '10.%' }), 'BadRequest');
            await asTenant(async () => undefined);
          });
        }
      });
    }

    if (caps.userAccess) {
      describe('user access to databases', () => {
        test('grants and revokes: a user without access cannot reach the database', async () => {
          const users = driver.users!;
          const access = users.access!;
          await driver.databases!.create([{ name: 'shared' }]);
          await users.create([{ name: 'reader', password: 'reader-Pass-1', databases: [] }]);
          const login = { user: 'reader', password: 'reader-Pass-1', database: 'shared' };
          await refused(login, 'no access before the grant');
          await access.grant({ name: 'reader', host: '%' }, ['shared', 'app']);
          await as(login, async (session) => {
            await fixture.write(session, 'r', 'granted');
            assert.equal(await fixture.read(session, 'r'), 'granted');
          });
          const listed = (await users.list()).find((u) => u.name === 'reader');
          assert.deepEqual(listed?.databases.map((d) => d.name).sort(), ['app', 'shared']);
          await access.revoke({ name: 'reader', host: '%' }, 'shared');
          await refused(login, 'no access after the revoke');
          await rejectsWithCode(access.revoke({ name: 'reader', host: '%' }, 'shared'), 'DatabaseNotFound');
          await rejectsWithCode(access.revoke({ name: 'absent', host: '%' }, 'app'), 'UserNotFound');
          assert.deepEqual((await users.list()).find((u) => u.name === 'reader')?.databases, [{ name: 'app' }]);
          await users.delete({ name: 'reader', host: '%' });
          await driver.databases!.delete('shared');
        });
      });
    }

    if (caps.root) {
      describe('root', () => {
        test('enables root, which logs in and writes; disables it, which locks it out', async () => {
          const rootAdmin = driver.root!;
          const password = `R00t ${hostilePassword}`;
          const name = await rootAdmin.enable(password);
          if (fixture.rootUser !== undefined) assert.equal(name, fixture.rootUser);
          await as({ user: name, password, database: tenantDatabase }, async (session) => {
            await fixture.write(session, 'root', 'by root');
            assert.equal(await fixture.read(session, 'root'), 'by root');
          });
          if (caps.users) assert.ok(!(await driver.users!.list()).some((u) => u.name === name), 'root is not listed');
          // enabling again gives root the new password
          await rootAdmin.enable('Second-R00t-pass');
          await refused({ user: name, password, database: tenantDatabase });
          await as({ user: name, password: 'Second-R00t-pass', database: tenantDatabase }, async () => undefined);
          await rootAdmin.disable();
          await refused({ user: name, password: 'Second-R00t-pass', database: tenantDatabase }, 'root is locked out');
          await rootAdmin.disable();
          await asTenant(async () => undefined);
        });
      });
    }

    if (caps.accessRules) {
      describe('access rules', () => {
        test('refuses clients outside the allowed ranges, changed on the running engine', async () => {
          const inside = `${net}.130`;
          const outside = `${net}.20`;
          const from = (localAddress: string) => ({
            user: tenant.user,
            password: tenant.password,
            database: tenantDatabase,
            localAddress,
          });
          const pid = await driver.processId();
          await as(from(outside), async () => undefined);
          try {
            await driver.updateAccess({ allowedCidrs: [`${net}.128/25`] });
            await as(from(inside), async () => undefined);
            await refused(from(outside), 'a client outside the allowed ranges');
            await driver.updateAccess({ allowedCidrs: [`${net}.0/25`] });
            await as(from(outside), async () => undefined);
            await refused(from(inside));
          } finally {
            // the checks after this one log in from anywhere
            await driver.updateAccess(null);
          }
          await as(from(inside), async () => undefined);
          await as(from(outside), async () => undefined);
          assert.equal(await driver.processId(), pid, 'the running engine took the new rules');
        });
      });
    }

    describe('TLS', () => {
      test('serves TLS with its certificate for its address, verified against the CA', async () => {
        await asTls(tenantLogin(), async (session) => {
          assert.equal(fixture.serverCertificateSerial(session), serialOf(material.certificate));
          assert.equal(await fixture.read(session, 'k1'), 'hello ☃');
        });
        // and plaintext while TLS is not required
        await asTenant(async () => undefined);
      });

      test('is refused by a client that trusts another CA', async () => {
        const stranger = await newTestCa();
        await assert.rejects(asTls(tenantLogin(), async () => undefined, stranger.certificate), 'an unknown CA');
      });

      test('requires TLS on the running engine: plaintext refused, TLS accepted, and back', async () => {
        const pid = await driver.processId();
        await driver.updateAccess({ requireTls: true });
        try {
          await refused(tenantLogin(), 'plaintext while TLS is required');
          await asTls(tenantLogin(), async (session) => assert.equal(await fixture.read(session, 'k1'), 'hello ☃'));
        } finally {
          await driver.updateAccess(null);
        }
        await asTenant(async () => undefined);
        assert.equal(await driver.processId(), pid, 'no restart');
      });

      test('serves a renewed certificate after rotation, without a restart', async () => {
        const pid = await driver.processId();
        const before = serialOf(material.certificate);
        material = await ca.issue({ address, validityDays: 90 });
        assert.notEqual(serialOf(material.certificate), before);
        await driver.installTls(material);
        await asTls(tenantLogin(), async (session) => assert.equal(fixture.serverCertificateSerial(session), serialOf(material.certificate)));
        assert.equal(await driver.processId(), pid, 'no restart');
      });

      test('keeps the requirement and the certificate across a restart', async () => {
        await driver.updateAccess({ requireTls: true });
        try {
          await driver.stop();
          await driver.start();
          await refused(tenantLogin(), 'plaintext after a restart with TLS required');
          await asTls(tenantLogin(), async (session) => assert.equal(fixture.serverCertificateSerial(session), serialOf(material.certificate)));
        } finally {
          await driver.updateAccess(null);
        }
        await asTenant(async () => undefined);
      });
    });

    if (caps.configurationGroups) {
      describe('configuration groups', () => {
        const config = fixture.configuration!;
        const setting = (name: string) => asTenant((session) => config.setting(session, name));
        const { dynamic, restartOnly } = config;

        test('declares its parameters and refuses any other name before changing anything', async () => {
          assert.ok(fixture.configuration, 'an engine with configurationGroups needs fixture.configuration');
          const admin = driver.configuration!;
          assert.ok(admin !== undefined, 'driver.configuration');
          const names = admin.parameters.map((p) => p.name);
          assert.ok(names.includes(dynamic.name) && names.includes(restartOnly.name));
          assert.equal(admin.parameters.find((p) => p.name === dynamic.name)?.restartRequired, false);
          assert.equal(admin.parameters.find((p) => p.name === restartOnly.name)?.restartRequired, true);
          await rejectsWithCode(admin.apply({ [dynamic.name]: dynamic.value, no_such_parameter_here: 1 }), 'UnprocessableEntity');
          assert.equal(await setting(dynamic.name), dynamic.initial, 'nothing applied');
        });

        test('applies a dynamic parameter to the running engine, without a restart', async () => {
          const pid = await driver.processId();
          assert.deepEqual(await driver.configuration!.apply({ [dynamic.name]: dynamic.value }), { pendingRestart: [] });
          assert.equal(await setting(dynamic.name), dynamic.live);
          assert.equal(await driver.processId(), pid, 'no restart');
          const effective = await driver.configuration!.effective();
          assert.equal(effective[dynamic.name], dynamic.value, 'the effective configuration shows the override');
        });

        test('a restart-only parameter is pending until the next start, then live; the dynamic one stays', async () => {
          const pid = await driver.processId();
          const outcome = await driver.configuration!.apply({ [dynamic.name]: dynamic.value, [restartOnly.name]: restartOnly.value });
          assert.deepEqual(outcome.pendingRestart, [restartOnly.name]);
          assert.equal(await driver.processId(), pid, 'no restart yet');
          assert.equal(await setting(restartOnly.name), restartOnly.initial, 'the old value runs until the restart');
          await driver.stop();
          await driver.start();
          assert.equal(await setting(restartOnly.name), restartOnly.live);
          assert.equal(await setting(dynamic.name), dynamic.live, 'the dynamic override survives the restart');
        });

        test('keeps the overrides across a resize', async () => {
          await driver.resize(memory.initial + 64);
          assert.equal(await driver.health(), 'healthy');
          assert.equal(await setting(dynamic.name), dynamic.live);
          assert.equal(await setting(restartOnly.name), restartOnly.live);
        });

        test('a value the engine rejects leaves it serving on the previous values, with the parameter named', async () => {
          const { rejected } = config;
          const pid = await driver.processId();
          await assert.rejects(driver.configuration!.apply({ [dynamic.name]: dynamic.value, [rejected.name]: rejected.value }), (err: Error) => {
            assert.equal((err as { code?: string }).code, 'EngineError');
            assert.ok(err.message.includes(rejected.name), err.message);
            return true;
          });
          assert.equal(await driver.health(), 'healthy');
          assert.equal(await driver.processId(), pid, 'still the same engine process');
          assert.equal(await setting(dynamic.name), dynamic.live);
          await asTenant(async (session) => assert.equal(await fixture.read(session, 'k1'), 'hello ☃'));
          // and the previous values are what a restart brings back
          await driver.stop();
          await driver.start();
          assert.equal(await setting(dynamic.name), dynamic.live);
          assert.equal(await setting(restartOnly.name), restartOnly.live);
        });

        test('detaching ({}) brings back Coffer’s own values', async () => {
          const outcome = await driver.configuration!.apply({});
          assert.deepEqual(outcome.pendingRestart, [restartOnly.name]);
          assert.equal(await setting(dynamic.name), dynamic.initial);
          await driver.stop();
          await driver.start();
          assert.equal(await setting(restartOnly.name), restartOnly.initial);
          assert.equal((await driver.configuration!.effective())[dynamic.name] === dynamic.value, false);
        });
      });
    } else {
      test('has no configuration admin without capability configurationGroups', () => {
        assert.equal(driver.configuration, undefined);
      });
    }

    test('resizes: runs with settings for the new memory, keeping the data', async () => {
      const before = await asTenant((session) => fixture.memorySetting(session));
      const pid = await driver.processId();
      await driver.resize(memory.resized);
      assert.equal(await driver.health(), 'healthy');
      if (fixture.resizeRestarts === false) assert.equal(await driver.processId(), pid, 'changed live');
      else assert.notEqual(await driver.processId(), pid, 'restarted');
      await asTenant(async (session) => {
        assert.notEqual(await fixture.memorySetting(session), before);
        assert.equal(await fixture.read(session, 'k1'), 'hello ☃');
      });
    });

    test('stops and starts, reporting health and process id, keeping the data', async () => {
      const first = await driver.processId();
      assert.ok(first !== undefined);
      assert.ok(processesMentioning(dir).includes(first), 'the engine is found by its instance directory');
      await driver.stop();
      assert.equal(await driver.health(), 'stopped');
      assert.equal(await driver.processId(), undefined);
      // an exited engine this process has not reaped yet (a zombie) is gone too, as the guest counts it
      assert.equal(await isProcessAlive(first), false);
      // a stopped instance holds no memory: nothing of its engine (workers, helpers) runs on
      assert.deepEqual(processesMentioning(dir), [], 'no process runs under the instance directory');
      await refused({ user: tenant.user, password: tenant.password, database: tenantDatabase });
      await driver.stop();
      await driver.start();
      assert.equal(await driver.health(), 'healthy');
      const second = await driver.processId();
      assert.ok(second !== undefined && second !== first && (await isProcessAlive(second)));
      await driver.start();
      assert.equal(await driver.processId(), second, 'start adopts the running engine');
      await asTenant(async (session) => assert.equal(await fixture.read(session, 'k1'), 'hello ☃'));
    });
  });
}
