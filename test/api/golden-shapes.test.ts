import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { z } from 'zod';
import { guestContract, guestTopic, serveRpc, type Subscription } from '../../src/bus/index.js';
import { LocalDirectoryStorage } from '../../src/backup/index.js';
import { newUuid } from '../../src/common/ids.js';
import { fakeGuestHandlers, noCapabilities } from '../support/fake-guest.js';
import { makeDataDir } from '../support/temp-dir.js';
import {
  adminPassword,
  adminSession,
  json,
  memberSession,
  passwordAuth,
  seedDatastores,
  startHarness,
  type Harness,
  type Session,
} from './api-harness.js';
import * as shape from './golden-shapes.js';
import { registeredRoutes } from './route-table.js';

// Every endpoint Coffer serves answers with every field Trove (or Keystone) answers, each of the
// right type, and with nothing secret. The API runs in-process over a real SQLite state store;
// guests are fakes on the in-process bus.

const memberPassword = 'pw-member';
const userPassword = 'Golden-user-pass-1';

let h: Harness;
let admin: Session;
let member: Session;
let seeded: Awaited<ReturnType<typeof seedDatastores>>;
let backupDir: Awaited<ReturnType<typeof makeDataDir>>;
const guests: Subscription[] = [];

before(async () => {
  backupDir = await makeDataDir('coffer-golden-backups');
  h = await startHarness({ rateLimitPerMinute: 10_000, backupStorage: new LocalDirectoryStorage(backupDir.path) });
  admin = await adminSession(h.app);
  member = await memberSession(h, 'golden');
  seeded = await seedDatastores(h.store);
  // What a PostgreSQL agent reports for its version: the administrative capabilities and the
  // configuration parameters its engine validates.
  const version = (await h.store.datastores.getVersion(seeded.activeVersionId))!;
  await h.store.datastores.upsertVersion({
    ...version,
    capabilities: { ...noCapabilities, databases: true, users: true, userAccess: true, root: true, accessRules: true, configurationGroups: true, backup: true, replication: true },
    parameters: [
      { name: 'max_connections', type: 'integer', restartRequired: true, min: 1, max: 10_000 },
      { name: 'work_mem', type: 'integer', restartRequired: false, min: 0, max: 2_147_483_647 },
    ],
  });
});
after(async () => {
  for (const g of guests) await g.close();
  await h.close();
  await backupDir.remove();
});

const host = 'db.example';
const secrets = () => [adminPassword, memberPassword, userPassword, admin.token, member.token];

/** `METHOD url` of every request the shapes below were checked on, for the coverage test at the end. */
const requested: string[] = [];

function inject(options: InjectOptions & { method: string; url: string }) {
  requested.push(`${options.method} ${options.url.split('?')[0]}`);
  return h.app.inject(options);
}

function get(s: Session | undefined, url: string) {
  return inject({ method: 'GET', url, headers: { host, ...(s === undefined ? {} : { 'x-auth-token': s.token }) } });
}

function send(s: Session, method: 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: object) {
  return inject({ method, url, headers: { host, 'x-auth-token': s.token }, ...(payload === undefined ? {} : { payload }) });
}

const trove = (s: Session, path: string) => `/v1.0/${s.projectId}${path}`;

/** Asserts the status, the shape and the absence of secrets; returns the body. */
function golden(what: string, res: LightMyRequestResponse, status: number, body: Parameters<typeof shape.assertShape>[1], allowed: string[] = []) {
  assert.equal(res.statusCode, status, `${what}: ${res.statusCode} ${res.body}`);
  assert.match(String(res.headers['content-type']), /^application\/json/, `${what} is JSON`);
  const parsed = json(res);
  shape.assertShape(what, body, parsed);
  shape.assertNoSecrets(what, parsed, secrets(), allowed);
  return parsed;
}

/** An ACTIVE instance with an address, written to the store, and a fake guest answering for it. */
async function activeInstance(s: Session, name: string): Promise<string> {
  const id = newUuid();
  const now = new Date();
  await h.store.instances.create({
    id,
    name,
    tenantId: s.projectId,
    flavorId: '2',
    volumeSizeGb: 2,
    datastoreVersionId: seeded.activeVersionId,
    taskStatus: 'NONE',
    taskDescription: '',
    taskStartTime: null,
    access: { isPublic: false, allowedCidrs: ['10.0.0.0/8'] },
    createdAt: now,
    updatedAt: now,
  });
  await h.store.instances.update(id, {
    host: 'host-a',
    address: '127.97.9.9',
    port: 5432,
    // as the conductor records a guest's report
    tls: { caCertificate: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n', expiresAt: '2027-03-02T21:00:00.000Z', port: 5432 },
  });
  await h.store.serviceStatuses.set({ instanceId: id, status: 'HEALTHY', updatedAt: now });
  // as the conductor keeps what a heartbeat carried
  await h.store.serviceStatuses.report(id, { volumeUsage: { usedBytes: 1024 ** 3, measuredAt: now } });
  guests.push(
    await serveRpc(
      h.transport,
      guestContract,
      guestTopic(id),
      fakeGuestHandlers({
        listDatabases: async () => ({ databases: [{ name: 'app' }, { name: 'reports' }] }),
        createDatabases: async () => ({}),
        deleteDatabase: async () => ({}),
        listUsers: async () => ({ users: [{ name: 'app', host: '%', databases: [{ name: 'app' }] }] }),
        createUsers: async () => ({}),
        deleteUser: async () => ({}),
        updateUser: async () => ({}),
        grantAccess: async () => ({}),
        revokeAccess: async () => ({}),
        enableRoot: async () => ({ name: 'root' }),
        disableRoot: async () => ({}),
        getConfiguration: async () => ({ values: { max_connections: 100, work_mem: 4096, listen_addresses: '127.97.9.9' } }),
        getReplicationStatus: async () => ({ role: 'source' as const, replicas: [{ replicaId: 'replica-1', connected: true, lagBytes: 128, lagSeconds: 0.25 }, { replicaId: 'replica-2', connected: false }] }),
      }),
    ),
  );
  return id;
}

const list = (key: string, item: z.ZodType, min = 1) => z.object({ [key]: z.array(item).min(min) });
const one = (key: string, item: z.ZodType) => z.object({ [key]: item });

/** 202 (or `status`) with an empty body that still says it is JSON, as Trove answers. */
function empty(what: string, res: LightMyRequestResponse, status = 202) {
  assert.equal(res.statusCode, status, `${what}: ${res.statusCode} ${res.body}`);
  assert.equal(res.body, '', `${what} has no body`);
  if (status !== 204) assert.match(String(res.headers['content-type']), /^application\/json/, `${what} is JSON`);
}

describe('Trove: versions, flavors, datastores', () => {
  test('GET / (no token)', async () => {
    golden('GET /', await get(undefined, '/'), 200, shape.versionsDocument);
  });

  test('GET /healthz and /readyz (no token; Coffer\'s probes, outside Trove\'s API)', async () => {
    golden('GET /healthz', await get(undefined, '/healthz'), 200, z.strictObject({ status: z.literal('alive') }));
    const check = z.literal('ok');
    golden('GET /readyz', await get(undefined, '/readyz'), 200, z.strictObject({ status: z.literal('ready'), checks: z.strictObject({ stateDatabase: check, bus: check }) }));
  });

  test('GET /flavors, /flavors/{id}', async () => {
    golden('GET /flavors', await get(member, trove(member, '/flavors')), 200, list('flavors', shape.flavor));
    golden('GET /flavors/2', await get(member, trove(member, '/flavors/2')), 200, one('flavor', shape.flavor));
  });

  test('GET /datastores, /datastores/{ds} as a member', async () => {
    golden('GET /datastores', await get(member, trove(member, '/datastores')), 200, list('datastores', shape.datastore));
    const ds = golden('GET /datastores/postgresql', await get(member, trove(member, '/datastores/postgresql')), 200, one('datastore', shape.datastore));
    assert.equal(ds.datastore.default_version, seeded.activeVersionId, 'default_version is shown when set');
  });

  test('GET /datastores/{ds}/versions, /datastores/{ds}/versions/{v}, /datastores/versions/{uuid}', async () => {
    golden('GET versions', await get(member, trove(member, '/datastores/postgresql/versions')), 200, list('versions', shape.datastoreVersion));
    golden('GET version by name', await get(member, trove(member, '/datastores/postgresql/versions/15')), 200, one('version', shape.datastoreVersion));
    golden(
      'GET version by uuid',
      await get(member, trove(member, `/datastores/versions/${seeded.activeVersionId}`)),
      200,
      one('version', shape.datastoreVersion),
    );
  });

  test('the datastore views admins see carry the version administration fields', async () => {
    golden(
      'GET /datastores (admin)',
      await get(admin, trove(admin, '/datastores')),
      200,
      list('datastores', shape.datastore.extend({ versions: z.array(shape.datastoreVersionInListAdmin) })),
    );
    golden(
      'GET versions (admin)',
      await get(admin, trove(admin, '/datastores/postgresql/versions')),
      200,
      list('versions', shape.datastoreVersionAdmin),
    );
  });
});

describe('Trove: instances', () => {
  test('POST /instances answers 200 with the detail view in BUILD, without the passwords', async () => {
    const res = await send(member, 'POST', trove(member, '/instances'), {
      instance: {
        name: 'golden-create',
        flavorRef: '1',
        volume: { size: 1 },
        datastore: { type: 'postgresql', version: '15' },
        databases: [{ name: 'app' }],
        users: [{ name: 'app', password: userPassword, databases: [{ name: 'app' }] }],
      },
    });
    const body = golden('POST /instances', res, 200, one('instance', shape.instanceDetail));
    assert.deepEqual(body.instance.tls, { required: false, ca_certificate: null, expires: null, port: null }, 'nothing reported yet');
    assert.equal(body.instance.status, 'BUILD');
    assert.equal(body.instance.operating_status, '');
  });

  test('GET /instances, /instances/detail, with the next link when there is another page', async () => {
    await activeInstance(member, 'golden-list-a');
    await activeInstance(member, 'golden-list-b');
    golden('GET /instances', await get(member, trove(member, '/instances')), 200, list('instances', shape.instanceSummary, 2));
    const withAddresses = (await get(member, trove(member, '/instances'))).json().instances.filter((i: any) => i.ip !== undefined);
    shape.assertShape('listed instance with an address', z.array(shape.instanceSummaryWithAddress).min(2), withAddresses);
    golden('GET /instances/detail', await get(member, trove(member, '/instances/detail')), 200, list('instances', shape.instanceDetail, 2));
    const page = golden(
      'GET /instances?limit=1',
      await get(member, trove(member, '/instances?limit=1')),
      200,
      z.object({ instances: z.array(shape.instanceSummary).length(1), links: shape.nextLinks }),
    );
    assert.match(page.links[0].href, /[?&]marker=/);
    const last = golden('last page', await get(member, trove(member, '/instances?limit=100')), 200, list('instances', shape.instanceSummary));
    assert.equal('links' in last, false, 'no links key without a next page');
  });

  test('GET /instances/{id}: the detail view with volume.used; admins also see tenant, server, volume ids', async () => {
    const id = await activeInstance(member, 'golden-show');
    const shown = golden('GET /instances/{id}', await get(member, trove(member, `/instances/${id}`)), 200, one('instance', shape.instanceDetailWithAddress));
    assert.equal(typeof shown.instance.volume.used, 'number', 'volume.used as the heartbeats reported it');
    shape.assertShape('tls', shape.instanceTlsReported, shown.instance.tls);
    assert.equal(shown.instance.tls.expires, '2027-03-02T21:00:00');
    assert.equal('tenant_id' in shown.instance, false, 'tenant_id is for admins');
    golden('GET /instances/{id} (admin)', await get(admin, trove(admin, `/instances/${id}`)), 200, one('instance', shape.instanceDetailAdmin));
  });

  test('an instance fault is shown with its message, date and (for members) no details', async () => {
    const id = await activeInstance(member, 'golden-fault');
    await h.store.faults.record({ id: newUuid(), instanceId: id, message: 'engine failed to start', details: 'trace', createdAt: new Date() });
    const shown = golden('GET faulted instance', await get(member, trove(member, `/instances/${id}`)), 200, one('instance', shape.instanceDetail));
    shape.assertShape('fault', shape.instanceFault, shown.instance.fault);
    assert.equal(shown.instance.fault.details, null);
  });

  test("Coffer: GET /instances/{id}/events, newest first, with the next link when there is another page", async () => {
    const id = await activeInstance(member, 'golden-events');
    for (const [type, name, message] of [['task.started', 'restart', null], ['status', 'CRASHED', 'engine exited'], ['task.failed', 'restart', 'engine exited']] as const) {
      await h.store.instanceEvents.record({ instanceId: id, type, name, message, createdAt: new Date() });
    }
    const all = golden('GET events', await get(member, trove(member, `/instances/${id}/events`)), 200, z.object({ events: z.array(shape.instanceEvent).length(3) }));
    assert.deepEqual(all.events.map((e: { type: string }) => e.type), ['task.failed', 'status', 'task.started']);
    golden('GET events (page)', await get(member, trove(member, `/instances/${id}/events?limit=2`)), 200, z.object({ events: z.array(shape.instanceEvent).length(2), links: shape.nextLinks }));
  });

  test("Coffer: GET /instances/{id}/metrics, what the guest last measured of its engine (nulls until it did)", async () => {
    const id = await activeInstance(member, 'golden-metrics');
    const count = z.number().nonnegative().nullable();
    const metrics = (measured: z.ZodTypeAny) =>
      z.object({
        metrics: z.strictObject({
          instance_id: z.literal(id),
          operating_status: z.string().nullable(),
          up: z.boolean(),
          measured,
          connections: count,
          database_bytes: count,
          operations_total: count,
          cache_hit_ratio: z.number().min(0).max(1).nullable(),
          replication_lag_seconds: count,
        }),
      });
    golden('GET metrics (none yet)', await get(member, trove(member, `/instances/${id}/metrics`)), 200, metrics(z.null()));
    await h.store.serviceStatuses.report(id, { engineMetrics: { values: { connections: 2, databaseBytes: 8_000_000, operations: 42, cacheHitRatio: 0.9 }, measuredAt: new Date() } });
    const measured = golden('GET metrics', await get(member, trove(member, `/instances/${id}/metrics`)), 200, metrics(shape.troveTime));
    assert.equal(measured.metrics.connections, 2);
    golden("GET another project's metrics", await get(admin, trove(admin, `/instances/${newUuid()}/metrics`)), 404, shape.troveError('itemNotFound', 404));
  });

  test("Coffer: GET /instances/{id}/replication, each replica's streaming and lag as the guest reports them", async () => {
    const id = await activeInstance(member, 'golden-replication');
    const lag = z.number().nonnegative().nullable();
    const replica = z.strictObject({ id: z.string(), streaming: z.boolean(), lag_bytes: lag, lag_seconds: lag });
    const source = z.strictObject({ role: z.literal('source'), failover: z.boolean(), synchronous: z.boolean(), position: z.number().nullable(), replicas: z.array(replica).length(2) });
    const body = golden('GET replication', await get(member, trove(member, `/instances/${id}/replication`)), 200, z.strictObject({ replication: source }));
    assert.deepEqual(body.replication.replicas, [
      { id: 'replica-1', streaming: true, lag_bytes: 128, lag_seconds: 0.25 },
      { id: 'replica-2', streaming: false, lag_bytes: null, lag_seconds: null },
    ]);
    assert.equal(body.replication.failover, true);
    const changed = golden('PATCH replication', await send(member, 'PATCH', trove(member, `/instances/${id}/replication`), { replication: { failover: false } }), 200, z.strictObject({ replication: source }));
    assert.equal(changed.replication.failover, false);
  });

  test("GET and POST /instances/{id}/log: Trove's log objects, with its \"None\" strings until something is stored", async () => {
    const id = await activeInstance(member, 'golden-logs');
    const log = z.strictObject({
      name: z.string(),
      type: z.enum(['USER', 'SYS']),
      status: z.enum(['Disabled', 'Enabled', 'Unavailable', 'Ready', 'Published', 'Partial', 'Rotated', 'Restart Required']),
      published: z.number().int(),
      pending: z.number().int(),
      container: z.string(),
      prefix: z.string(),
      metafile: z.string(),
    });
    const listed = golden('GET log', await get(member, trove(member, `/instances/${id}/log`)), 200, z.strictObject({ logs: z.array(log).length(1) }));
    assert.deepEqual([listed.logs[0].name, listed.logs[0].container, listed.logs[0].prefix], ['general', 'None', 'None']);
    const published = golden('POST log', await send(member, 'POST', trove(member, `/instances/${id}/log`), { name: 'general', publish: 1 }), 200, z.strictObject({ log }));
    assert.deepEqual([published.log.status, published.log.container, published.log.prefix], ['Published', 'database_logs', `${id}/postgresql-general/`]);
    const contents = z.strictObject({ contents: z.strictObject({ name: z.literal('general'), text: z.string(), next: z.number().int(), more: z.boolean() }) });
    const read = golden('GET log contents', await get(member, trove(member, `/instances/${id}/log/general`)), 200, contents);
    assert.deepEqual(read.contents, { name: 'general', text: '', next: 0, more: false });
  });

  test('Coffer: POST /webhooks 202 (the secret this once), GET list and one without it, GET deliveries, DELETE 202', async () => {
    const created = golden('POST webhooks', await send(member, 'POST', trove(member, '/webhooks'), { webhook: { url: 'https://192.0.2.10/hook' } }), 202, one('webhook', shape.createdWebhook), ['webhook.secret']);
    const id = created.webhook.id as string;
    golden('GET webhooks', await get(member, trove(member, '/webhooks')), 200, z.object({ webhooks: z.array(shape.webhook).min(1) }));
    golden('GET webhook', await get(member, trove(member, `/webhooks/${id}`)), 200, one('webhook', shape.webhook));
    const instanceId = await activeInstance(member, 'golden-hooked');
    await h.store.instanceEvents.record({ instanceId, type: 'status', name: 'RUNNING', message: null, createdAt: new Date() });
    golden('GET webhook deliveries', await get(member, trove(member, `/webhooks/${id}/deliveries`)), 200, z.object({ deliveries: z.array(shape.webhookDelivery).length(1) }));
    empty('DELETE webhook', await send(member, 'DELETE', trove(member, `/webhooks/${id}`)));
  });

  test('DELETE /instances/{id} answers 202 with an empty JSON body', async () => {
    const id = await activeInstance(member, 'golden-delete');
    const res = await send(member, 'DELETE', trove(member, `/instances/${id}`));
    assert.equal(res.statusCode, 202, res.body);
    assert.equal(res.body, '');
    assert.match(String(res.headers['content-type']), /^application\/json/);
  });
});

describe('Trove: what goes with a datastore version, configuration parameters', () => {
  test('GET /datastores/{ds}/versions/{v}/flavors and /volume-types, /volume-types', async () => {
    golden('version flavors', await get(member, trove(member, '/datastores/postgresql/versions/15/flavors')), 200, list('flavors', shape.flavor));
    golden('version volume types', await get(member, trove(member, '/datastores/postgresql/versions/15/volume-types')), 200, list('volume_types', shape.volumeType));
    const types = golden('GET /volume-types', await get(member, trove(member, '/volume-types')), 200, list('volume_types', shape.volumeType));
    golden('GET /volume-types/{id}', await get(member, trove(member, `/volume-types/${types.volume_types[0].id}`)), 200, one('volume_type', shape.volumeType));
  });

  test('GET …/parameters and …/parameters/{name}, by datastore and by version uuid; min 0 left out', async () => {
    const params = z.object({ 'configuration-parameters': z.array(shape.configurationParameter).length(2) });
    const byName = golden('parameters', await get(member, trove(member, '/datastores/postgresql/versions/15/parameters')), 200, params);
    golden('parameters by uuid', await get(member, trove(member, `/datastores/versions/${seeded.activeVersionId}/parameters`)), 200, params);
    const workMem = golden('one parameter', await get(member, trove(member, '/datastores/postgresql/versions/15/parameters/work_mem')), 200, shape.configurationParameter);
    assert.equal('min' in workMem, false, 'min 0 is omitted, as Trove does');
    golden(
      'one parameter by uuid',
      await get(member, trove(member, `/datastores/versions/${seeded.activeVersionId}/parameters/max_connections`)),
      200,
      shape.configurationParameter.extend({ min: z.literal(1), max: z.literal(10_000) }),
    );
    assert.deepEqual(byName['configuration-parameters'].map((p: any) => p.name).sort(), ['max_connections', 'work_mem']);
  });
});

describe('Trove: configuration groups', () => {
  test('POST, GET list (with next link), GET one, its instances, PUT 202, PATCH 200, DELETE 202: all empty but the reads', async () => {
    const body = (name: string) => ({
      configuration: { name, description: 'golden', values: { max_connections: 200, work_mem: 1024 }, datastore: { type: 'postgresql', version: '15' } },
    });
    const created = golden('POST /configurations', await send(member, 'POST', trove(member, '/configurations'), body('golden-a')), 200, one('configuration', shape.configurationDetail));
    assert.equal(created.configuration.instance_count, 0);
    const second = golden('POST /configurations', await send(member, 'POST', trove(member, '/configurations'), body('golden-b')), 200, one('configuration', shape.configurationDetail));
    golden(
      'GET /configurations?limit=1',
      await get(member, trove(member, '/configurations?limit=1')),
      200,
      z.object({ configurations: z.array(shape.configurationSummary).length(1), links: shape.nextLinks }),
    );
    const id = created.configuration.id;
    golden('GET /configurations/{id}', await get(member, trove(member, `/configurations/${id}`)), 200, one('configuration', shape.configurationDetail));
    const instanceId = await activeInstance(member, 'golden-configured');
    await h.store.instances.update(instanceId, { configurationId: id });
    const members = golden('GET /configurations/{id}/instances', await get(member, trove(member, `/configurations/${id}/instances`)), 200, shape.configurationInstances);
    assert.deepEqual(members.instances, [{ id: instanceId, name: 'golden-configured' }]);
    const shown = golden('GET /instances/{id} with a group', await get(member, trove(member, `/instances/${instanceId}`)), 200, one('instance', shape.instanceDetail.extend({ configuration: shape.instanceConfigurationRef })));
    assert.equal(shown.instance.configuration.id, id);
    golden(
      'GET /instances/{id}/configuration',
      await get(member, trove(member, `/instances/${instanceId}/configuration`)),
      200,
      z.object({ instance: z.object({ configuration: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])) }) }),
    );
    // the attached instance takes the changes (the recording taskmanager leaves it UPDATING)
    empty('PATCH /configurations/{id}', await send(member, 'PATCH', trove(member, `/configurations/${id}`), { configuration: { values: { work_mem: 2048 } } }), 200);
    await h.store.instances.update(instanceId, { taskStatus: 'NONE' });
    empty('PUT /configurations/{id}', await send(member, 'PUT', trove(member, `/configurations/${id}`), { configuration: { values: { work_mem: 4096 }, name: 'golden-c' } }));
    empty('DELETE /configurations/{id}', await send(member, 'DELETE', trove(member, `/configurations/${second.configuration.id}`)));
    golden('DELETE attached', await send(member, 'DELETE', trove(member, `/configurations/${id}`)), 400, shape.troveError('badRequest', 400));
  });

  test('mgmt parameters: GET list and one (max_size/min_size); POST, PUT, DELETE answer 501', async () => {
    const base = trove(admin, `/mgmt/datastores/versions/${seeded.activeVersionId}/parameters`);
    golden('GET mgmt parameters', await get(admin, base), 200, z.object({ 'configuration-parameters': z.array(shape.mgmtConfigurationParameter).length(2) }));
    const workMem = golden('GET mgmt parameter', await get(admin, `${base}/work_mem`), 200, shape.mgmtConfigurationParameter);
    assert.equal(workMem.min_size, 0, 'the management view shows a 0 minimum');
    const refused = shape.troveError('notImplemented', 501);
    golden('POST mgmt parameter', await send(admin, 'POST', base, { 'configuration-parameter': { name: 'x', data_type: 'string', restart_required: 0 } }), 501, refused);
    golden('PUT mgmt parameter', await send(admin, 'PUT', `${base}/work_mem`, { 'configuration-parameter': { max_size: 1 } }), 501, refused);
    golden('DELETE mgmt parameter', await send(admin, 'DELETE', `${base}/work_mem`), 501, refused);
  });
});

describe('Trove: management datastore versions', () => {
  test('GET list and one; PATCH answers 202 empty; POST and DELETE answer 501', async () => {
    const listed = golden('GET mgmt versions', await get(admin, trove(admin, '/mgmt/datastore-versions')), 200, z.object({ versions: z.array(shape.mgmtDatastoreVersion).min(2) }));
    assert.ok(listed.versions.some((v: { active: boolean }) => !v.active), 'an inactive version is listed too');
    const base = trove(admin, `/mgmt/datastore-versions/${seeded.activeVersionId}`);
    golden('GET mgmt version', await get(admin, base), 200, z.object({ version: shape.mgmtDatastoreVersion }));
    empty('PATCH mgmt version', await send(admin, 'PATCH', base, { active: true }));
    const refused = shape.troveError('notImplemented', 501);
    golden('POST mgmt version', await send(admin, 'POST', trove(admin, '/mgmt/datastore-versions'), { version: { name: '18' } }), 501, refused);
    golden('DELETE mgmt version', await send(admin, 'DELETE', base), 501, refused);
  });
});

describe('Trove: instance update and actions', () => {
  test('PUT and PATCH /instances/{id} answer 202 with an empty JSON body', async () => {
    const id = await activeInstance(member, 'golden-update');
    empty('PUT name', await send(member, 'PUT', trove(member, `/instances/${id}`), { instance: { name: 'golden-renamed' } }));
    empty('PATCH name', await send(member, 'PATCH', trove(member, `/instances/${id}`), { instance: { name: 'golden-renamed-2' } }));
    empty('PUT access', await send(member, 'PUT', trove(member, `/instances/${id}`), { instance: { access: { is_public: true, allowed_cidrs: ['10.1.0.0/16'] } } }));
  });

  test('POST /instances/{id}/action: restart, resize flavor, resize volume answer 202 empty', async () => {
    empty('restart', await send(member, 'POST', trove(member, `/instances/${await activeInstance(member, 'golden-restart')}/action`), { restart: {} }));
    empty('resize flavor', await send(member, 'POST', trove(member, `/instances/${await activeInstance(member, 'golden-flavor')}/action`), { resize: { flavorRef: '3' } }));
    empty('resize volume', await send(member, 'POST', trove(member, `/instances/${await activeInstance(member, 'golden-volume')}/action`), { resize: { volume: { size: 3 } } }));
    golden('a smaller volume', await send(member, 'POST', trove(member, `/instances/${await activeInstance(member, 'golden-smaller')}/action`), { resize: { volume: { size: 1 } } }), 400, shape.troveError('badRequest', 400));
  });
});

describe('Trove: databases, users, root', () => {
  test('databases: GET list, POST 202, DELETE 202, GET one 501', async () => {
    const id = await activeInstance(member, 'golden-dbs');
    const base = trove(member, `/instances/${id}/databases`);
    golden('GET databases', await get(member, base), 200, shape.databaseList);
    empty('POST databases', await send(member, 'POST', base, { databases: [{ name: 'more' }] }));
    empty('DELETE database', await send(member, 'DELETE', `${base}/reports`));
    golden('GET one database', await get(member, `${base}/app`), 501, shape.troveError('notImplemented', 501));
  });

  test('users: list, create, show, update, change passwords, access, delete; no password ever shown', async () => {
    const id = await activeInstance(member, 'golden-users');
    const base = trove(member, `/instances/${id}/users`);
    golden('GET users', await get(member, base), 200, shape.userList);
    empty('POST users', await send(member, 'POST', base, { users: [{ name: 'bob', password: userPassword, databases: [{ name: 'app' }] }] }));
    golden('GET user', await get(member, `${base}/app`), 200, one('user', shape.user));
    empty('PUT user', await send(member, 'PUT', `${base}/app`, { user: { password: userPassword } }));
    empty('PUT users', await send(member, 'PUT', base, { users: [{ name: 'app', password: userPassword }] }));
    golden('GET user access', await get(member, `${base}/app/databases`), 200, shape.databaseList);
    empty('PUT user access', await send(member, 'PUT', `${base}/app/databases`, { databases: [{ name: 'reports' }] }));
    empty('DELETE user access', await send(member, 'DELETE', `${base}/app/databases/app`));
    empty('DELETE user', await send(member, 'DELETE', `${base}/app`));
  });

  test('root: GET false, POST 200 with the password, GET true, DELETE 204; mgmt root history', async () => {
    const id = await activeInstance(member, 'golden-root');
    const base = trove(member, `/instances/${id}/root`);
    const before = golden('GET root', await get(member, base), 200, shape.rootEnabled);
    assert.equal(before.rootEnabled, false);
    const res = await inject({ method: 'POST', url: base, headers: { host, 'x-auth-token': member.token } });
    const created = golden('POST root (no body)', res, 200, shape.rootCreated, ['user.password']);
    assert.ok(created.user.password.length >= 16);
    assert.equal((golden('GET root after', await get(member, base), 200, shape.rootEnabled)).rootEnabled, true);
    const history = golden('GET mgmt root', await get(admin, trove(admin, `/mgmt/instances/${id}/root`)), 200, shape.rootHistory);
    assert.equal(history.root_history.user, member.userId);
    empty('DELETE root', await send(member, 'DELETE', base), 204);
  });
});

describe('Trove: backups and backup strategies', () => {
  test('POST /backups 202 (NEW), GET list with next link, GET one, instance backups, DELETE 202; strategies POST 202, GET, DELETE 202', async () => {
    const instanceId = await activeInstance(member, 'golden-backups');
    const created = golden('POST /backups', await send(member, 'POST', trove(member, '/backups'), { backup: { name: 'nightly', instance: instanceId, description: 'golden' } }), 202, one('backup', shape.backup));
    assert.equal(created.backup.status, 'NEW');
    // as the conductor records a guest's report: a completed backup has its size and location
    await h.store.backups.update(created.backup.id, { state: 'COMPLETED', sizeBytes: 3 * 1024 ** 3, sha256: 'a'.repeat(64), facts: {} });
    const shown = golden('GET /backups/{id}', await get(member, trove(member, `/backups/${created.backup.id}`)), 200, one('backup', shape.backup));
    assert.equal(shown.backup.size, 3);
    assert.match(shown.backup.locationRef, new RegExp(created.backup.id));
    const second = golden('POST /backups', await send(member, 'POST', trove(member, '/backups'), { backup: { name: 'second', instance: instanceId } }), 202, one('backup', shape.backup));
    await h.store.backups.update(second.backup.id, { state: 'COMPLETED', sizeBytes: 1, sha256: 'b'.repeat(64), facts: {} });
    golden('GET /backups?limit=1', await get(member, trove(member, '/backups?limit=1')), 200, z.object({ backups: z.array(shape.backup).length(1), links: shape.nextLinks }));
    golden('GET /instances/{id}/backups', await get(member, trove(member, `/instances/${instanceId}/backups`)), 200, list('backups', shape.backup, 2));
    empty('DELETE /backups/{id}', await send(member, 'DELETE', trove(member, `/backups/${second.backup.id}`)));
    // Coffer's verification: 202 with no body, then the backup shows it RUNNING (no taskmanager runs here)
    empty('POST /backups/{id}/action verify', await send(member, 'POST', trove(member, `/backups/${created.backup.id}/action`), { verify: {} }));
    const verifying = golden('GET /backups/{id} verifying', await get(member, trove(member, `/backups/${created.backup.id}`)), 200, one('backup', shape.backup));
    assert.equal(verifying.backup.verification.status, 'RUNNING');
    golden('POST /backups/{id}/action twice', await send(member, 'POST', trove(member, `/backups/${created.backup.id}/action`), { verify: {} }), 422, shape.troveError('unprocessableEntity', 422));

    golden('POST /backup_strategies', await send(member, 'POST', trove(member, '/backup_strategies'), { backup_strategy: { swift_container: 'golden' } }), 202, one('backup_strategy', shape.backupStrategy));
    golden('GET /backup_strategies', await get(member, trove(member, '/backup_strategies')), 200, list('backup_strategies', shape.backupStrategy));
    empty('DELETE /backup_strategies', await send(member, 'DELETE', trove(member, '/backup_strategies')));
  });

  test('Coffer: PUT /instances/{id}/backup_schedule 200, GET 200 (after a run), DELETE 202', async () => {
    const instanceId = await activeInstance(member, 'golden-schedule');
    const path = trove(member, `/instances/${instanceId}/backup_schedule`);
    const set = golden('PUT backup_schedule', await send(member, 'PUT', path, { backup_schedule: { pattern: '30 2 * * *', retain_count: 7, name: 'nightly' } }), 200, one('backup_schedule', shape.backupSchedule));
    assert.equal(set.backup_schedule.last_run, null);
    // as a taskmanager's run records it
    const row = (await h.store.backupSchedules.get(instanceId))!;
    const runAt = new Date();
    assert.ok(await h.store.backupSchedules.claimRun(row.id, row.nextRunAt, new Date(Date.now() + 86_400_000), runAt));
    await h.store.backupSchedules.recordRun(row.id, runAt, { backupId: newUuid() });
    const shown = golden('GET backup_schedule', await get(member, path), 200, one('backup_schedule', shape.backupSchedule));
    assert.ok(shown.backup_schedule.last_run !== null && shown.backup_schedule.last_backup_id !== null);
    empty('DELETE backup_schedule', await send(member, 'DELETE', path));
  });
});

describe('Trove: limits, quotas, management', () => {
  test('GET /limits: ABSOLUTE first, then the five rate limits', async () => {
    const body = golden('GET /limits', await get(member, trove(member, '/limits')), 200, z.object({ limits: z.array(z.unknown()).length(6) }));
    shape.assertShape('absolute limits', shape.absoluteLimits, body.limits[0]);
    shape.assertShape('rate limits', z.array(shape.rateLimit).length(5), body.limits.slice(1));
  });

  test('GET /mgmt/quotas/{own project} as a member, PUT as an admin', async () => {
    const quotas = golden('GET quotas', await get(member, trove(member, `/mgmt/quotas/${member.projectId}`)), 200, shape.quotaList);
    assert.deepEqual(quotas.quotas.map((q: any) => q.resource).sort(), ['backups', 'instances', 'ram', 'volumes']);
    const updated = golden(
      'PUT quotas',
      await send(admin, 'PUT', trove(admin, `/mgmt/quotas/${member.projectId}`), { quotas: { instances: 50 } }),
      200,
      z.object({ quotas: z.object({ instances: z.literal(50) }) }),
    );
    assert.deepEqual(Object.keys(updated.quotas), ['instances']);
    golden('PUT quotas as a member', await send(member, 'PUT', trove(member, `/mgmt/quotas/${member.projectId}`), { quotas: { instances: 99 } }), 401, shape.troveError('unauthorized', 401));
  });

  test('GET /mgmt/instances, /mgmt/instances/{id}; POST /mgmt/instances/{id}/action', async () => {
    const id = await activeInstance(member, 'golden-mgmt');
    const all = golden('GET mgmt instances', await get(admin, trove(admin, '/mgmt/instances?deleted=False&include_clustered=False')), 200, list('instances', shape.mgmtInstance));
    assert.ok(all.instances.some((i: any) => i.id === id && i.tenant_id === member.projectId));
    golden('GET mgmt instance', await get(admin, trove(admin, `/mgmt/instances/${id}`)), 200, one('instance', shape.mgmtInstanceDetail));
    empty('POST mgmt action', await send(admin, 'POST', trove(admin, `/mgmt/instances/${id}/action`), { 'reset-task-status': {} }));
    golden('mgmt as a member', await get(member, trove(member, '/mgmt/instances')), 401, shape.troveError('unauthorized', 401));
    golden(
      'GET /mgmt/hosts',
      await get(admin, trove(admin, '/mgmt/hosts')),
      200,
      z.object({
        hosts: z.array(
          z.strictObject({ name: z.string(), instanceCount: z.number().int().nonnegative(), last_seen: shape.troveTime, alive: z.boolean(), engines: z.array(z.string()), contracts: z.record(z.string(), z.string()) }),
        ),
      }),
    );
    golden('GET /mgmt/hosts as a member', await get(member, trove(member, '/mgmt/hosts')), 401, shape.troveError('unauthorized', 401));
  });
});

describe('Trove: error bodies', () => {
  test('404 itemNotFound, 400 badRequest, 403 forbidden (tenant), 401 (no token)', async () => {
    golden('unknown instance', await get(member, trove(member, `/instances/${newUuid()}`)), 404, shape.troveError('itemNotFound', 404));
    golden('unknown route', await get(member, trove(member, '/no-such-thing')), 404, shape.troveError('itemNotFound', 404));
    golden('bad body', await send(member, 'POST', trove(member, '/instances'), { instance: {} }), 400, shape.troveError('badRequest', 400));
    golden('other tenant', await get(member, trove(admin, '/instances')), 403, shape.troveError('forbidden', 403));
    const res = await get(undefined, trove(member, '/instances'));
    golden('no token', res, 401, shape.keystoneError(401, 'Unauthorized'));
    assert.match(String(res.headers['www-authenticate']), /^Keystone uri=/);
  });
});

describe('Trove: 413 overLimit', () => {
  test('a project over its instance quota gets overLimit with the resource named', async () => {
    const s = await memberSession(h, 'golden-quota');
    const put = await send(admin, 'PUT', trove(admin, `/mgmt/quotas/${s.projectId}`), { quotas: { instances: 0 } });
    assert.equal(put.statusCode, 200, put.body);
    const res = await send(s, 'POST', trove(s, '/instances'), {
      instance: { name: 'over', flavorRef: '1', volume: { size: 1 }, datastore: { type: 'postgresql', version: '15' } },
    });
    const body = golden('quota exceeded', res, 413, shape.troveError('overLimit', 413));
    assert.match(body.overLimit.message, /Quota exceeded for resources: \['instances'\]/);
  });

  test('the rate limiter answers overLimit with details, retryAfter and a Retry-After header', async () => {
    const limited = await startHarness({ rateLimitPerMinute: 1 });
    try {
      const s = await adminSession(limited.app);
      const call = () => limited.app.inject({ method: 'GET', url: `/v1.0/${s.projectId}/flavors`, headers: { host, 'x-auth-token': s.token } });
      assert.equal((await call()).statusCode, 200);
      const res = await call();
      const body = golden(
        'rate limited',
        res,
        413,
        z.object({
          overLimit: z.object({
            code: z.literal(413),
            message: z.literal('This request was rate-limited.'),
            details: z.string().regex(/^Only 1 GET request\(s\) can be made to \* every minute\.$/),
            retryAfter: z.string().regex(/^\d+$/),
          }),
        }),
      );
      assert.equal(res.headers['retry-after'], body.overLimit.retryAfter);
    } finally {
      await limited.close();
    }
  });
});

describe('Keystone v3 subset', () => {
  test('discovery: GET /identity (300) and /identity/v3', async () => {
    golden('GET /identity', await get(undefined, '/identity'), 300, z.object({ versions: z.object({ values: z.array(shape.keystoneVersion).min(1) }) }));
    golden('GET /identity/v3', await get(undefined, '/identity/v3'), 200, z.object({ version: shape.keystoneVersion }));
  });

  test('tokens: issue (201 + X-Subject-Token), validate, revoke', async () => {
    const res = await inject({ method: 'POST', url: '/identity/v3/auth/tokens', headers: { host }, payload: passwordAuth('admin', adminPassword, 'admin') });
    const issued = golden('POST /auth/tokens', res, 201, shape.token);
    const subject = String(res.headers['x-subject-token']);
    assert.ok(subject.length >= 20);
    assert.ok(!res.body.includes(subject), 'the token is in the header only');
    const database = issued.token.catalog.find((s: any) => s.type === 'database');
    assert.ok(database.endpoints.every((e: any) => e.url.endsWith(`/v1.0/${issued.token.project.id}`)));
    const validated = await inject({
      method: 'GET',
      url: '/identity/v3/auth/tokens',
      headers: { host, 'x-auth-token': admin.token, 'x-subject-token': subject },
    });
    golden('GET /auth/tokens', validated, 200, shape.token);
    const revoked = await inject({
      method: 'DELETE',
      url: '/identity/v3/auth/tokens',
      headers: { host, 'x-auth-token': admin.token, 'x-subject-token': subject },
    });
    assert.equal(revoked.statusCode, 204);
  });

  test('projects, users, roles, grants, role assignments, domains', async () => {
    const p = golden(
      'POST /projects',
      await send(admin, 'POST', '/identity/v3/projects', { project: { name: 'golden-project', description: 'd', domain_id: 'default', enabled: true } }),
      201,
      one('project', shape.keystoneProject),
    );
    const projectId = p.project.id;
    golden('GET /projects', await get(admin, '/identity/v3/projects?name=golden-project'), 200, z.object({ projects: z.array(shape.keystoneProject).length(1), links: shape.keystoneListLinks }));
    golden('GET /projects/{id}', await get(admin, `/identity/v3/projects/${projectId}`), 200, one('project', shape.keystoneProject));
    golden('GET /auth/projects', await get(member, '/identity/v3/auth/projects'), 200, z.object({ projects: z.array(shape.keystoneProject).min(1), links: shape.keystoneListLinks }));
    golden('PATCH /projects/{id}', await send(admin, 'PATCH', `/identity/v3/projects/${projectId}`, { project: { description: 'e' } }), 200, one('project', shape.keystoneProject));

    const u = golden(
      'POST /users',
      await send(admin, 'POST', '/identity/v3/users', { user: { name: 'golden-user', password: userPassword, default_project_id: projectId, enabled: true } }),
      201,
      one('user', shape.keystoneUser.extend({ default_project_id: shape.keystoneId })),
    );
    const userId = u.user.id;
    golden('GET /users', await get(admin, '/identity/v3/users?name=golden-user'), 200, z.object({ users: z.array(shape.keystoneUser).length(1), links: shape.keystoneListLinks }));
    golden('GET /users/{id}', await get(admin, `/identity/v3/users/${userId}`), 200, one('user', shape.keystoneUser));
    golden('PATCH /users/{id}', await send(admin, 'PATCH', `/identity/v3/users/${userId}`, { user: { password: `${userPassword}-2` } }), 200, one('user', shape.keystoneUser));
    const selfChange = (original: string) =>
      inject({ method: 'POST', url: `/identity/v3/users/${userId}/password`, headers: { host }, payload: { user: { original_password: original, password: `${userPassword}-3` } } });
    golden('POST /users/{id}/password, wrong original', await selfChange('wrong'), 401, shape.keystoneError(401, 'Unauthorized'));
    const changed = await selfChange(`${userPassword}-2`);
    assert.equal(changed.statusCode, 204, changed.body);
    assert.equal(changed.body, '');

    const roles = golden('GET /roles', await get(admin, '/identity/v3/roles?name=member'), 200, z.object({ roles: z.array(shape.keystoneRole).length(1), links: shape.keystoneListLinks }));
    const roleId = roles.roles[0].id;
    golden('GET /roles/{id}', await get(admin, `/identity/v3/roles/${roleId}`), 200, one('role', shape.keystoneRole));
    const grant = `/identity/v3/projects/${projectId}/users/${userId}/roles/${roleId}`;
    const put = await send(admin, 'PUT', grant);
    assert.equal(put.statusCode, 204, put.body);
    assert.equal((await inject({ method: 'HEAD', url: grant, headers: { host, 'x-auth-token': admin.token } })).statusCode, 204);
    const check = await get(admin, grant);
    assert.equal(check.statusCode, 204);
    assert.equal(check.body, '');
    golden(
      'GET grants',
      await get(admin, `/identity/v3/projects/${projectId}/users/${userId}/roles`),
      200,
      z.object({ roles: z.array(shape.keystoneRole).length(1), links: shape.keystoneListLinks }),
    );
    golden(
      'GET /role_assignments',
      await get(admin, `/identity/v3/role_assignments?user.id=${userId}&scope.project.id=${projectId}`),
      200,
      z.object({ role_assignments: z.array(shape.keystoneRoleAssignment).length(1), links: shape.keystoneListLinks }),
    );

    golden('GET /domains/default', await get(admin, '/identity/v3/domains/default'), 200, one('domain', shape.keystoneDomain));
    golden('GET /domains', await get(admin, '/identity/v3/domains?name=Default'), 200, z.object({ domains: z.array(shape.keystoneDomain).length(1), links: shape.keystoneListLinks }));

    assert.equal((await send(admin, 'DELETE', grant)).statusCode, 204);
    assert.equal((await send(admin, 'DELETE', `/identity/v3/users/${userId}`)).statusCode, 204);
    assert.equal((await send(admin, 'DELETE', `/identity/v3/projects/${projectId}`)).statusCode, 204);
  });

  test('Keystone error bodies: 404, 403, 401', async () => {
    golden('unknown user', await get(admin, `/identity/v3/users/${'0'.repeat(32)}`), 404, shape.keystoneError(404, 'Not Found'));
    golden('member lists users', await get(member, '/identity/v3/users'), 403, shape.keystoneError(403, 'Forbidden'));
    golden('no token', await get(undefined, '/identity/v3/users'), 401, shape.keystoneError(401, 'Unauthorized'));
  });
});

describe('Nova compute view and the image service', () => {
  const v = (version: string) => ({ 'openstack-api-version': `compute ${version}` });
  function getAt(s: Session | undefined, url: string, headers: Record<string, string> = {}) {
    return inject({ method: 'GET', url, headers: { host, ...headers, ...(s === undefined ? {} : { 'x-auth-token': s.token }) } });
  }

  test('versions, servers and flavors, with and without the project in the URL', async () => {
    const id = await activeInstance(member, 'golden-server');
    golden('GET /v2.1', await getAt(undefined, '/v2.1'), 200, shape.novaVersion);
    for (const prefix of ['/v2.1', `/v2.1/${member.projectId}`]) {
      golden(`GET ${prefix}/servers`, await getAt(member, `${prefix}/servers`), 200, list('servers', shape.serverSummary));
      golden(`GET ${prefix}/servers/detail`, await getAt(member, `${prefix}/servers/detail`), 200, list('servers', shape.server));
      golden(`GET ${prefix}/servers/{id}`, await getAt(member, `${prefix}/servers/${id}`, v('2.47')), 200, one('server', shape.server));
      golden(`GET ${prefix}/flavors`, await getAt(member, `${prefix}/flavors`), 200, list('flavors', shape.novaFlavorSummary));
      golden(`GET ${prefix}/flavors/detail`, await getAt(member, `${prefix}/flavors/detail`), 200, list('flavors', shape.novaFlavor));
      golden(`GET ${prefix}/flavors/{id}`, await getAt(member, `${prefix}/flavors/2`), 200, one('flavor', shape.novaFlavor));
      golden(`GET ${prefix}/flavors/{id}/os-extra_specs`, await getAt(member, `${prefix}/flavors/2/os-extra_specs`), 200, z.object({ extra_specs: z.object({}).strict() }));
    }
    golden('GET /servers/{id} (admin, latest)', await getAt(admin, `/v2.1/servers/${id}`, v('latest')), 200, one('server', shape.serverAdmin));
    golden('GET /servers/detail?all_tenants (admin, latest)', await getAt(admin, '/v2.1/servers/detail?all_tenants=1', v('latest')), 200, list('servers', shape.serverAdmin));
  });

  test("Nova's error bodies: 404, 403, 400, 406; 401 in Keystone's shape", async () => {
    golden('unknown server', await getAt(member, `/v2.1/servers/${newUuid()}`), 404, shape.novaError('itemNotFound', 404));
    golden('unknown flavor', await getAt(member, '/v2.1/flavors/nope'), 404, shape.novaError('itemNotFound', 404));
    golden('all_tenants by a member', await getAt(member, '/v2.1/servers?all_tenants=1'), 403, shape.novaError('forbidden', 403));
    golden('bad marker', await getAt(member, '/v2.1/servers?marker=nope'), 400, shape.novaError('badRequest', 400));
    golden('version out of range', await getAt(member, '/v2.1/servers', v('2.99')), 406, shape.novaError('computeFault', 406));
    golden('no token', await getAt(undefined, '/v2.1/servers'), 401, shape.keystoneError(401, 'Unauthorized'));
  });

  test('the image service: versions, an empty image list', async () => {
    golden('GET /image', await getAt(undefined, '/image'), 200, shape.glanceVersions);
    golden('GET /image/v2/images', await getAt(member, '/image/v2/images'), 200, z.object({ images: z.array(z.unknown()).length(0), first: z.string(), schema: z.string() }));
  });
});

test("the web dashboard: its page, stylesheet and scripts (the browser's, not JSON) with a strict CSP; a file it does not have is Trove's 404", async () => {
  for (const [url, type] of [
    ['/dashboard', 'text/html'],
    ['/dashboard/static/style.css', 'text/css'],
    ['/dashboard/js/app.js', 'text/javascript'],
    ['/dashboard/js/pages/login.js', 'text/javascript'],
  ] as const) {
    const res = await get(undefined, url);
    assert.equal(res.statusCode, 200, `${url}: ${res.body.slice(0, 200)}`);
    assert.match(String(res.headers['content-type']), new RegExp(`^${type}`), url);
    assert.match(String(res.headers['content-security-policy']), /^default-src 'none'; script-src 'self'/, url);
  }
  golden('unknown dashboard file', await get(undefined, '/dashboard/js/nope.js'), 404, shape.troveError('itemNotFound', 404));
});

test('every route Coffer serves has its shapes checked above', () => {
  const toPattern = (route: string) =>
    new RegExp(`^${route.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z]+/g, '[^/]+')}$`);
  const unchecked = [...registeredRoutes(h.app)].filter((route) => {
    const pattern = toPattern(route);
    return !requested.some((r) => pattern.test(r));
  });
  assert.deepEqual(unchecked, [], 'routes without a golden-shape check');
});
