import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { newUuid } from '../../src/common/ids.js';
import type { StateStore } from '../../src/db/index.js';
import { configuration } from '../db/state-store-fixtures.js';
import { adminSession, json, memberSession, seedDatastores, startHarness, type Harness, type Session } from './api-harness.js';

// How many SQL statements a read of instances runs, token validation included, counted on the
// real state database (issue 14): at most 10, and the same for a page of one as for a page of
// twenty. Every instance has what each view looks up (a status with usage, faults, a running
// backup, a configuration group, an archived log with a base backup, half of them a task with
// progress, two datastores), so that each look-up runs and a look-up done per instance would
// show as a count growing with the page.

/** the most statements a read of instances may run, whatever the page size (issue 14) */
const maxStatements = 10;
const pageTotal = 25;

interface Expected {
  fault: string;
  configurationId: string;
  datastore: string;
  resizing: boolean;
  /** the recoverable window's earliest moment (whole seconds, as shown) */
  earliest: string;
}

async function seedInstance(store: StateStore, tenantId: string, n: number, versions: { id: string; name: string }[], groups: string[]): Promise<Expected> {
  const id = newUuid();
  const version = versions[n % versions.length]!;
  const now = new Date();
  const resizing = n % 2 === 1;
  await store.instances.create({
    id,
    name: `read-${n}`,
    tenantId,
    flavorId: '1',
    volumeSizeGb: 2,
    datastoreVersionId: version.id,
    taskStatus: 'NONE',
    taskDescription: '',
    taskStartTime: null,
    access: null,
    createdAt: new Date(now.getTime() - n * 1000),
    updatedAt: now,
  });
  const configurationId = groups[n % groups.length]!;
  await store.instances.update(id, { host: 'host-a', address: `127.81.0.${n + 1}`, port: 5432, configurationId, ...(resizing ? { taskStatus: 'RESIZING' } : {}) });
  await store.serviceStatuses.set({ instanceId: id, status: 'HEALTHY', updatedAt: now });
  await store.serviceStatuses.report(id, { volumeUsage: { usedBytes: (n + 1) * 2 ** 30, measuredAt: now } });
  await store.faults.record({ id: newUuid(), instanceId: id, message: `old fault of ${n}`, details: '', createdAt: new Date(now.getTime() - 60_000) });
  await store.faults.record({ id: newUuid(), instanceId: id, message: `fault of ${n}`, details: '', createdAt: now });
  await store.backups.create({
    id: newUuid(),
    tenantId,
    instanceId: id,
    name: `b-${n}`,
    description: null,
    datastoreVersionId: version.id,
    parentId: null,
    backupType: 'full',
    state: 'BUILDING',
    container: 'c',
    objectName: `b-${n}`,
    createdAt: now,
    updatedAt: now,
  });
  // a base backup its archived log rolls forward, completed n minutes before the archive's reach
  const baseId = newUuid();
  const completed = new Date(Math.floor(now.getTime() / 1000) * 1000 - (n + 1) * 60_000);
  await store.backups.create({
    id: baseId,
    tenantId,
    instanceId: id,
    name: `base-${n}`,
    description: null,
    datastoreVersionId: version.id,
    parentId: null,
    backupType: 'full',
    state: 'COMPLETED',
    container: 'c',
    objectName: `base-${n}`,
    createdAt: completed,
    updatedAt: completed,
  });
  await store.backups.update(baseId, { facts: { 'wal-prefix': 'wal/', 'completed-at': completed.toISOString() } });
  await store.instances.recordWalArchived(id, now);
  if (resizing) {
    await store.tasks.create({
      id: newUuid(),
      instanceId: id,
      kind: 'resize_flavor',
      step: 'start',
      state: 'running',
      owner: null,
      leaseExpiresAt: null,
      payload: {},
      attempts: 1,
      createdAt: now,
      updatedAt: now,
    });
    await store.tasks.recordProgress(id, { step: `step of ${n}`, percent: n, updatedAt: now });
  }
  return { fault: `fault of ${n}`, configurationId, datastore: version.name, resizing, earliest: completed.toISOString().slice(0, 19) };
}

export function readStatementsSuite(name: string, storeUrl: () => Promise<{ url: string; drop: () => Promise<void> }>): void {
  describe(`statements per read of instances on ${name}`, () => {
    let h: Harness;
    let drop: () => Promise<void>;
    let statements = 0;
    let member: Session;
    let admin: Session;
    let lonely: Session;
    const expected = new Map<string, Expected>();

    before(async () => {
      const db = await storeUrl();
      drop = db.drop;
      h = await startHarness({ rateLimitPerMinute: 0 }, db.url, { onStatement: () => (statements += 1) });
      const seeded = await seedDatastores(h.store);
      const mysql = await h.store.datastores.getVersionByName(seeded.mysqlId, '8.0');
      const versions = [
        { id: seeded.activeVersionId, name: 'postgresql' },
        { id: mysql!.id, name: 'mysql' },
      ];
      admin = await adminSession(h.app);
      member = await memberSession(h, 'reads');
      lonely = await memberSession(h, 'lonely');
      const groups: string[] = [];
      for (const version of versions) {
        const group = configuration({ tenantId: member.projectId, datastoreVersionId: version.id });
        await h.store.configurations.create(group);
        groups.push(group.id);
      }
      for (let n = 0; n < pageTotal; n++) {
        const instance = await seedInstance(h.store, member.projectId, n, versions, groups);
        expected.set(`read-${n}`, instance);
      }
      await seedInstance(h.store, lonely.projectId, 0, versions, groups);
    });
    after(async () => {
      await h.close();
      await drop();
    });

    async function counted(url: string, session: Session): Promise<{ count: number; body: any }> {
      const before = statements;
      const res = await h.app.inject({ method: 'GET', url, headers: { 'x-auth-token': session.token } });
      assert.equal(res.statusCode, 200, res.body);
      return { count: statements - before, body: json(res) };
    }

    for (const path of ['instances', 'instances/detail']) {
      it(`GET /${path} runs the same few statements for a page of 1, 7 or 20`, async () => {
        const counts: number[] = [];
        for (const limit of [1, 7, 20]) {
          const { count, body } = await counted(`/v1.0/${member.projectId}/${path}?limit=${limit}`, member);
          assert.equal(body.instances.length, limit);
          counts.push(count);
        }
        assert.ok(counts[0]! <= maxStatements, `a page of 1 ran ${counts[0]} statements`);
        assert.deepEqual(counts, [counts[0], counts[0], counts[0]], `statements for pages of 1, 7 and 20: ${counts.join(', ')}`);
      });
    }

    it('GET /instances reads none of what only the detail shows: fewer statements than GET /instances/detail', async () => {
      const summary = await counted(`/v1.0/${member.projectId}/instances?limit=20`, member);
      const detail = await counted(`/v1.0/${member.projectId}/instances/detail?limit=20`, member);
      // no fault, configuration group, task progress or recoverable window (and their statements)
      assert.ok(summary.count < detail.count, `summary ${summary.count} statements, detail ${detail.count}`);
      for (const view of summary.body.instances) {
        const want = expected.get(view.name)!;
        assert.equal(view.status, want.resizing ? 'RESIZE' : 'BACKUP');
        assert.equal(view.datastore.type, want.datastore);
        for (const key of ['fault', 'configuration', 'progress', 'recoverable_window']) assert.equal(key in view, false, key);
      }
    });

    it('each instance of a page shows its own status, fault, configuration, datastore, usage and progress', async () => {
      const { body } = await counted(`/v1.0/${member.projectId}/instances/detail`, member);
      assert.equal(body.instances.length, 20);
      for (const view of body.instances) {
        const want = expected.get(view.name)!;
        const n = Number(view.name.slice('read-'.length));
        assert.equal(view.fault.message, want.fault);
        assert.equal(view.configuration.id, want.configurationId);
        assert.equal(view.datastore.type, want.datastore);
        assert.equal(view.volume.used, n + 1);
        // a running task shows first; else the running backup (reference 3.3)
        assert.equal(view.status, want.resizing ? 'RESIZE' : 'BACKUP');
        assert.deepEqual(view.progress === undefined ? undefined : view.progress.step, want.resizing ? `step of ${n}` : undefined);
        assert.equal(view.operating_status, want.resizing ? '' : 'HEALTHY');
        assert.equal(view.recoverable_window.earliest, want.earliest);
      }
    });

    it('GET /instances/{id} runs at most as many statements as a page', async () => {
      const { body: page } = await counted(`/v1.0/${member.projectId}/instances?limit=1`, member);
      const { count, body } = await counted(`/v1.0/${member.projectId}/instances/${page.instances[0].id}`, member);
      assert.ok(count <= maxStatements, `a show ran ${count} statements`);
      assert.equal(body.instance.fault.message, expected.get(body.instance.name)!.fault);
    });

    it('GET /mgmt/instances runs the same statements for a project of 1 instance as for one of 25', async () => {
      const one = await counted(`/v1.0/${admin.projectId}/mgmt/instances?project_id=${lonely.projectId}`, admin);
      const many = await counted(`/v1.0/${admin.projectId}/mgmt/instances?project_id=${member.projectId}`, admin);
      assert.equal(one.body.instances.length, 1);
      assert.equal(many.body.instances.length, pageTotal);
      assert.ok(many.count <= maxStatements, `the management list ran ${many.count} statements`);
      assert.equal(many.count, one.count);
      for (const view of many.body.instances) assert.equal(view.fault.message, expected.get(view.name)!.fault);
    });
  });
}
