import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  agentContract,
  agentTopic,
  conductorContract,
  conductorTopic,
  createRpcClient,
  guestContract,
  guestTopic,
  serveRpc,
  type PrepareInput,
  type Subscription,
} from '../../src/bus/index.js';
import { CofferError, newUuid, silentLogger, type ConfigurationParameter, type ConfigurationValues } from '../../src/common/index.js';
import { startConductor, type Conductor } from '../../src/conductor/index.js';
import { startTaskmanager, type Taskmanager } from '../../src/taskmanager/index.js';
import { fakeGuestHandlers, noCapabilities } from '../support/fake-guest.js';
import { eventually } from '../support/wait.js';
import { adminSession, json, memberSession, startHarness, type Harness, type Session } from './api-harness.js';

// Configuration groups end to end inside one process, over HTTP: the real API, taskmanager and
// conductor on one SQLite store and the in-process bus, with a fake agent that reports its engine
// versions (parameters included) and fake guests that keep overrides as an engine does: dynamic
// ones live at once, restart-only ones pending until a restart, a value the "engine" refuses
// leaving the previous ones in place.

const parameters: ConfigurationParameter[] = [
  { name: 'max_connections', type: 'integer', restartRequired: true, min: 10, max: 1000 },
  { name: 'work_mem', type: 'integer', restartRequired: false, min: 64, max: 2_147_483_647 },
  { name: 'log_statement', type: 'string', restartRequired: false },
  { name: 'jit', type: 'boolean', restartRequired: false },
  { name: 'random_page_cost', type: 'float', restartRequired: false },
  { name: 'ssl_key_password', type: 'string', restartRequired: false },
];
const restartOnly = new Set(parameters.filter((p) => p.restartRequired).map((p) => p.name));
/** a value inside the rules that the fake engine refuses, as an engine refuses one too large for its memory */
const refusedWorkMem = 999_999;
const host = 'host-cfg';

/** What a fake engine runs with and what its guest was asked. */
interface FakeEngine {
  prepares: PrepareInput[];
  applied: ConfigurationValues[];
  /** the overrides as last applied */
  overrides: ConfigurationValues;
  /** the values the running process started with */
  running: ConfigurationValues;
  /** the generation of the desired state last applied, as a guest records it */
  generation: number;
}

let h: Harness;
let conductor: Conductor;
let taskmanager: Taskmanager;
let agent: Subscription;
let admin: Session;
let alice: Session;
let bob: Session;
const engines = new Map<string, FakeEngine>();
const guests: Subscription[] = [];

function heartbeat(instanceId: string, status: 'BUILDING' | 'HEALTHY'): Promise<void> {
  return createRpcClient(h.transport, conductorContract, conductorTopic).heartbeat({ instanceId, status });
}

async function serveGuest(instanceId: string): Promise<void> {
  const engine: FakeEngine = { prepares: [], applied: [], overrides: {}, running: {}, generation: 0 };
  engines.set(instanceId, engine);
  const pending = () => [...restartOnly].filter((name) => engine.overrides[name] !== engine.running[name]);
  guests.push(
    await serveRpc(
      h.transport,
      guestContract,
      guestTopic(instanceId),
      fakeGuestHandlers({
        prepare: async (input) => {
          engine.prepares.push(input);
          engine.overrides = { ...input.overrides };
          engine.running = { ...input.overrides };
          engine.generation = Math.max(engine.generation, input.generation ?? 0);
          await heartbeat(instanceId, 'BUILDING');
          await heartbeat(instanceId, 'HEALTHY');
        },
        restart: async () => {
          engine.running = { ...engine.overrides };
          await heartbeat(instanceId, 'HEALTHY');
          return {};
        },
        applyConfiguration: async ({ overrides, generation }) => {
          engine.applied.push(overrides);
          if (overrides.work_mem === refusedWorkMem) {
            throw new CofferError('EngineError', `work_mem: the engine refused ${refusedWorkMem}: not enough memory for this flavor`);
          }
          engine.overrides = { ...overrides };
          engine.generation = Math.max(engine.generation, generation ?? 0);
          return { pendingRestart: pending(), generation: engine.generation };
        },
        getConfiguration: async () => ({ values: { port: 5432, shared_buffers: '128MB', ...engine.running, ...engine.overrides } }),
      }),
    ),
  );
}

before(async () => {
  h = await startHarness({ rateLimitPerMinute: 100_000 });
  conductor = await startConductor({ store: h.store, transport: h.transport, logger: silentLogger() });
  taskmanager = await startTaskmanager({
    store: h.store,
    transport: h.transport,
    logger: silentLogger(),
    leaseMs: 2_000,
    sweepIntervalMs: 20,
    statusPollMs: 10,
    healthyWaitMs: 5_000,
    actionTimeoutMs: 2_000,
  });
  agent = await serveRpc(h.transport, agentContract, agentTopic(host), {
    createServer: async ({ instanceId }) => {
      if (!engines.has(instanceId)) await serveGuest(instanceId);
      return { instanceId, host, address: '127.88.0.9', port: 5432 };
    },
    deleteServer: async () => ({ deleted: true }),
    upgradeServer: async () => {
      throw new Error('no upgrade is asked of this agent');
    },
    listServers: async () => [],
  });
  const withGroups = { ...noCapabilities, configurationGroups: true };
  const report = (name: string, version: string, capabilities = withGroups, reported = parameters) => ({
    datastore: 'postgresql',
    manager: 'postgresql',
    name,
    version,
    active: true,
    inactiveReason: null,
    capabilities,
    parameters: reported,
  });
  await createRpcClient(h.transport, conductorContract, conductorTopic).agentHeartbeat({
    host,
    engines: [
      report('15', '15.19'),
      report('16', '16.4'),
      { ...report('7', '7.0.15', noCapabilities, []), datastore: 'redis', manager: 'redis' },
    ],
    contracts: { [agentContract.name]: agentContract.version, [guestContract.name]: guestContract.version },
  });
  await eventually('the agent’s versions registered', () => h.store.datastores.listVersions(), (v) => v.length >= 3);
  admin = await adminSession(h.app);
  alice = await memberSession(h, 'alice');
  bob = await memberSession(h, 'bob');
});

after(async () => {
  await taskmanager.stop();
  for (const g of guests) await g.close();
  await agent.close();
  await conductor.stop();
  await h.close();
});

const headers = (s: Session) => ({ 'x-auth-token': s.token, host: 'db.example' });
const trove = (s: Session, path: string) => `/v1.0/${s.projectId}${path}`;

function call(s: Session, method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, payload?: unknown) {
  return h.app.inject({ method, url: trove(s, path), headers: headers(s), ...(payload === undefined ? {} : { payload: payload as object }) });
}

async function createGroup(s: Session, values: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await call(s, 'POST', '/configurations', {
    configuration: { name: `group-${newUuid().slice(0, 6)}`, values, datastore: { type: 'postgresql', version: '15' }, ...extra },
  });
  assert.equal(res.statusCode, 200, res.body);
  return json(res).configuration.id;
}

function expectFault(res: { statusCode: number; body: string }, status: number, fault: string, message: string): void {
  assert.equal(res.statusCode, status, res.body);
  assert.deepEqual(json(res as never), { [fault]: { code: status, message } });
}

/** An instance made through POST /instances, once its create finished (ACTIVE, HEALTHY). */
async function createInstance(s: Session, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await call(s, 'POST', '/instances', {
    instance: { name: `db-${newUuid().slice(0, 6)}`, flavorRef: '2', volume: { size: 1 }, datastore: { type: 'postgresql', version: '15' }, ...extra },
  });
  assert.equal(res.statusCode, 200, res.body);
  const id: string = json(res).instance.id;
  await settled(s, id);
  return id;
}

/** The instance view once no task runs on the instance any more (UPDATING shows ACTIVE, so the store says). */
async function settled(s: Session, id: string) {
  await eventually(
    `instance ${id} without a running task`,
    async () => ({ task: await h.store.tasks.activeForInstance(id), row: await h.store.instances.get(id) }),
    ({ task, row }) => task === undefined && row !== undefined && !['BUILDING', 'UPDATING', 'REBOOTING'].includes(row.taskStatus),
  );
  return json((await call(s, 'GET', `/instances/${id}`)) as never).instance;
}

async function attach(s: Session, instanceId: string, configurationId: string | null, method: 'PUT' | 'PATCH' = 'PUT') {
  return call(s, method, `/instances/${instanceId}`, { instance: { configuration: configurationId } });
}

describe('configuration groups: create, show, list, change, delete', () => {
  test('POST answers 200 with the detail view; values under the parameters’ own names, passwords masked', async () => {
    const res = await call(alice, 'POST', '/configurations', {
      configuration: {
        name: 'reporting',
        description: 'for the reports',
        values: { MAX_CONNECTIONS: 200, work_mem: 8192, jit: false, random_page_cost: 1.5, ssl_key_password: 'hush' },
        datastore: { type: 'postgresql', version: '15' },
      },
    });
    assert.equal(res.statusCode, 200, res.body);
    const group = json(res).configuration;
    assert.equal(res.body.includes('hush'), false, 'a password value is never shown back');
    assert.deepEqual({ ...group, id: '<id>', created: '<t>', updated: '<t>', datastore_version_id: '<v>' }, {
      id: '<id>',
      name: 'reporting',
      description: 'for the reports',
      created: '<t>',
      updated: '<t>',
      datastore_version_id: '<v>',
      datastore_name: 'postgresql',
      datastore_version_name: '15',
      datastore_version_number: '15.19',
      values: { max_connections: 200, work_mem: 8192, jit: false, random_page_cost: 1.5, ssl_key_password: '***' },
      instance_count: 0,
    });
    assert.match(group.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
    const stored = await h.store.configurations.get(group.id);
    assert.equal(stored?.values.ssl_key_password, 'hush', 'the value itself is kept for the engine');
    assert.equal(stored?.tenantId, alice.projectId);

    const shown = await call(alice, 'GET', `/configurations/${group.id}`);
    assert.equal(shown.statusCode, 200);
    assert.deepEqual(json(shown).configuration, group);
  });

  test('without a datastore the request names none, as Trove; a description may be left out (null)', async () => {
    const res = await call(alice, 'POST', '/configurations', { configuration: { name: 'x', values: {} } });
    expectFault(res, 400, 'badRequest', 'Please specify datastore. No default datastore is defined.');
    const id = await createGroup(alice, {});
    assert.equal(json(await call(alice, 'GET', `/configurations/${id}`)).configuration.description, null);
  });

  test('values are checked against the version’s parameters: Trove’s 422 messages, nothing saved', async () => {
    const before = (await h.store.configurations.list({ tenantId: alice.projectId, limit: 20 })).items.length;
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ no_such_setting: 1 }, 'The configuration parameter no_such_setting is not supported for this datastore: postgresql 15.'],
      [{ max_connections: '200' }, 'The value provided for the configuration parameter max_connections is not of type integer.'],
      [{ max_connections: true }, 'The value provided for the configuration parameter max_connections is not of type integer.'],
      [{ max_connections: 1.5 }, 'The value provided for the configuration parameter max_connections is not of type integer.'],
      [{ jit: 1 }, 'The value provided for the configuration parameter jit is not of type boolean.'],
      [{ max_connections: 9 }, 'The value for the configuration parameter max_connections is less than the minimum allowed: 10'],
      [{ max_connections: 1001 }, 'The value for the configuration parameter max_connections is greater than the maximum allowed: 1000'],
      [{ log_statement: 'all\nshared_preload_libraries = evil' }, 'The value for the configuration parameter log_statement cannot contain line breaks or other control characters.'],
      [{ log_statement: 'all\tx' }, 'The value for the configuration parameter log_statement cannot contain line breaks or other control characters.'],
      [{ log_statement: 'all\u007f' }, 'The value for the configuration parameter log_statement cannot contain line breaks or other control characters.'],
      [{ log_statement: { nested: 1 } }, 'The value provided for the configuration parameter log_statement is not of type string.'],
    ];
    for (const [values, message] of cases) {
      const res = await call(alice, 'POST', '/configurations', { configuration: { name: 'bad', values, datastore: { type: 'postgresql', version: '15' } } });
      expectFault(res, 422, 'unprocessableEntity', message);
    }
    const redis = await call(alice, 'POST', '/configurations', { configuration: { name: 'r', values: {}, datastore: { type: 'redis', version: '7' } } });
    expectFault(redis, 422, 'unprocessableEntity', 'Configuration groups are not supported for this datastore: redis 7');
    const noName = await call(alice, 'POST', '/configurations', { configuration: { values: {}, datastore: { type: 'postgresql' } } });
    assert.equal(noName.statusCode, 400);
    assert.match(json(noName).badRequest.message, /^Validation error: configuration 'name' is a required property/);
    const noValues = await call(alice, 'POST', '/configurations', { configuration: { name: 'n', values: [1], datastore: { type: 'postgresql' } } });
    assert.equal(noValues.statusCode, 400, noValues.body);
    const unknownDatastore = await call(alice, 'POST', '/configurations', { configuration: { name: 'n', values: {}, datastore: { type: 'oracle' } } });
    assert.equal(unknownDatastore.statusCode, 404, unknownDatastore.body);
    assert.equal((await h.store.configurations.list({ tenantId: alice.projectId, limit: 20 })).items.length, before);
  });

  test('PUT replaces the values, name and description (202); PATCH adds and changes values (200, no body)', async () => {
    const id = await createGroup(alice, { work_mem: 1024, jit: true }, { description: 'first' });
    const bad = await call(alice, 'PUT', `/configurations/${id}`, { configuration: { values: { work_mem: 1 } } });
    expectFault(bad, 422, 'unprocessableEntity', 'The value for the configuration parameter work_mem is less than the minimum allowed: 64');
    const put = await call(alice, 'PUT', `/configurations/${id}`, { configuration: { values: { log_statement: 'ddl' }, name: 'renamed', description: 'second' } });
    assert.equal(put.statusCode, 202, put.body);
    assert.equal(put.body, '');
    let shown = json(await call(alice, 'GET', `/configurations/${id}`)).configuration;
    assert.deepEqual([shown.name, shown.description, shown.values], ['renamed', 'second', { log_statement: 'ddl' }]);
    const patch = await call(alice, 'PATCH', `/configurations/${id}`, { configuration: { values: { WORK_MEM: 2048, log_statement: 'all' } } });
    assert.equal(patch.statusCode, 200, patch.body);
    assert.equal(patch.body, '');
    assert.match(String(patch.headers['content-type']), /application\/json/);
    shown = json(await call(alice, 'GET', `/configurations/${id}`)).configuration;
    assert.deepEqual(shown.values, { log_statement: 'all', work_mem: 2048 });
    const noValues = await call(alice, 'PATCH', `/configurations/${id}`, { configuration: { name: 'x' } });
    assert.equal(noValues.statusCode, 400, noValues.body);
  });

  test('DELETE answers 202, and the group is gone (404 with Trove’s message)', async () => {
    const id = await createGroup(alice, {});
    const res = await call(alice, 'DELETE', `/configurations/${id}`);
    assert.equal(res.statusCode, 202, res.body);
    expectFault(await call(alice, 'GET', `/configurations/${id}`), 404, 'itemNotFound', `Configuration group with ID ${id} could not be found.`);
    expectFault(await call(alice, 'DELETE', `/configurations/${id}`), 404, 'itemNotFound', `Configuration group with ID ${id} could not be found.`);
  });

  test('lists page by page by id, at most 20 a page, with a next link only while more follow', async () => {
    const carol = await memberSession(h, 'carol');
    const ids: string[] = [];
    for (let n = 0; n < 3; n++) ids.push(await createGroup(carol, { work_mem: 64 + n }));
    ids.sort();
    const first = await call(carol, 'GET', '/configurations?limit=2');
    assert.equal(first.statusCode, 200);
    const page = json(first);
    assert.deepEqual(page.configurations.map((c: { id: string }) => c.id), ids.slice(0, 2));
    assert.equal(page.configurations[0].values, undefined, 'list items have no values');
    assert.equal(page.configurations[0].datastore_version_number, '15.19');
    assert.deepEqual(page.links, [{ rel: 'next', href: `https://db.example/v1.0/${carol.projectId}/configurations?limit=2&marker=${ids[1]}` }]);
    const second = json(await call(carol, 'GET', `/configurations?limit=2&marker=${ids[1]}`));
    assert.deepEqual([second.configurations.map((c: { id: string }) => c.id), second.links], [ids.slice(2), undefined]);
    assert.equal(json(await call(carol, 'GET', '/configurations?limit=100')).configurations.length, 3);
  });
});

describe('configuration groups belong to their project', () => {
  test('another project’s group is 404 exactly as an unknown one, and not in its list; admins see all', async () => {
    const id = await createGroup(alice, { work_mem: 100 });
    const unknown = newUuid();
    for (const [method, path, payload] of [
      ['GET', '', undefined],
      ['GET', '/instances', undefined],
      ['PUT', '', { configuration: { values: {} } }],
      ['PATCH', '', { configuration: { values: {} } }],
      ['DELETE', '', undefined],
    ] as const) {
      const theirs = await call(bob, method, `/configurations/${id}${path}`, payload);
      const none = await call(bob, method, `/configurations/${unknown}${path}`, payload);
      assert.equal(theirs.statusCode, 404, `${method} ${path}: ${theirs.body}`);
      assert.equal(theirs.body.replaceAll(id, '<id>'), none.body.replaceAll(unknown, '<id>'));
    }
    assert.equal((await h.store.configurations.get(id))?.values.work_mem, 100, 'nothing changed');
    assert.equal(json(await call(bob, 'GET', '/configurations?limit=20')).configurations.some((c: { id: string }) => c.id === id), false);
    const all: string[] = [];
    for (let path = '/configurations'; ; ) {
      const page = json(await call(admin, 'GET', path));
      all.push(...page.configurations.map((c: { id: string }) => c.id));
      const next = page.links?.[0]?.href as string | undefined;
      if (next === undefined) break;
      path = next.slice(next.indexOf('/configurations'));
    }
    assert.ok(all.includes(id), 'an admin lists every project’s groups');
    assert.equal(json(await call(admin, 'GET', `/configurations/${id}`)).configuration.id, id);
  });

  test('a group of another project cannot be attached or used at create: 404', async () => {
    const id = await createGroup(alice, {});
    const instance = await createInstance(bob);
    expectFault(await attach(bob, instance, id), 404, 'itemNotFound', `Configuration group with ID ${id} could not be found.`);
    const res = await call(bob, 'POST', '/instances', {
      instance: { name: 'x', flavorRef: '2', volume: { size: 1 }, datastore: { type: 'postgresql', version: '15' }, configuration: id },
    });
    expectFault(res, 404, 'itemNotFound', `Configuration group with ID ${id} could not be found.`);
  });
});

describe('attaching and detaching', () => {
  test('attach applies the values live: the view shows the group, the group counts the instance; detach sends {}', async () => {
    const group = await createGroup(alice, { work_mem: 4096, log_statement: 'ddl', ssl_key_password: 'hush' });
    const id = await createInstance(alice);
    const res = await attach(alice, id, group);
    assert.equal(res.statusCode, 202, res.body);
    assert.equal(res.body, '');
    const view = await settled(alice, id);
    assert.deepEqual([view.status, view.operating_status], ['ACTIVE', 'HEALTHY']);
    assert.deepEqual(view.configuration, {
      id: group,
      name: json(await call(alice, 'GET', `/configurations/${group}`)).configuration.name,
      links: [
        { href: `https://db.example/v1.0/${alice.projectId}/configurations/${group}`, rel: 'self' },
        { href: `https://db.example/configurations/${group}`, rel: 'bookmark' },
      ],
    });
    assert.deepEqual(engines.get(id)?.applied, [{ work_mem: 4096, log_statement: 'ddl', ssl_key_password: 'hush' }]);
    assert.equal(json(await call(alice, 'GET', `/configurations/${group}`)).configuration.instance_count, 1);
    const listed = await call(alice, 'GET', `/configurations/${group}/instances`);
    assert.equal(listed.statusCode, 200);
    assert.deepEqual(json(listed), { instances: [{ id, name: view.name }] });

    const effective = await call(alice, 'GET', `/instances/${id}/configuration`);
    assert.equal(effective.statusCode, 200, effective.body);
    assert.deepEqual(json(effective), {
      instance: { configuration: { port: 5432, shared_buffers: '128MB', work_mem: 4096, log_statement: 'ddl', ssl_key_password: '***' } },
    });
    await h.store.serviceStatuses.set({ instanceId: id, status: 'SHUTDOWN', updatedAt: new Date() });
    const stopped = await call(alice, 'GET', `/instances/${id}/configuration`);
    assert.equal(stopped.statusCode, 422);
    assert.match(json(stopped).unprocessableEntity.message, /Its configuration needs operating_status HEALTHY or ACTIVE; the instance shows SHUTDOWN\.$/);
    await heartbeat(id, 'HEALTHY');

    expectFault(await attach(alice, id, group), 400, 'badRequest', `Instance ${id} already has a Configuration Group attached: ${group}.`);

    const detached = await attach(alice, id, null, 'PATCH');
    assert.equal(detached.statusCode, 202, detached.body);
    const after = await settled(alice, id);
    assert.equal(after.configuration, undefined);
    assert.deepEqual(engines.get(id)?.applied.at(-1), {});
    assert.equal(json(await call(alice, 'GET', `/configurations/${group}`)).configuration.instance_count, 0);
    // detaching without a group is nothing to do
    assert.equal((await attach(alice, id, null)).statusCode, 202);
    assert.equal(engines.get(id)?.applied.length, 2);

    // an empty PUT detaches too, as Trove's update did and `trove configuration-detach` sends
    assert.equal((await attach(alice, id, group)).statusCode, 202);
    await settled(alice, id);
    const empty = await call(alice, 'PUT', `/instances/${id}`, { instance: {} });
    assert.equal(empty.statusCode, 202, empty.body);
    assert.equal((await settled(alice, id)).configuration, undefined);
    assert.deepEqual(engines.get(id)?.applied.at(-1), {});
    // an empty PATCH changes nothing
    assert.equal((await attach(alice, id, group)).statusCode, 202);
    await settled(alice, id);
    assert.equal((await call(alice, 'PATCH', `/instances/${id}`, { instance: {} })).statusCode, 202);
    assert.equal((await settled(alice, id)).configuration?.id, group);
  });

  test('a restart-only value leaves RESTART_REQUIRED until a restart, which clears it', async () => {
    const group = await createGroup(alice, { max_connections: 300, work_mem: 1024 });
    const id = await createInstance(alice);
    assert.equal((await attach(alice, id, group)).statusCode, 202);
    const pending = await settled(alice, id);
    assert.deepEqual([pending.status, pending.operating_status], ['RESTART_REQUIRED', '']);
    assert.equal(pending.configuration.id, group);
    // a member may restart; a heartbeat meanwhile does not clear it
    await heartbeat(id, 'HEALTHY');
    assert.equal((await settled(alice, id)).status, 'RESTART_REQUIRED');
    const restart = await call(alice, 'POST', `/instances/${id}/action`, { restart: {} });
    assert.equal(restart.statusCode, 202, restart.body);
    const restarted = await eventually(
      'the restart done',
      async () => json(await call(alice, 'GET', `/instances/${id}`)).instance,
      (v) => v.status === 'ACTIVE' && v.operating_status === 'HEALTHY',
    );
    assert.equal(restarted.configuration.id, group);
    assert.deepEqual(engines.get(id)?.running, { max_connections: 300, work_mem: 1024 });
  });

  test('a value the engine refuses: the instance keeps its previous group and task, with the guest’s message as fault', async () => {
    const good = await createGroup(alice, { work_mem: 2048 });
    const refused = await createGroup(alice, { work_mem: refusedWorkMem });
    const id = await createInstance(alice);
    assert.equal((await attach(alice, id, refused)).statusCode, 202);
    const view = await eventually(
      'the failed attach ended',
      async () => json(await call(alice, 'GET', `/instances/${id}`)).instance,
      (v) => v.fault !== undefined && v.status === 'ACTIVE',
    );
    assert.equal(view.configuration, undefined, 'back to no group');
    assert.equal(view.operating_status, 'HEALTHY');
    assert.match(view.fault.message, /^Applying the configuration failed: work_mem: the engine refused 999999: not enough memory for this flavor\./);
    assert.equal(view.fault.details, null, 'details are for admins');
    assert.equal((await h.store.instances.get(id))?.configurationId, null);
    assert.deepEqual(engines.get(id)?.overrides, {}, 'the engine kept what it had');
    // the instance is usable again: a good group attaches
    assert.equal((await attach(alice, id, good)).statusCode, 202);
    assert.equal((await settled(alice, id)).configuration?.id, good);
    // changing the attached group to a refused value keeps the group, and the engine its values
    assert.equal((await call(alice, 'PATCH', `/configurations/${good}`, { configuration: { values: { work_mem: refusedWorkMem } } })).statusCode, 200);
    await eventually('the failed re-apply ended', async () => (await h.store.tasks.activeForInstance(id)) === undefined && (await h.store.instances.get(id))?.taskStatus === 'NONE', (done) => done);
    assert.equal((await h.store.instances.get(id))?.configurationId, good);
    assert.deepEqual(engines.get(id)?.overrides, { work_mem: 2048 });
    assert.match((await h.store.faults.latest(id))?.message ?? '', /keeps configuration group/);
  });

  test('generation: create ends 1/1, an attach raises desired and applied catches up, a refused apply leaves applied behind', async () => {
    const good = await createGroup(alice, { work_mem: 2048 });
    const id = await createInstance(alice);
    assert.deepEqual((await settled(alice, id)).generation, { desired: 1, applied: 1 });
    assert.equal(engines.get(id)?.prepares[0]?.generation, 1, 'prepare carries the create’s generation');

    assert.equal((await attach(alice, id, good)).statusCode, 202);
    // raised with the task, before any guest answered
    assert.equal((await h.store.instances.get(id))?.desiredGeneration, 2);
    assert.deepEqual((await settled(alice, id)).generation, { desired: 2, applied: 2 });
    assert.equal(engines.get(id)?.generation, 2);

    // a group change re-applied to the instance is a change too; the refused one stays unapplied
    assert.equal((await call(alice, 'PATCH', `/configurations/${good}`, { configuration: { values: { work_mem: refusedWorkMem } } })).statusCode, 200);
    const failed = await eventually(
      'the refused re-apply ended',
      async () => ({ task: await h.store.tasks.activeForInstance(id), view: json(await call(alice, 'GET', `/instances/${id}`)).instance }),
      ({ task, view }) => task === undefined && view.status === 'ACTIVE',
    );
    assert.deepEqual(failed.view.generation, { desired: 3, applied: 2 });
    assert.match(failed.view.fault.message, /^Applying the configuration failed: work_mem: the engine refused/);

    // detaching is the next change, and once applied everything asked for is live again
    assert.equal((await attach(alice, id, null)).statusCode, 202);
    assert.deepEqual((await settled(alice, id)).generation, { desired: 4, applied: 4 });
    // a restart changes nothing the instance should be
    assert.equal((await call(alice, 'POST', `/instances/${id}/action`, { restart: {} })).statusCode, 202);
    assert.deepEqual((await settled(alice, id)).generation, { desired: 4, applied: 4 });
  });

  test('attach and detach need an ACTIVE instance without a task (InvalidInstanceState, 400) and a group of its version', async () => {
    const group = await createGroup(alice, {});
    const id = await createInstance(alice);
    await h.store.instances.update(id, { taskStatus: 'RESTART_REQUIRED' });
    expectFault(await attach(alice, id, group), 400, 'badRequest', 'The operation you have requested cannot be executed because the instance status is currently: RESTART_REQUIRED.');
    await h.store.instances.update(id, { taskStatus: 'NONE' });
    await h.store.serviceStatuses.set({ instanceId: id, status: 'SHUTDOWN', updatedAt: new Date() });
    expectFault(await attach(alice, id, group), 400, 'badRequest', 'The operation you have requested cannot be executed because the instance status is currently: SHUTDOWN.');
    await h.store.serviceStatuses.set({ instanceId: id, status: 'HEALTHY', updatedAt: new Date() });
    const other = await call(alice, 'POST', '/configurations', { configuration: { name: 'v16', values: {}, datastore: { type: 'postgresql', version: '16' } } });
    const v16 = json(other).configuration.id;
    expectFault(await attach(alice, id, v16), 400, 'badRequest', 'Datastore Version on Configuration 16 does not match the Datastore Version on the instance 15.');
    const unknown = newUuid();
    expectFault(await attach(alice, id, unknown), 404, 'itemNotFound', `Configuration group with ID ${unknown} could not be found.`);
    const twoThings = await call(alice, 'PUT', `/instances/${id}`, { instance: { configuration: group, datastore_version: '15' } });
    expectFault(twoThings, 400, 'badRequest', "Only one attribute (except 'name') is allowed to update.");
    const notUuid = await call(alice, 'PUT', `/instances/${id}`, { instance: { configuration: '' } });
    assert.equal(notUuid.statusCode, 400);
    assert.equal((await h.store.instances.get(id))?.configurationId, null);
  });
});

describe('changing and deleting an attached group', () => {
  test('PATCH and PUT re-apply to every attached instance, one task each', async () => {
    const group = await createGroup(alice, { work_mem: 1024 });
    const a = await createInstance(alice, { configuration: group });
    const b = await createInstance(alice, { configuration: group });
    assert.equal((await call(alice, 'PATCH', `/configurations/${group}`, { configuration: { values: { log_statement: 'mod' } } })).statusCode, 200);
    for (const id of [a, b]) {
      await eventually(`${id} re-applied`, () => engines.get(id)!.applied.at(-1), (v) => v?.log_statement === 'mod');
      assert.deepEqual(engines.get(id)!.applied.at(-1), { work_mem: 1024, log_statement: 'mod' });
      await settled(alice, id);
    }
    assert.equal((await call(alice, 'PUT', `/configurations/${group}`, { configuration: { values: { max_connections: 50 } } })).statusCode, 202);
    for (const id of [a, b]) {
      const view = await eventually(`${id} re-applied again`, async () => json(await call(alice, 'GET', `/instances/${id}`)).instance, (v) => v.status === 'RESTART_REQUIRED');
      assert.equal(view.configuration.id, group);
      assert.deepEqual(engines.get(id)!.applied.at(-1), { max_connections: 50 });
    }
  });

  test('a change while an attached instance is busy is refused (422) and nothing is saved', async () => {
    const group = await createGroup(alice, { work_mem: 1024 });
    const id = await createInstance(alice, { configuration: group });
    await h.store.instances.update(id, { taskStatus: 'REBOOTING' });
    const res = await call(alice, 'PATCH', `/configurations/${group}`, { configuration: { values: { work_mem: 2048 } } });
    expectFault(res, 422, 'unprocessableEntity', `Instance ${id} is not currently available for an action to be performed (task status was REBOOTING).`);
    assert.equal((await h.store.configurations.get(group))?.values.work_mem, 1024);
    assert.equal(await h.store.tasks.activeForInstance(id), undefined);
    await h.store.instances.update(id, { taskStatus: 'NONE' });
  });

  test('a group attached to a live instance cannot be deleted (400); once detached, or its instance being deleted, it can', async () => {
    const group = await createGroup(alice, {});
    const id = await createInstance(alice, { configuration: group });
    expectFault(
      await call(alice, 'DELETE', `/configurations/${group}`),
      400,
      'badRequest',
      'A configuration group cannot be deleted if it is associated with one or more non-terminated instances. Detach the configuration group from all non-terminated instances and please try again.',
    );
    assert.equal((await attach(alice, id, null)).statusCode, 202);
    await eventually('detached', async () => (await h.store.instances.get(id))?.taskStatus, (t) => t === 'NONE');
    assert.equal((await call(alice, 'DELETE', `/configurations/${group}`)).statusCode, 202);

    // as in Trove, an instance being deleted lets go of its group at once
    const second = await createGroup(alice, {});
    const other = await createInstance(alice, { configuration: second });
    assert.equal((await call(alice, 'DELETE', `/instances/${other}`)).statusCode, 202);
    assert.equal((await call(alice, 'DELETE', `/configurations/${second}`)).statusCode, 202);
    await eventually('instance deleted', () => h.store.instances.get(other), (i) => i === undefined);
  });
});

describe('creating an instance with a group', () => {
  test('prepare starts the engine with the group’s values; the instance shows its group; an href works too', async () => {
    const group = await createGroup(alice, { work_mem: 512, jit: true });
    const id = await createInstance(alice, { configuration: `https://db.example/v1.0/${alice.projectId}/configurations/${group}` });
    assert.deepEqual(engines.get(id)?.prepares.map((p) => p.overrides), [{ work_mem: 512, jit: true }]);
    const view = await settled(alice, id);
    assert.deepEqual([view.status, view.configuration.id], ['ACTIVE', group]);
    const plain = await createInstance(alice);
    assert.deepEqual(engines.get(plain)?.prepares.map((p) => p.overrides), [{}]);
  });

  test('a group of another version is refused (400), an unknown one is 404, and nothing is created', async () => {
    const v16 = json(await call(alice, 'POST', '/configurations', { configuration: { name: 'v16', values: {}, datastore: { type: 'postgresql', version: '16' } } })).configuration.id;
    const before = await h.store.instances.countActive(alice.projectId);
    const body = (configuration: string) => ({
      instance: { name: 'x', flavorRef: '2', volume: { size: 1 }, datastore: { type: 'postgresql', version: '15' }, configuration },
    });
    expectFault(await call(alice, 'POST', '/instances', body(v16)), 400, 'badRequest', 'Datastore Version on Configuration 16 does not match the Datastore Version on the instance 15.');
    const unknown = newUuid();
    expectFault(await call(alice, 'POST', '/instances', body(unknown)), 404, 'itemNotFound', `Configuration group with ID ${unknown} could not be found.`);
    assert.equal(await h.store.instances.countActive(alice.projectId), before);
  });
});

describe('the instance’s configuration and the management parameter views', () => {
  test('GET /instances/{id}/configuration needs an engine with configuration groups (422)', async () => {
    const redis = await call(alice, 'POST', '/instances', { instance: { name: 'r', flavorRef: '2', volume: { size: 1 }, datastore: { type: 'redis', version: '7' } } });
    const id = json(redis).instance.id;
    await settled(alice, id);
    expectFault(await call(alice, 'GET', `/instances/${id}/configuration`), 422, 'unprocessableEntity', 'Operation not supported for datastore redis.');
    assert.equal((await call(bob, 'GET', `/instances/${id}/configuration`)).statusCode, 404);
  });

  test('mgmt parameters: admins read Trove’s management view; nobody adds, changes or deletes one', async () => {
    const version = (await h.store.datastores.listVersions()).find((v) => v.name === '15' && v.manager === 'postgresql')!;
    const list = await call(admin, 'GET', `/mgmt/datastores/versions/${version.id}/parameters`);
    assert.equal(list.statusCode, 200);
    assert.deepEqual(json(list)['configuration-parameters'][0], {
      name: 'max_connections',
      datastore_version_id: version.id,
      restart_required: true,
      type: 'integer',
      max_size: 1000,
      min_size: 10,
    });
    const one = await call(admin, 'GET', `/mgmt/datastores/versions/${version.id}/parameters/log_statement`);
    assert.deepEqual(json(one), { name: 'log_statement', datastore_version_id: version.id, restart_required: false, type: 'string', max_size: null, min_size: null });
    assert.equal((await call(admin, 'GET', `/mgmt/datastores/versions/${version.id}/parameters/nope`)).statusCode, 404);
    assert.equal((await call(admin, 'GET', `/mgmt/datastores/versions/${newUuid()}/parameters`)).statusCode, 400);
    expectFault(await call(alice, 'GET', `/mgmt/datastores/versions/${version.id}/parameters`), 401, 'unauthorized', 'User does not have admin privileges.');
    const create = await call(admin, 'POST', `/mgmt/datastores/versions/${version.id}/parameters`, {
      'configuration-parameter': { name: 'archive_command', data_type: 'string', restart_required: 0 },
    });
    assert.equal(create.statusCode, 501, create.body);
    assert.match(json(create).notImplemented.message, /published by each datastore version's engine/);
    assert.equal((await call(admin, 'DELETE', `/mgmt/datastores/versions/${version.id}/parameters/work_mem`)).statusCode, 501);
    assert.equal((await h.store.datastores.getVersion(version.id))?.parameters.length, parameters.length);
  });
});
