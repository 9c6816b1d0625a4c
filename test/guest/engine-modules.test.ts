import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { noEngineCapabilities, silentLogger } from '../../src/common/index.js';
import type { EngineIdentity } from '../../src/guest/engines/binary-discovery.js';
import {
  capabilitiesOf,
  defineEngine,
  parametersOf,
  type ConfigurationModule,
  type DatabasesModule,
  type EngineModules,
  type LifecycleModule,
  type RootModule,
  type UsersModule,
} from '../../src/guest/engines/engine-modules.js';
import type { EngineContext, EngineDriver, EngineLifecycle, UserAdmin } from '../../src/guest/engines/engine.js';
import { engineNames, engineRegistry, type ProcessRunner } from '../../src/guest/index.js';
import { localRunner } from './engine-fixture.js';

// What an engine supports follows from the modules it is made of: the capabilities it reports
// (to the agent, and through it to the API's up-front checks) and the admin objects its drivers
// have are both derived from its module record, for the engines of the registry and for any
// engine defined the same way.

const idleRunner: ProcessRunner = {
  run: () => Promise.reject(new Error('no programs in this test')),
  spawnDetached: () => Promise.reject(new Error('no programs in this test')),
  stream: () => {
    throw new Error('no programs in this test');
  },
  handOver: async () => undefined,
  ready: async () => undefined,
};

function context(runner: ProcessRunner = idleRunner): EngineContext {
  return {
    placement: { instanceId: 'i-modules', dir: '/nonexistent/coffer-engine-modules', address: '127.0.0.1', port: 1 },
    binary: undefined,
    runner,
    logger: silentLogger(),
    defaultClientCidrs: ['0.0.0.0/0'],
  };
}

/** What a driver's admin objects say it can do, in the capabilities' terms. */
function driverShape(driver: EngineDriver) {
  return {
    databases: driver.databases !== undefined,
    users: driver.users !== undefined,
    userAccess: driver.users?.access !== undefined,
    root: driver.root !== undefined,
    configurationGroups: driver.configuration !== undefined,
  };
}

describe('engines of the registry', () => {
  for (const name of engineNames) {
    const factory = engineRegistry[name];

    it(`${name}: the capabilities it declares are those its modules imply`, () => {
      assert.deepEqual(factory.capabilities, capabilitiesOf(factory.modules));
      assert.equal(factory.capabilities.databases, factory.modules.databases !== undefined);
      assert.equal(factory.capabilities.configurationGroups, factory.modules.configuration !== undefined);
    });

    it(`${name}: each version it reports carries its modules' capabilities and parameters`, async () => {
      // real discovery: versions found active, missing ones inactive; each is reported the same way
      const discovery = await factory.discover([], await localRunner());
      assert.ok(discovery.reports.length > 0);
      const modules = capabilitiesOf(factory.modules);
      // an installation without the tool that copies a cluster (PostgreSQL's npm builds lack
      // pg_basebackup) reports no backups or replicas, and nothing else differs
      const withoutCopies = { ...modules, backup: false, incrementalBackup: false, pointInTimeRecovery: false, replication: false };
      for (const report of discovery.reports) {
        assert.equal(report.manager, name);
        assert.ok(isDeepStrictEqual(report.capabilities, modules) || isDeepStrictEqual(report.capabilities, withoutCopies), `${report.name}: ${JSON.stringify(report.capabilities)}`);
        assert.deepEqual(report.parameters, parametersOf(factory.modules), report.name);
      }
    });

    it(`${name}: a driver has exactly the admin objects of its modules`, () => {
      const driver = factory.create(context());
      const caps = factory.capabilities;
      assert.deepEqual(driverShape(driver), {
        databases: caps.databases,
        users: caps.users,
        userAccess: caps.userAccess,
        root: caps.root,
        configurationGroups: caps.configurationGroups,
      });
      assert.deepEqual(
        driver.configuration?.parameters.map((p) => p.name).sort(),
        factory.modules.configuration?.parameters.map((p) => p.name).sort(),
      );
    });
  }

  it('the engines differ where their modules do (Redis has no databases module)', () => {
    assert.equal(engineRegistry.redis.modules.databases, undefined);
    assert.equal(engineRegistry.redis.capabilities.databases, false);
    assert.equal(engineRegistry.redis.capabilities.userAccess, false);
    assert.equal(engineRegistry.postgresql.capabilities.databases, true);
    assert.equal(engineRegistry.postgresql.capabilities.userHosts, false);
    assert.equal(engineRegistry.mariadb.capabilities.userHosts, true);
  });
});

describe('a hypothetical engine', () => {
  class ToyLifecycle implements EngineLifecycle {
    constructor(readonly context: EngineContext) {}
    prepare = async () => ({ initMs: 0, startMs: 0, setupMs: 0 });
    start = async () => undefined;
    stop = async () => undefined;
    health = async () => 'stopped' as const;
    metrics = async () => undefined;
    release = () => undefined;
    processId = async () => undefined;
    resize = async () => undefined;
    updateAccess = async () => undefined;
    installTls = async () => undefined;
    logFiles = () => ({ general: '/dev/null' });
    refuseWrites = async () => undefined;
  }
  const lifecycle: LifecycleModule<ToyLifecycle> = { accessRules: false, create: (ctx) => new ToyLifecycle(ctx) };
  // no `access`: users that cannot be given databases
  const userAdmin: UserAdmin & { readonly access?: undefined } = {
    list: async () => [],
    create: async () => undefined,
    delete: async () => undefined,
    update: async () => undefined,
  };
  const users: UsersModule<ToyLifecycle> = { userHosts: true, userAccess: false, create: () => userAdmin };
  const databases: DatabasesModule<ToyLifecycle> = {
    characterSets: false,
    create: () => ({ list: async () => [], create: async () => undefined, delete: async () => undefined }),
  };
  const root: RootModule<ToyLifecycle> = { create: () => ({ enable: async () => 'root', disable: async () => undefined }) };
  const configuration: ConfigurationModule<ToyLifecycle> = {
    parameters: [{ name: 'toy_setting', type: 'integer', restartRequired: false, min: 1 }],
    create: () => ({ parameters: configuration.parameters, apply: async () => ({ pendingRestart: [] }), effective: async () => ({}) }),
  };
  const definition = {
    manager: 'toy',
    rootReachesOsUser: false,
    standardPort: 1,
    tlsPort: (port: number) => port,
    checkInstanceDir: () => undefined,
    discover: async (_dirs: readonly string[], _runner: ProcessRunner, identity: EngineIdentity) => ({
      binaries: [],
      reports: [{ ...identity, name: '1', version: '1.0', active: false, inactiveReason: 'a toy' }],
    }),
  };

  it('without a module, reports its capability false and its drivers lack the admin object', async () => {
    const toy = defineEngine({ ...definition, modules: { lifecycle, users } });
    assert.deepEqual(toy.capabilities, { ...noEngineCapabilities, users: true, userHosts: true });
    const driver = toy.create(context());
    assert.deepEqual(driverShape(driver), { databases: false, users: true, userAccess: false, root: false, configurationGroups: false });
    assert.equal(driver.users, userAdmin);
    const [report] = (await toy.discover([], idleRunner)).reports;
    assert.deepEqual(report?.capabilities, toy.capabilities);
    assert.deepEqual(report?.parameters, []);
  });

  it('with only a lifecycle, supports nothing but what the lifecycle declares', () => {
    const bare = defineEngine({ ...definition, modules: { lifecycle: { ...lifecycle, accessRules: true } } });
    assert.deepEqual(bare.capabilities, { ...noEngineCapabilities, accessRules: true });
    assert.deepEqual(driverShape(bare.create(context())), {
      databases: false,
      users: false,
      userAccess: false,
      root: false,
      configurationGroups: false,
    });
  });

  it('with every module, reports each capability and its drivers have each admin object', async () => {
    const withAccess: UsersModule<ToyLifecycle> = {
      userHosts: false,
      userAccess: true,
      create: () => ({ ...userAdmin, access: { grant: async () => undefined, revoke: async () => undefined } }),
    };
    const modules: EngineModules<ToyLifecycle> = { lifecycle, databases, users: withAccess, root, configuration };
    const full = defineEngine({ ...definition, modules });
    assert.deepEqual(full.capabilities, {
      ...noEngineCapabilities,
      databases: true,
      users: true,
      userAccess: true,
      root: true,
      configurationGroups: true,
    });
    assert.deepEqual(driverShape(full.create(context())), {
      databases: true,
      users: true,
      userAccess: true,
      root: true,
      configurationGroups: true,
    });
    const [report] = (await full.discover([], idleRunner)).reports;
    assert.deepEqual(report?.parameters, configuration.parameters);
  });

  it('refuses a users module that grants databases without a databases module', () => {
    const withAccess: UsersModule<ToyLifecycle> = {
      userHosts: false,
      userAccess: true,
      create: () => ({ ...userAdmin, access: { grant: async () => undefined, revoke: async () => undefined } }),
    };
    assert.throws(() => defineEngine({ ...definition, modules: { lifecycle, users: withAccess } }), /userAccess needs a databases module/);
  });

  it('cannot pair a users module and its access flag otherwise, nor declare backup or replication (checked by the compiler)', () => {
    // @ts-expect-error userAccess true: the admin object must have `access`
    const missingAccess: UsersModule<ToyLifecycle> = { userHosts: false, userAccess: true, create: () => userAdmin };
    const withAccess = {
      ...userAdmin,
      access: { grant: async () => undefined, revoke: async () => undefined },
    };
    // @ts-expect-error userAccess false: the admin object must not have `access`
    const extraAccess: UsersModule<ToyLifecycle> = { userHosts: false, userAccess: false, create: () => withAccess };
    // @ts-expect-error no backup module exists yet: no engine can claim one
    const backup: EngineModules<ToyLifecycle> = { lifecycle, backup: {} };
    assert.ok(missingAccess && extraAccess && backup);
  });
});
