import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { noEngineCapabilities } from '../../src/common/index.js';
import type { InstanceRow, StateStore } from '../../src/db/index.js';
import { instanceEventsKept } from '../../src/db/instance-event-repository.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { backupScheduleStoreTests } from './backup-schedule-store.suite.js';
import { webhookStoreTests } from './webhook-store.suite.js';
import { at, configuration, instance, project, task, token, uid, user } from './state-store-fixtures.js';

// The conformance suite every state-store engine runs (SQLite, MariaDB, PostgreSQL) against a
// real database. One database per run; each test makes its own rows with fresh ids.

export function stateStoreSuite(
  name: string,
  open: () => Promise<{ store: StateStore; drop: () => Promise<void> }>,
): void {
  describe(`StateStore on ${name}`, () => {
    let store: StateStore;
    let drop: () => Promise<void>;

    before(async () => {
      ({ store, drop } = await open());
    });
    after(() => drop());

    describe('projects', () => {
      it('creates, reads by id and by name, and lists with filters', async () => {
        const domainId = uid();
        const a = project({ domainId, name: 'alpha', enabled: false, createdAt: at.dstSwitch });
        const b = project({ domainId, name: 'beta' });
        await store.projects.create(b);
        await store.projects.create(a);
        assert.deepEqual(await store.projects.get(a.id), a);
        assert.deepEqual(await store.projects.getByName('alpha', domainId), a);
        assert.equal(await store.projects.getByName('alpha', 'other-domain'), undefined);
        assert.equal(await store.projects.get(uid()), undefined);
        assert.deepEqual(await store.projects.list({ domainId }), [a, b]);
        assert.deepEqual(await store.projects.list({ domainId, name: 'beta' }), [b]);
        assert.ok((await store.projects.list()).some((p) => p.id === a.id));
      });

      it('refuses a second project of the same name in a domain, but not in another domain', async () => {
        const first = project();
        await store.projects.create(first);
        await rejectsWithCode(store.projects.create(project({ name: first.name })), 'Conflict');
        await store.projects.create(project({ name: first.name, domainId: uid() }));
      });

      it('updates only the fields given, and says NotFound for an unknown project', async () => {
        const p = project();
        await store.projects.create(p);
        await store.projects.update(p.id, { description: 'changed', enabled: false });
        assert.deepEqual(await store.projects.get(p.id), { ...p, description: 'changed', enabled: false });
        await store.projects.update(p.id, {});
        await rejectsWithCode(store.projects.update(uid(), { name: 'x' }), 'NotFound');
        await rejectsWithCode(store.projects.update(uid(), {}), 'NotFound');
        const other = project();
        await store.projects.create(other);
        await rejectsWithCode(store.projects.update(p.id, { name: other.name }), 'Conflict');
      });

      it('deletes idempotently, taking its role assignments and tokens along', async () => {
        const p = project();
        const u = user();
        await store.projects.create(p);
        await store.users.create(u);
        const role = await store.roles.ensure(`role-${uid()}`, uid());
        await store.roleAssignments.grant({ userId: u.id, projectId: p.id, roleId: role.id });
        const t = token(u.id, p.id);
        await store.tokens.create(t);
        await store.projects.delete(p.id);
        await store.projects.delete(p.id);
        assert.equal(await store.projects.get(p.id), undefined);
        assert.deepEqual(await store.roleAssignments.list({ userId: u.id }), []);
        assert.equal(await store.tokens.get(t.tokenHash), undefined);
        assert.ok(await store.users.get(u.id));
      });
    });

    describe('users', () => {
      it('round-trips every field, nullable ones both ways', async () => {
        const p = project();
        await store.projects.create(p);
        const plain = user();
        const full = user({ defaultProjectId: p.id, email: 'ops@example.com', description: 'ops', enabled: false });
        await store.users.create(plain);
        await store.users.create(full);
        assert.deepEqual(await store.users.get(plain.id), plain);
        assert.deepEqual(await store.users.get(full.id), full);
        assert.deepEqual(await store.users.getByName(full.name, 'default'), full);
        assert.equal(await store.users.getByName(full.name, 'elsewhere'), undefined);
        assert.deepEqual(await store.users.list({ name: plain.name }), [plain]);
      });

      it('updates, refuses duplicate names and says NotFound for an unknown user', async () => {
        const u = user({ email: 'a@example.com' });
        await store.users.create(u);
        await store.users.update(u.id, { passwordHash: 'scrypt$new', email: null, enabled: false });
        assert.deepEqual(await store.users.get(u.id), { ...u, passwordHash: 'scrypt$new', email: null, enabled: false });
        await rejectsWithCode(store.users.update(uid(), { enabled: true }), 'NotFound');
        await rejectsWithCode(store.users.create(user({ name: u.name })), 'Conflict');
        const other = user();
        await store.users.create(other);
        await rejectsWithCode(store.users.update(other.id, { name: u.name }), 'Conflict');
      });

      it('deletes idempotently, taking its role assignments and tokens along', async () => {
        const p = project();
        const u = user();
        await store.projects.create(p);
        await store.users.create(u);
        const role = await store.roles.ensure(`role-${uid()}`, uid());
        await store.roleAssignments.grant({ userId: u.id, projectId: p.id, roleId: role.id });
        const t = token(u.id, p.id);
        await store.tokens.create(t);
        await store.users.delete(u.id);
        await store.users.delete(u.id);
        assert.equal(await store.users.get(u.id), undefined);
        assert.deepEqual(await store.roleAssignments.list({ projectId: p.id }), []);
        assert.equal(await store.tokens.get(t.tokenHash), undefined);
      });
    });

    describe('identity names compare exactly as stored', () => {
      // MySQL's default (PAD SPACE, case-insensitive) collations would find `admin` for `admin `
      // or `ADMIN`, and refuse the second as a duplicate; every engine must see different names.
      const variants = (base: string) => [base, `${base} `, base.toUpperCase(), `${base}\u0301`, base.replace('a', '\uff41'), base.normalize('NFD')];

      it('users: a trailing space, another case or another Unicode form is another user', async () => {
        const base = `admin-${uid().slice(0, 8)}`;
        const rows = variants(`${base}\u00e9`).map((name) => user({ name }));
        for (const row of rows) await store.users.create(row);
        for (const row of rows) {
          assert.deepEqual(await store.users.getByName(row.name, 'default'), row, JSON.stringify(row.name));
          assert.deepEqual(await store.users.list({ name: row.name }), [row], JSON.stringify(row.name));
        }
        assert.equal(await store.users.getByName(`${base}\u00e9  `, 'default'), undefined);
      });

      it('projects and roles: the same', async () => {
        const base = `admin-${uid().slice(0, 8)}`;
        const projects = variants(`${base}\u00e9`).map((name) => project({ name }));
        for (const row of projects) await store.projects.create(row);
        for (const row of projects) {
          assert.deepEqual(await store.projects.getByName(row.name, 'default'), row, JSON.stringify(row.name));
          assert.deepEqual(await store.projects.list({ name: row.name }), [row], JSON.stringify(row.name));
        }
        const roleNames = variants(`admin-role-${uid().slice(0, 8)}\u00e9`);
        const roles = [];
        for (const name of roleNames) roles.push(await store.roles.ensure(name, uid()));
        assert.equal(new Set(roles.map((r) => r.id)).size, roleNames.length);
        for (const [i, name] of roleNames.entries()) assert.deepEqual(await store.roles.getByName(name), roles[i]);
      });
    });

    describe('login failures', () => {
      it('counts failures in a row, restarts after a quiet spell, and clears', async () => {
        const subject = `user:${uid()}`;
        const t0 = new Date('2030-01-01T00:00:00.000Z');
        const later = (s: number) => new Date(t0.getTime() + s * 1000);
        assert.equal(await store.loginFailures.get(subject), undefined);
        assert.deepEqual(await store.loginFailures.recordFailure(subject, t0, later(-60)), { subject, failures: 1, lastFailureAt: t0 });
        assert.equal((await store.loginFailures.recordFailure(subject, later(10), later(-50))).failures, 2);
        assert.equal((await store.loginFailures.recordFailure(subject, later(20), later(-40))).failures, 3);
        // the last failure (t0 + 20 s) is older than the restart point: counting starts again
        assert.deepEqual(await store.loginFailures.recordFailure(subject, later(100), later(40)), { subject, failures: 1, lastFailureAt: later(100) });
        await store.loginFailures.clear(subject);
        assert.equal(await store.loginFailures.get(subject), undefined);
      });

      it('counts every one of concurrent failures', async () => {
        const subject = `address:${uid()}`;
        const now = new Date('2030-01-01T00:00:00.000Z');
        await Promise.all(Array.from({ length: 12 }, () => store.loginFailures.recordFailure(subject, now, new Date(0))));
        assert.equal((await store.loginFailures.get(subject))?.failures, 12);
      });
    });

    describe('roles and role assignments', () => {
      it('ensure creates a role once and then returns it, even under concurrency', async () => {
        const name = `role-${uid()}`;
        const ids = Array.from({ length: 10 }, () => uid());
        const results = await Promise.all(ids.map((id) => store.roles.ensure(name, id)));
        const winner = results[0]!;
        assert.ok(ids.includes(winner.id));
        for (const r of results) assert.deepEqual(r, winner);
        assert.deepEqual(await store.roles.ensure(name, uid()), winner);
        assert.deepEqual(await store.roles.get(winner.id), winner);
        assert.deepEqual(await store.roles.getByName(name), winner);
        assert.equal(await store.roles.get(uid()), undefined);
        assert.equal((await store.roles.list()).filter((r) => r.name === name).length, 1);
        await rejectsWithCode(store.roles.ensure(`role-${uid()}`, winner.id), 'Conflict');
      });

      it('grants idempotently (also concurrently), lists, reads roles of a user and revokes', async () => {
        const p = project();
        const u = user();
        await store.projects.create(p);
        await store.users.create(u);
        const reader = await store.roles.ensure(`reader-${uid()}`, uid());
        const admin = await store.roles.ensure(`admin-${uid()}`, uid());
        const grant = { userId: u.id, projectId: p.id, roleId: reader.id };
        await Promise.all(Array.from({ length: 10 }, () => store.roleAssignments.grant(grant)));
        await store.roleAssignments.grant({ ...grant, roleId: admin.id });
        await store.roleAssignments.grant(grant);
        assert.deepEqual(await store.roleAssignments.rolesOf(u.id, p.id), [admin, reader]);
        assert.deepEqual(await store.roleAssignments.rolesOf(u.id, uid()), []);
        assert.equal((await store.roleAssignments.list({ userId: u.id })).length, 2);
        assert.deepEqual(await store.roleAssignments.list({ projectId: p.id, roleId: reader.id }), [grant]);
        await store.roleAssignments.revoke(grant);
        await store.roleAssignments.revoke(grant);
        assert.deepEqual(await store.roleAssignments.rolesOf(u.id, p.id), [admin]);
      });

      it('refuses to grant on a user, project or role that does not exist', async () => {
        const p = project();
        await store.projects.create(p);
        const role = await store.roles.ensure(`role-${uid()}`, uid());
        await rejectsWithCode(
          store.roleAssignments.grant({ userId: uid(), projectId: p.id, roleId: role.id }),
          'NotFound',
        );
      });
    });

    describe('tokens', () => {
      it('stores a token by hash, with its methods and times, and deletes it', async () => {
        const p = project();
        const u = user();
        await store.projects.create(p);
        await store.users.create(u);
        const t = token(u.id, p.id, { methods: ['password', 'token'], issuedAt: at.oneMs, expiresAt: at.past2038 });
        await store.tokens.create(t);
        assert.deepEqual(await store.tokens.get(t.tokenHash), t);
        await rejectsWithCode(store.tokens.create(t), 'Conflict');
        await store.tokens.delete(t.tokenHash);
        assert.equal(await store.tokens.get(t.tokenHash), undefined);
        await rejectsWithCode(store.tokens.create(token(uid(), p.id)), 'NotFound');
      });

      it('deleteForUser revokes only that user\'s tokens', async () => {
        const p = project();
        const [a, b] = [user(), user()];
        await store.projects.create(p);
        await store.users.create(a);
        await store.users.create(b);
        const [a1, a2, b1] = [token(a.id, p.id), token(a.id, p.id), token(b.id, p.id)];
        for (const t of [a1, a2, b1]) await store.tokens.create(t);
        assert.equal(await store.tokens.deleteForUser(a.id), 2);
        assert.equal(await store.tokens.get(a1.tokenHash), undefined);
        assert.equal(await store.tokens.get(a2.tokenHash), undefined);
        assert.deepEqual(await store.tokens.get(b1.tokenHash), b1);
      });

      it('deleteForProject and deleteForUserOnProject revoke only the tokens they name', async () => {
        const [p, q] = [project(), project()];
        const [a, b] = [user(), user()];
        for (const x of [p, q]) await store.projects.create(x);
        for (const x of [a, b]) await store.users.create(x);
        const [ap, aq, bp, bq] = [token(a.id, p.id), token(a.id, q.id), token(b.id, p.id), token(b.id, q.id)];
        for (const t of [ap, aq, bp, bq]) await store.tokens.create(t);
        assert.equal(await store.tokens.deleteForUserOnProject(a.id, q.id), 1);
        assert.equal(await store.tokens.get(aq.tokenHash), undefined);
        assert.deepEqual(await store.tokens.get(ap.tokenHash), ap);
        assert.equal(await store.tokens.deleteForProject(p.id), 2);
        assert.equal(await store.tokens.get(ap.tokenHash), undefined);
        assert.equal(await store.tokens.get(bp.tokenHash), undefined);
        assert.deepEqual(await store.tokens.get(bq.tokenHash), bq);
      });

      it('deleteExpired removes tokens expired at or before now and counts them', async () => {
        const p = project();
        const u = user();
        await store.projects.create(p);
        await store.users.create(u);
        // Years no other test uses, so the count is exact on a shared database.
        const now = new Date('1995-06-01T12:00:00.500Z');
        const expired = token(u.id, p.id, { expiresAt: new Date('1995-06-01T12:00:00.499Z') });
        const expiringNow = token(u.id, p.id, { expiresAt: now });
        const valid = token(u.id, p.id, { expiresAt: new Date('1995-06-01T12:00:00.501Z') });
        for (const t of [expired, expiringNow, valid]) await store.tokens.create(t);
        assert.equal(await store.tokens.deleteExpired(now), 2);
        assert.equal(await store.tokens.get(expired.tokenHash), undefined);
        assert.equal(await store.tokens.get(expiringNow.tokenHash), undefined);
        assert.deepEqual(await store.tokens.get(valid.tokenHash), valid);
      });

      it('holder reads a token with its user, project and roles at once, and nothing once any of them is gone', async () => {
        const p = project({ enabled: false, createdAt: at.dstSwitch });
        const u = user({ email: 'a@example.org', defaultProjectId: p.id });
        await store.projects.create(p);
        await store.users.create(u);
        const t = token(u.id, p.id, { methods: ['password', 'token'], issuedAt: at.oneMs, expiresAt: at.past2038 });
        await store.tokens.create(t);
        assert.equal(await store.tokens.holder(t.tokenHash), undefined, 'no role on the project: no holder');
        const [reader, admin] = [await store.roles.ensure(`reader-${uid()}`, uid()), await store.roles.ensure(`admin-${uid()}`, uid())];
        await store.roleAssignments.grant({ userId: u.id, projectId: p.id, roleId: reader.id });
        await store.roleAssignments.grant({ userId: u.id, projectId: p.id, roleId: admin.id });
        // a role on another project is not one on this
        const other = project();
        await store.projects.create(other);
        await store.roleAssignments.grant({ userId: u.id, projectId: other.id, roleId: (await store.roles.ensure(`x-${uid()}`, uid())).id });
        assert.deepEqual(await store.tokens.holder(t.tokenHash), { token: t, user: u, project: p, roles: [admin, reader] });
        assert.equal(await store.tokens.holder(uid()), undefined);
        await store.roleAssignments.revoke({ userId: u.id, projectId: p.id, roleId: admin.id });
        assert.deepEqual((await store.tokens.holder(t.tokenHash))?.roles, [reader]);
        await store.tokens.delete(t.tokenHash);
        assert.equal(await store.tokens.holder(t.tokenHash), undefined);
      });
    });

    describe('flavors', () => {
      it('upserts, reads and lists by ram then id', async () => {
        const prefix = uid();
        const big = { id: `${prefix}-b`, name: 'big', ramMb: 4096, vcpus: 2, diskGb: 20, ephemeralGb: 0 };
        const smallB = { id: `${prefix}-2`, name: 'small', ramMb: 512, vcpus: 1, diskGb: 5, ephemeralGb: 0 };
        const smallA = { id: `${prefix}-1`, name: 'small too', ramMb: 512, vcpus: 1, diskGb: 5, ephemeralGb: 1 };
        for (const f of [big, smallB, smallA]) await store.flavors.upsert(f);
        const changed = { ...big, name: 'bigger', ramMb: 8192, vcpus: 4 };
        await store.flavors.upsert(changed);
        assert.deepEqual(await store.flavors.get(big.id), changed);
        assert.equal(await store.flavors.get(uid()), undefined);
        const mine = (await store.flavors.list()).filter((f) => f.id.startsWith(prefix));
        assert.deepEqual(mine, [smallA, smallB, changed]);
      });
    });

    describe('datastores', () => {
      it('ensureDatastore creates once, also under concurrency', async () => {
        const name = `engine-${uid()}`;
        const results = await Promise.all(Array.from({ length: 10 }, () => store.datastores.ensureDatastore(name, uid())));
        for (const r of results) assert.deepEqual(r, results[0]);
        assert.equal(results[0]!.defaultVersionId, null);
        assert.deepEqual(await store.datastores.getDatastore(results[0]!.id), results[0]);
        assert.deepEqual(await store.datastores.getDatastoreByName(name), results[0]);
        assert.equal(await store.datastores.getDatastoreByName(uid()), undefined);
        assert.equal((await store.datastores.listDatastores()).filter((d) => d.name === name).length, 1);
      });

      it('upsertVersion inserts, then updates the version of the same name keeping its id', async () => {
        const ds = await store.datastores.ensureDatastore(`engine-${uid()}`, uid());
        const v15 = {
          id: uid(),
          datastoreId: ds.id,
          name: '15',
          version: '15.18',
          manager: 'postgresql',
          active: true,
          inactiveReason: null,
          updatedAt: at.leapDay,
        };
        const described = { capabilities: { ...noEngineCapabilities }, parameters: [], disabledByAdmin: false };
        assert.deepEqual(await store.datastores.upsertVersion(v15), { ...v15, ...described });
        const again = { ...v15, id: uid(), version: '15.19', active: false, inactiveReason: 'postgres binary missing', updatedAt: at.past2038, ...described };
        const stored = await store.datastores.upsertVersion(again);
        assert.deepEqual(stored, { ...again, id: v15.id });
        assert.deepEqual(await store.datastores.getVersion(v15.id), stored);
        assert.equal(await store.datastores.getVersion(again.id), undefined);
        assert.deepEqual(await store.datastores.getVersionByName(ds.id, '15'), stored);
        const v14 = await store.datastores.upsertVersion({ ...v15, id: uid(), name: '14', version: '14.11' });
        assert.deepEqual(await store.datastores.listVersions(ds.id), [v14, stored]);
        assert.ok((await store.datastores.listVersions()).some((v) => v.id === v14.id));
        await rejectsWithCode(store.datastores.upsertVersion({ ...v15, id: uid(), datastoreId: uid() }), 'DatastoreNotFound');
        const versions = await store.datastores.getVersions([v15.id, v14.id, uid()]);
        assert.deepEqual([...versions.keys()].sort(), [v15.id, v14.id].sort());
        assert.deepEqual(versions.get(v15.id), stored);
        assert.deepEqual(versions.get(v14.id), v14);
        assert.equal((await store.datastores.getVersions([])).size, 0);
        const datastores = await store.datastores.getDatastores([ds.id, uid()]);
        assert.deepEqual([...datastores.values()], [await store.datastores.getDatastore(ds.id)]);
        assert.equal((await store.datastores.getDatastores([])).size, 0);
      });

      it('stores the capabilities and parameters agents report with a version, and replaces them on upsert', async () => {
        const ds = await store.datastores.ensureDatastore(`engine-${uid()}`, uid());
        const capabilities = { ...noEngineCapabilities, databases: true, users: true, userAccess: true, root: true };
        const parameters = [
          { name: 'max_connections', type: 'integer' as const, restartRequired: true, min: 10, max: 10_000 },
          { name: 'work_mem', type: 'string' as const, restartRequired: false },
          { name: 'random_page_cost', type: 'float' as const, restartRequired: false, min: 0, max: 1.5 },
        ];
        const row = {
          id: uid(),
          datastoreId: ds.id,
          name: '16',
          version: '16.4',
          manager: 'postgresql',
          active: true,
          inactiveReason: null,
          updatedAt: at.oneMs,
          capabilities,
          parameters,
        };
        const stored = { ...row, disabledByAdmin: false };
        assert.deepEqual(await store.datastores.upsertVersion(row), stored);
        assert.deepEqual(await store.datastores.getVersion(row.id), stored);
        assert.deepEqual((await store.datastores.listVersions(ds.id))[0], stored);
        const fewer = { ...row, capabilities: { ...capabilities, root: false }, parameters: parameters.slice(1) };
        assert.deepEqual(await store.datastores.upsertVersion(fewer), { ...fewer, disabledByAdmin: false });
        const { capabilities: _c, parameters: _p, ...undescribed } = row;
        assert.deepEqual(await store.datastores.upsertVersion(undescribed), {
          ...undescribed,
          capabilities: noEngineCapabilities,
          parameters: [],
          disabledByAdmin: false,
        });
      });

      it('a version an administrator disabled stays inactive, with that reason, whatever agents upsert, until enabled again', async () => {
        const ds = await store.datastores.ensureDatastore(`engine-${uid()}`, uid());
        const row = { id: uid(), datastoreId: ds.id, name: '17', version: '17.2', manager: 'postgresql', active: true, inactiveReason: null, updatedAt: at.oneMs };
        await store.datastores.upsertVersion(row);
        await store.datastores.setDisabledByAdmin(row.id, true);
        const disabled = await store.datastores.getVersion(row.id);
        assert.equal(disabled?.active, false);
        assert.equal(disabled?.disabledByAdmin, true);
        assert.equal(disabled?.inactiveReason, 'an administrator deactivated it');
        await store.datastores.upsertVersion({ ...row, version: '17.3' });
        assert.equal((await store.datastores.getVersion(row.id))?.active, false);
        assert.equal((await store.datastores.getVersion(row.id))?.version, '17.3');
        await store.datastores.setDisabledByAdmin(row.id, false);
        assert.deepEqual(await store.datastores.getVersion(row.id), { ...row, version: '17.3', capabilities: noEngineCapabilities, parameters: [], disabledByAdmin: false });
        await rejectsWithCode(store.datastores.setDisabledByAdmin(uid(), true), 'DatastoreVersionNotFound');
      });

      it('setDefaultVersion accepts only a version of that datastore, and null', async () => {
        const ds = await store.datastores.ensureDatastore(`engine-${uid()}`, uid());
        const other = await store.datastores.ensureDatastore(`engine-${uid()}`, uid());
        const base = { manager: 'mysql', version: '8.0.36', active: true, inactiveReason: null, updatedAt: at.oneMs };
        const v = await store.datastores.upsertVersion({ ...base, id: uid(), datastoreId: ds.id, name: '8.0' });
        const foreign = await store.datastores.upsertVersion({ ...base, id: uid(), datastoreId: other.id, name: '8.0' });
        await store.datastores.setDefaultVersion(ds.id, v.id);
        assert.equal((await store.datastores.getDatastore(ds.id))?.defaultVersionId, v.id);
        await rejectsWithCode(store.datastores.setDefaultVersion(ds.id, foreign.id), 'DatastoreVersionNotFound');
        await rejectsWithCode(store.datastores.setDefaultVersion(ds.id, uid()), 'DatastoreVersionNotFound');
        await rejectsWithCode(store.datastores.setDefaultVersion(uid(), null), 'DatastoreNotFound');
        await store.datastores.setDefaultVersion(ds.id, null);
        assert.equal((await store.datastores.getDatastore(ds.id))?.defaultVersionId, null);
      });
    });

    describe('instances', () => {
      it('round-trips every field: times to the millisecond, access as JSON, nulls', async () => {
        const withAccess = instance({
          access: { isPublic: false, allowedCidrs: ['10.0.0.0/8', '192.168.1.7/32'] },
          taskStartTime: at.dstSwitch,
          createdAt: at.oneMs,
          updatedAt: at.past2038,
        });
        const bare = instance({ taskStartTime: null, access: null });
        await store.instances.create(withAccess);
        await store.instances.create(bare);
        const extra = {
          host: null,
          address: null,
          port: null,
          tls: null,
          configurationId: null,
          desiredGeneration: 1,
          appliedGeneration: 0,
          walArchivedUntil: null,
          deleted: false,
          deletedAt: null,
          internal: false,
          replicaOfId: null,
          failover: true,
          synchronousReplication: false,
          leaseRenewedAt: null,
          fencedAt: null,
        };
        assert.deepEqual(await store.instances.get(withAccess.id), { ...withAccess, ...extra });
        assert.deepEqual(await store.instances.get(bare.id), { ...bare, ...extra });
        await rejectsWithCode(store.instances.create(bare), 'Conflict');
      });

      it("reads a source's live replicas with it, in get, list and listAll, and each replica's source", async () => {
        const tenantId = `tenant-${uid()}`;
        const source = instance({ tenantId });
        await store.instances.create(source);
        const [b, a] = [instance({ tenantId, replicaOfId: source.id }), instance({ tenantId, replicaOfId: source.id })].sort((x, y) => (x.id < y.id ? 1 : -1));
        await store.instances.create(b!);
        await store.instances.create(a!);
        const ordered = [a!.id, b!.id].sort();
        assert.deepEqual((await store.instances.get(source.id))?.replicaIds, ordered);
        assert.equal((await store.instances.get(a!.id))?.replicaOfId, source.id);
        assert.equal((await store.instances.get(a!.id))?.replicaIds, undefined);
        assert.deepEqual((await store.instances.list({ tenantId, limit: 10 })).items.find((x) => x.id === source.id)?.replicaIds, ordered);
        assert.deepEqual((await store.instances.replicasOf([source.id, a!.id])).get(source.id), ordered);
        await store.instances.markDeleted(b!.id, new Date());
        assert.deepEqual((await store.instances.listAll({ tenantId })).find((x) => x.id === source.id)?.replicaIds, [a!.id]);
        await store.instances.update(a!.id, { replicaOfId: null });
        assert.equal((await store.instances.get(source.id))?.replicaIds, undefined);
        assert.equal((await store.instances.get(a!.id))?.replicaOfId, null);
      });

      it("a primary's lease is renewed until a failover claims it; of a renewal and a claim only one wins", async () => {
        const tenantId = `tenant-${uid()}`;
        const primary = instance({ tenantId, taskStatus: 'NONE' });
        await store.instances.create(primary);
        const replica = instance({ tenantId, replicaOfId: primary.id });
        await store.instances.create(replica);
        const t0 = new Date(Math.floor(Date.now() / 1000) * 1000);
        const at = (ms: number) => new Date(t0.getTime() + ms);
        // never renewed: no failover without the primary's guarantee that it fenced itself
        assert.deepEqual((await store.instances.lapsedLeases(at(60_000))).filter((x) => x.id === primary.id), []);
        assert.equal(await store.instances.renewLease(primary.id, t0), true);
        assert.deepEqual((await store.instances.get(primary.id))?.leaseRenewedAt, t0);
        // a replica holds no lease
        assert.equal(await store.instances.renewLease(replica.id, t0), false);
        // fresh: neither lapsed nor claimable
        assert.deepEqual((await store.instances.lapsedLeases(t0)).filter((x) => x.id === primary.id), []);
        assert.equal(await store.instances.claimFailover(primary.id, t0, { taskStatus: 'EJECTING', fencedAt: at(5_000) }), false);
        const lapsed = (await store.instances.lapsedLeases(at(1))).find((x) => x.id === primary.id);
        assert.ok(lapsed, 'a lease last renewed before the cut-off has lapsed');
        assert.deepEqual(lapsed.replicaIds, [replica.id]);
        // failover off: not lapsed, not claimable
        await store.instances.update(primary.id, { failover: false });
        assert.deepEqual((await store.instances.lapsedLeases(at(1))).filter((x) => x.id === primary.id), []);
        assert.equal(await store.instances.claimFailover(primary.id, at(1), { taskStatus: 'EJECTING', fencedAt: at(5_000) }), false);
        assert.equal(await store.instances.renewLease(primary.id, at(2)), false);
        await store.instances.update(primary.id, { failover: true });
        // the claim wins once; it fences the primary, whose lease is never renewed again
        assert.equal(await store.instances.claimFailover(primary.id, at(1), { taskStatus: 'EJECTING', fencedAt: at(5_000) }), true);
        assert.equal(await store.instances.claimFailover(primary.id, at(1), { taskStatus: 'EJECTING', fencedAt: at(5_000) }), false);
        assert.equal(await store.instances.renewLease(primary.id, at(6_000)), false);
        const fenced = await store.instances.get(primary.id);
        assert.equal(fenced?.taskStatus, 'EJECTING');
        assert.deepEqual(fenced?.fencedAt, at(5_000));
        // once it names its new primary it is a fenced replica, to rejoin
        assert.deepEqual((await store.instances.fencedReplicas()).filter((x) => x.id === primary.id), []);
        await store.instances.update(primary.id, { replicaOfId: replica.id, taskStatus: 'NONE' });
        await store.instances.update(replica.id, { replicaOfId: null, synchronousReplication: true });
        assert.deepEqual((await store.instances.fencedReplicas()).filter((x) => x.id === primary.id).map((x) => x.replicaOfId), [replica.id]);
        assert.equal((await store.instances.get(replica.id))?.synchronousReplication, true);
      });

      it('get is scoped to the tenant when one is given', async () => {
        const i = instance();
        await store.instances.create(i);
        assert.equal((await store.instances.get(i.id, { tenantId: i.tenantId }))?.id, i.id);
        assert.equal(await store.instances.get(i.id, { tenantId: 'someone-else' }), undefined);
        assert.equal((await store.instances.get(i.id, {}))?.id, i.id);
        assert.equal(await store.instances.get(uid()), undefined);
      });

      it("an internal instance is left out of its project's get, list, count and quota usage, not out of an unscoped get", async () => {
        const tenantId = `tenant-${uid()}`;
        const own = instance({ tenantId });
        const scratch = { ...instance({ tenantId }), internal: true };
        await store.instances.create(own);
        await store.instances.create(scratch);
        assert.equal((await store.instances.get(scratch.id))?.internal, true);
        assert.equal(await store.instances.get(scratch.id, { tenantId }), undefined);
        assert.deepEqual((await store.instances.list({ tenantId, limit: 10 })).items.map((x) => x.id), [own.id]);
        assert.equal(await store.instances.countActive(tenantId), 1);
        const usage = await store.quotas.usage(tenantId);
        assert.equal(usage.instances, 1);
        assert.equal(usage.volumes, own.volumeSizeGb);
        assert.deepEqual((await store.instances.listAll({ tenantId })).map((x) => x.id).sort(), [own.id, scratch.id].sort());
      });

      it('update applies the patch, clears fields set to null and moves updatedAt', async () => {
        const i = instance({ access: { isPublic: true } });
        await store.instances.create(i);
        const before = Date.now();
        await store.instances.update(i.id, {
          host: 'agent-1',
          address: '127.77.0.12',
          port: 5432,
          taskStatus: 'NONE',
          taskDescription: 'No tasks for the instance.',
          taskStartTime: null,
          access: null,
          volumeSizeGb: 5,
          tls: { caCertificate: '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n', expiresAt: '2027-03-02T21:33:47.000Z', port: 6380 },
        });
        const got = await store.instances.get(i.id);
        assert.ok(got);
        assert.ok(got.updatedAt.getTime() >= before - 1000, 'updatedAt follows the update');
        assert.deepEqual(got, {
          ...i,
          host: 'agent-1',
          address: '127.77.0.12',
          port: 5432,
          taskStatus: 'NONE',
          taskDescription: 'No tasks for the instance.',
          taskStartTime: null,
          access: null,
          volumeSizeGb: 5,
          tls: { caCertificate: '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n', expiresAt: '2027-03-02T21:33:47.000Z', port: 6380 },
          updatedAt: got.updatedAt,
          configurationId: null,
          desiredGeneration: 1,
          appliedGeneration: 0,
          walArchivedUntil: null,
          deleted: false,
          deletedAt: null,
          internal: false,
          replicaOfId: null,
          failover: true,
          synchronousReplication: false,
          leaseRenewedAt: null,
          fencedAt: null,
        });
        await rejectsWithCode(store.instances.update(uid(), { name: 'x' }), 'InstanceNotFound');
      });

      it('how far the archived log reaches only moves forward', async () => {
        const i = instance();
        await store.instances.create(i);
        await store.instances.recordWalArchived(i.id, at.oneMs);
        assert.deepEqual((await store.instances.get(i.id))?.walArchivedUntil, at.oneMs);
        await store.instances.recordWalArchived(i.id, at.past2038);
        await store.instances.recordWalArchived(i.id, at.oneMs);
        assert.deepEqual((await store.instances.get(i.id))?.walArchivedUntil, at.past2038, 'a late, older report is dropped');
      });

      it('generations: desired rises by one per change, applied only rises', async () => {
        const i = instance();
        await store.instances.create(i);
        await store.instances.bumpDesiredGeneration(i.id);
        assert.equal((await store.instances.get(i.id))?.desiredGeneration, 2);
        // concurrent changes each count
        await Promise.all([store.instances.bumpDesiredGeneration(i.id), store.instances.bumpDesiredGeneration(i.id)]);
        await store.instances.recordAppliedGeneration(i.id, 3);
        await store.instances.recordAppliedGeneration(i.id, 2);
        let got = await store.instances.get(i.id);
        assert.deepEqual([got?.desiredGeneration, got?.appliedGeneration], [4, 3], 'a late, older generation does not lower applied');
        await store.instances.recordAppliedGeneration(i.id, 4);
        got = await store.instances.get(i.id);
        assert.deepEqual([got?.desiredGeneration, got?.appliedGeneration], [4, 4]);
        await rejectsWithCode(store.instances.bumpDesiredGeneration(uid()), 'InstanceNotFound');
      });

      it('updateIfTask changes the instance only from one of the given task statuses', async () => {
        const i = instance({ taskStatus: 'NONE' });
        await store.instances.create(i);
        assert.equal(await store.instances.updateIfTask(i.id, ['REBOOTING'], { taskStatus: 'NONE', name: 'not applied' }), false);
        assert.equal((await store.instances.get(i.id))?.name, i.name);
        assert.equal(await store.instances.updateIfTask(i.id, ['NONE', 'RESTART_REQUIRED'], { taskStatus: 'REBOOTING', name: 'applied' }), true);
        const got = await store.instances.get(i.id);
        assert.deepEqual([got?.taskStatus, got?.name], ['REBOOTING', 'applied']);
        // two racing transitions from the same status: one wins
        const raced = await Promise.all([
          store.instances.updateIfTask(i.id, ['REBOOTING'], { taskStatus: 'NONE' }),
          store.instances.updateIfTask(i.id, ['REBOOTING'], { taskStatus: 'NONE' }),
        ]);
        assert.deepEqual(raced.sort(), [false, true]);
        assert.equal(await store.instances.updateIfTask(uid(), ['NONE'], { name: 'x' }), false);
        assert.equal(await store.instances.updateIfTask(i.id, [], { name: 'x' }), false);
      });

      it('markDeleted hides the instance from get, list and countActive, and is idempotent', async () => {
        const tenantId = `tenant-${uid()}`;
        const kept = instance({ tenantId });
        const gone = instance({ tenantId });
        await store.instances.create(kept);
        await store.instances.create(gone);
        assert.equal(await store.instances.countActive(tenantId), 2);
        await store.instances.markDeleted(gone.id, at.past2038);
        await store.instances.markDeleted(gone.id, new Date());
        assert.equal(await store.instances.get(gone.id), undefined);
        assert.equal(await store.instances.get(gone.id, { tenantId }), undefined);
        assert.deepEqual((await store.instances.list({ tenantId, limit: 10 })).items.map((x) => x.id), [kept.id]);
        assert.equal(await store.instances.countActive(tenantId), 1);
        assert.equal(await store.instances.countActive(`tenant-${uid()}`), 0);
        await rejectsWithCode(store.instances.markDeleted(uid(), new Date()), 'InstanceNotFound');
        // The row stays (Trove's soft delete): a delete flow can still record a fault on it.
        await store.instances.update(gone.id, { taskStatus: 'NONE' });
      });

      it('lists page by page in id order, the marker being the last id of a page', async () => {
        const tenantId = `tenant-${uid()}`;
        const rows = Array.from({ length: 5 }, () => instance({ tenantId }));
        for (const r of rows) await store.instances.create(r);
        await store.instances.create(instance()); // another tenant's
        const ids = rows.map((r) => r.id).sort();

        const first = await store.instances.list({ tenantId, limit: 2 });
        assert.deepEqual(first.items.map((x) => x.id), ids.slice(0, 2));
        assert.equal(first.nextMarker, ids[1]);
        const second = await store.instances.list({ tenantId, limit: 2, marker: first.nextMarker! });
        assert.deepEqual(second.items.map((x) => x.id), ids.slice(2, 4));
        assert.equal(second.nextMarker, ids[3]);
        const last = await store.instances.list({ tenantId, limit: 2, marker: second.nextMarker! });
        assert.deepEqual(last.items.map((x) => x.id), ids.slice(4));
        assert.equal(last.nextMarker, null);

        const exact = await store.instances.list({ tenantId, limit: 5 });
        assert.equal(exact.items.length, 5);
        assert.equal(exact.nextMarker, null, 'a page that ends the list has no next marker');
        assert.deepEqual(await store.instances.list({ tenantId, limit: 3, marker: ids[4]! }), { items: [], nextMarker: null });
        await rejectsWithCode(store.instances.list({ tenantId, limit: 0 }), 'BadRequest');
      });

      it("lists summaries: list's pages with only the summary's fields, replicas and access included", async () => {
        const tenantId = `tenant-${uid()}`;
        const source = instance({ tenantId, access: { isPublic: false, allowedCidrs: ['10.0.0.0/8'] } });
        await store.instances.create(source);
        const replica = instance({ tenantId, replicaOfId: source.id });
        await store.instances.create(replica);
        for (let n = 0; n < 3; n++) await store.instances.create(instance({ tenantId }));
        await store.instances.update(source.id, { address: '127.0.0.9', port: 5432, tls: { caCertificate: 'pem', expiresAt: new Date().toISOString(), port: 5433 } });
        await store.instances.create(instance()); // another tenant's
        const fields = ['id', 'name', 'tenantId', 'flavorId', 'volumeSizeGb', 'datastoreVersionId', 'taskStatus', 'address', 'port', 'access', 'createdAt', 'replicaOfId', 'replicaIds'] as const;
        const summaryOf = (row: InstanceRow) => Object.fromEntries(fields.flatMap((f) => (row[f] === undefined ? [] : [[f, row[f]]])));
        let marker: string | undefined;
        let pages = 0;
        do {
          const filter = { tenantId, limit: 2, ...(marker === undefined ? {} : { marker }) };
          const [whole, summaries] = await Promise.all([store.instances.list(filter), store.instances.listSummaries(filter)]);
          assert.deepEqual(summaries.items, whole.items.map(summaryOf));
          assert.equal(summaries.nextMarker, whole.nextMarker);
          for (const row of summaries.items) assert.deepEqual(Object.keys(row).filter((k) => !(fields as readonly string[]).includes(k)), [], 'no column beyond the summary');
          marker = summaries.nextMarker ?? undefined;
          pages += 1;
        } while (marker !== undefined);
        assert.equal(pages, 3);
        const sourceSummary = (await store.instances.listSummaries({ tenantId, limit: 10 })).items.find((x) => x.id === source.id);
        assert.deepEqual(sourceSummary?.replicaIds, [replica.id]);
        assert.deepEqual(sourceSummary?.access, { isPublic: false, allowedCidrs: ['10.0.0.0/8'] });
        assert.equal(sourceSummary?.port, 5432);
        await rejectsWithCode(store.instances.listSummaries({ tenantId, limit: 0 }), 'BadRequest');
      });

      it('lists by host, across tenants', async () => {
        const host = `agent-${uid()}`;
        const a = instance();
        const b = instance();
        await store.instances.create(a);
        await store.instances.create(b);
        await store.instances.create(instance());
        await store.instances.update(a.id, { host });
        await store.instances.update(b.id, { host });
        const page = await store.instances.list({ host, limit: 10 });
        assert.deepEqual(page.items.map((x) => x.id), [a.id, b.id].sort());
        assert.equal(page.nextMarker, null);
      });
    });

    describe('configuration groups', () => {
      it('round-trips a group: typed values, a null description, times to the millisecond', async () => {
        const full = configuration({
          description: 'tuned for reporting',
          values: { max_connections: 200, work_mem: 4096, log_min_duration_statement: -1, random_page_cost: 1.1, jit: false, search_path: "\"$user\", public ☃" },
          createdAt: at.oneMs,
          updatedAt: at.past2038,
        });
        const bare = configuration({ description: null, values: {} });
        await store.configurations.create(full);
        await store.configurations.create(bare);
        assert.deepEqual(await store.configurations.get(full.id), { ...full, deleted: false, deletedAt: null });
        assert.deepEqual(await store.configurations.get(bare.id), { ...bare, deleted: false, deletedAt: null });
        assert.equal((await store.configurations.get(full.id))?.values.jit, false, 'a boolean stays a boolean');
        assert.equal(await store.configurations.get(uid()), undefined);
        const many = await store.configurations.getMany([full.id, bare.id, uid()]);
        assert.deepEqual([...many.keys()].sort(), [full.id, bare.id].sort());
        assert.deepEqual(many.get(full.id), await store.configurations.get(full.id));
        assert.equal((await store.configurations.getMany([])).size, 0);
        await rejectsWithCode(store.configurations.create(bare), 'Conflict');
      });

      it('get is scoped to the tenant when one is given', async () => {
        const c = configuration();
        await store.configurations.create(c);
        assert.equal((await store.configurations.get(c.id, { tenantId: c.tenantId }))?.id, c.id);
        assert.equal(await store.configurations.get(c.id, { tenantId: 'someone-else' }), undefined);
      });

      it('update replaces only what it is given and moves updatedAt; an unknown or deleted group is NotFound', async () => {
        const c = configuration({ values: { a: 1 } });
        await store.configurations.create(c);
        const before = Date.now();
        await store.configurations.update(c.id, { values: { b: 'two' } });
        const got = await store.configurations.get(c.id);
        assert.ok(got && got.updatedAt.getTime() >= before - 1000);
        assert.deepEqual(got, { ...c, values: { b: 'two' }, updatedAt: got.updatedAt, deleted: false, deletedAt: null });
        await store.configurations.update(c.id, { name: 'renamed', description: null });
        assert.deepEqual([(await store.configurations.get(c.id))?.name, (await store.configurations.get(c.id))?.description], ['renamed', null]);
        await rejectsWithCode(store.configurations.update(uid(), { name: 'x' }), 'NotFound');
        await store.configurations.markDeleted(c.id, at.leapDay);
        await rejectsWithCode(store.configurations.update(c.id, { name: 'x' }), 'NotFound');
      });

      it('markDeleted hides the group from get and list, idempotently', async () => {
        const tenantId = `tenant-${uid()}`;
        const kept = configuration({ tenantId });
        const gone = configuration({ tenantId });
        await store.configurations.create(kept);
        await store.configurations.create(gone);
        await store.configurations.markDeleted(gone.id, at.dstSwitch);
        await store.configurations.markDeleted(gone.id, new Date());
        assert.equal(await store.configurations.get(gone.id), undefined);
        assert.deepEqual((await store.configurations.list({ tenantId, limit: 10 })).items.map((x) => x.id), [kept.id]);
        await rejectsWithCode(store.configurations.markDeleted(uid(), new Date()), 'NotFound');
      });

      it('lists page by page in id order, of one project or of all', async () => {
        const tenantId = `tenant-${uid()}`;
        const rows = Array.from({ length: 5 }, () => configuration({ tenantId }));
        for (const r of rows) await store.configurations.create(r);
        const foreign = configuration();
        await store.configurations.create(foreign);
        const ids = rows.map((r) => r.id).sort();
        const first = await store.configurations.list({ tenantId, limit: 2 });
        assert.deepEqual([first.items.map((x) => x.id), first.nextMarker], [ids.slice(0, 2), ids[1]]);
        const second = await store.configurations.list({ tenantId, limit: 2, marker: first.nextMarker! });
        assert.deepEqual(second.items.map((x) => x.id), ids.slice(2, 4));
        const last = await store.configurations.list({ tenantId, limit: 2, marker: second.nextMarker! });
        assert.deepEqual([last.items.map((x) => x.id), last.nextMarker], [ids.slice(4), null]);
        assert.equal((await store.configurations.list({ tenantId, limit: 5 })).nextMarker, null);
        const all: string[] = [];
        for (let marker: string | undefined; ; ) {
          const page = await store.configurations.list({ limit: 3, ...(marker === undefined ? {} : { marker }) });
          all.push(...page.items.map((x) => x.id));
          if (page.nextMarker === null) break;
          marker = page.nextMarker;
        }
        assert.ok([...ids, foreign.id].every((id) => all.includes(id)), 'without a tenant every project\'s groups are listed');
        await rejectsWithCode(store.configurations.list({ tenantId, limit: 0 }), 'BadRequest');
      });

      it('instances carry their group; the group lists and counts its live instances, per project or all', async () => {
        const c = configuration();
        await store.configurations.create(c);
        const tenantId = c.tenantId;
        const attached = Array.from({ length: 3 }, () => instance({ tenantId, configurationId: c.id }));
        const foreign = instance({ configurationId: c.id });
        const unattached = instance({ tenantId });
        for (const i of [...attached, foreign, unattached]) await store.instances.create(i);
        assert.equal((await store.instances.get(attached[0]!.id))?.configurationId, c.id);
        assert.equal((await store.instances.get(unattached.id))?.configurationId, null);
        assert.equal(await store.configurations.countInstances(c.id), 4);
        assert.equal(await store.configurations.countInstances(c.id, { tenantId }), 3);
        const ids = attached.map((i) => i.id).sort();
        const page = await store.configurations.instances(c.id, { tenantId, limit: 2 });
        assert.deepEqual([page.items.map((i) => i.id), page.nextMarker], [ids.slice(0, 2), ids[1]]);
        const rest = await store.configurations.instances(c.id, { tenantId, limit: 2, marker: page.nextMarker! });
        assert.deepEqual([rest.items.map((i) => i.id), rest.nextMarker], [ids.slice(2), null]);
        // detaching, and a deleted instance, no longer count
        await store.instances.update(attached[0]!.id, { configurationId: null });
        await store.instances.markDeleted(attached[1]!.id, new Date());
        assert.equal(await store.configurations.countInstances(c.id, { tenantId }), 1);
        assert.deepEqual((await store.configurations.instances(c.id, { limit: 10 })).items.map((i) => i.id), [attached[2]!.id, foreign.id].sort());
        // attaching through an update
        await store.instances.update(unattached.id, { configurationId: c.id });
        assert.equal((await store.instances.get(unattached.id))?.configurationId, c.id);
        assert.equal(await store.instances.updateIfTask(unattached.id, ['BUILDING'], { configurationId: null }), true);
        assert.equal((await store.instances.get(unattached.id))?.configurationId, null);
      });
    });

    describe('service statuses and faults', () => {
      it('set inserts, then replaces the status of an instance', async () => {
        const id = uid();
        assert.equal(await store.serviceStatuses.get(id), undefined);
        await store.serviceStatuses.set({ instanceId: id, status: 'NEW', updatedAt: at.oneMs });
        await store.serviceStatuses.set({ instanceId: id, status: 'HEALTHY', updatedAt: at.leapDay });
        assert.deepEqual(await store.serviceStatuses.get(id), { instanceId: id, status: 'HEALTHY', updatedAt: at.leapDay });
      });

      it('markAwaitingAdoption flags the rows of those instances only, leaving their status and time; the next set clears it', async () => {
        const [waiting, other] = [uid(), uid()];
        for (const id of [waiting, other]) await store.serviceStatuses.set({ instanceId: id, status: 'HEALTHY', updatedAt: at.oneMs });
        await store.serviceStatuses.markAwaitingAdoption([waiting, uid()]);
        await store.serviceStatuses.markAwaitingAdoption([]);
        assert.deepEqual(await store.serviceStatuses.get(waiting), { instanceId: waiting, status: 'HEALTHY', updatedAt: at.oneMs, awaitingAdoption: true });
        assert.equal((await store.serviceStatuses.get(other))?.awaitingAdoption, undefined);
        await store.serviceStatuses.set({ instanceId: waiting, status: 'HEALTHY', updatedAt: at.leapDay });
        assert.deepEqual(await store.serviceStatuses.get(waiting), { instanceId: waiting, status: 'HEALTHY', updatedAt: at.leapDay });
      });

      it('report keeps volume usage (past 2^32 bytes, time to the millisecond) and health detail beside the status; set leaves them', async () => {
        const live = instance();
        await store.instances.create(live);
        const id = live.id;
        await store.serviceStatuses.report(id, { volumeUsage: { usedBytes: 5, measuredAt: at.oneMs } });
        assert.equal(await store.serviceStatuses.get(id), undefined, 'no status row, nothing written');
        await store.serviceStatuses.set({ instanceId: id, status: 'HEALTHY', updatedAt: at.oneMs });
        const usage = { usedBytes: 2 ** 40 + 7, measuredAt: at.leapDay };
        const detail = `PostgreSQL exited (code 1) while starting.\n${'log line é\n'.repeat(100)}`;
        await store.serviceStatuses.report(id, { volumeUsage: usage, healthDetail: detail });
        await store.serviceStatuses.set({ instanceId: id, status: 'CRASHED', updatedAt: at.past2038 });
        assert.deepEqual(await store.serviceStatuses.get(id), {
          instanceId: id,
          status: 'CRASHED',
          updatedAt: at.past2038,
          volumeUsage: usage,
          healthDetail: detail,
        });
        await store.serviceStatuses.report(id, { healthDetail: null });
        await store.serviceStatuses.report(id, {});
        assert.deepEqual((await store.serviceStatuses.get(id))?.volumeUsage, usage, 'a report without usage keeps it');
        assert.equal((await store.serviceStatuses.get(id))?.healthDetail, undefined, 'a null health detail clears it');
        await store.serviceStatuses.report(id, { volumeUsage: { usedBytes: 0, measuredAt: at.oneMs } });
        assert.deepEqual((await store.serviceStatuses.get(id))?.volumeUsage, { usedBytes: 0, measuredAt: at.oneMs });
      });

      it("report keeps the engine's metrics beside the status, read back whole; markDeleted clears them", async () => {
        const live = instance();
        await store.instances.create(live);
        await store.serviceStatuses.set({ instanceId: live.id, status: 'HEALTHY', updatedAt: at.oneMs });
        const sample = {
          values: { connections: 3, databaseBytes: 2 ** 40 + 1, operations: 2 ** 53 - 1, cacheHitRatio: 0.987654321, replicationLagSeconds: 1.5 },
          measuredAt: at.leapDay,
        };
        await store.serviceStatuses.report(live.id, { engineMetrics: sample });
        await store.serviceStatuses.report(live.id, { healthDetail: null });
        assert.deepEqual((await store.serviceStatuses.get(live.id))?.engineMetrics, sample, 'a report without metrics keeps them');
        const lean = { values: { connections: 0, databaseBytes: 0, operations: 0 }, measuredAt: at.past2038 };
        await store.serviceStatuses.report(live.id, { engineMetrics: lean });
        assert.deepEqual((await store.serviceStatuses.get(live.id))?.engineMetrics, lean);
        await store.instances.markDeleted(live.id, at.past2038);
        assert.equal((await store.serviceStatuses.get(live.id))?.engineMetrics, undefined);
      });

      it("markDeleted clears what the guest reported, keeps the status, and later reports for the deleted instance are not kept", async () => {
        const gone = instance();
        await store.instances.create(gone);
        await store.serviceStatuses.set({ instanceId: gone.id, status: 'HEALTHY', updatedAt: at.oneMs });
        await store.serviceStatuses.report(gone.id, { volumeUsage: { usedBytes: 1024, measuredAt: at.oneMs }, healthDetail: 'x' });
        await store.instances.markDeleted(gone.id, at.leapDay);
        assert.deepEqual(await store.serviceStatuses.get(gone.id), { instanceId: gone.id, status: 'HEALTHY', updatedAt: at.oneMs });
        await store.serviceStatuses.report(gone.id, { volumeUsage: { usedBytes: 2048, measuredAt: at.leapDay } });
        assert.equal((await store.serviceStatuses.get(gone.id))?.volumeUsage, undefined);
        // inside a transaction, as the delete flow does it
        const other = instance();
        await store.instances.create(other);
        await store.serviceStatuses.set({ instanceId: other.id, status: 'HEALTHY', updatedAt: at.oneMs });
        await store.serviceStatuses.report(other.id, { volumeUsage: { usedBytes: 1024, measuredAt: at.oneMs } });
        await store.transaction(async (tx) => {
          await tx.instances.markDeleted(other.id, at.leapDay);
          await tx.serviceStatuses.set({ instanceId: other.id, status: 'DELETED', updatedAt: at.leapDay });
        });
        assert.deepEqual(await store.serviceStatuses.get(other.id), { instanceId: other.id, status: 'DELETED', updatedAt: at.leapDay });
      });

      it('latest returns the newest fault; clear removes them all', async () => {
        const instanceId = uid();
        const older = { id: uid(), instanceId, message: 'disk full', details: 'x'.repeat(70_000), createdAt: at.oneMs };
        const newer = { id: uid(), instanceId, message: 'crashed', details: 'trace', createdAt: at.leapDay };
        await store.faults.record(newer);
        await store.faults.record(older);
        assert.deepEqual(await store.faults.latest(instanceId), newer);
        await rejectsWithCode(store.faults.record(newer), 'Conflict');
        await store.faults.clear(instanceId);
        assert.equal(await store.faults.latest(instanceId), undefined);
      });

      it('getMany and latestOf read the statuses and newest faults of many instances at once', async () => {
        const [a, b, none] = [uid(), uid(), uid()];
        await store.serviceStatuses.set({ instanceId: a, status: 'HEALTHY', updatedAt: at.leapDay });
        await store.serviceStatuses.set({ instanceId: b, status: 'CRASHED', updatedAt: at.oneMs });
        const statuses = await store.serviceStatuses.getMany([a, b, none]);
        assert.deepEqual([...statuses.keys()].sort(), [a, b].sort());
        assert.deepEqual(statuses.get(a), await store.serviceStatuses.get(a));
        assert.deepEqual(statuses.get(b), await store.serviceStatuses.get(b));
        assert.equal((await store.serviceStatuses.getMany([])).size, 0);
        // what views show, not the engine's metrics or health detail: get has those (a report needs a live instance)
        await store.instances.create(instance({ id: a }));
        const usage = { usedBytes: 7_000_000_000, measuredAt: at.dstSwitch };
        const engineMetrics = { values: { connections: 3, databaseBytes: 1024, operations: 99 }, measuredAt: at.dstSwitch };
        await store.serviceStatuses.report(a, { volumeUsage: usage, healthDetail: 'restarted twice', engineMetrics });
        await store.serviceStatuses.markAwaitingAdoption([a]);
        const whole = await store.serviceStatuses.get(a);
        assert.deepEqual(whole, { instanceId: a, status: 'HEALTHY', updatedAt: at.leapDay, volumeUsage: usage, healthDetail: 'restarted twice', engineMetrics, awaitingAdoption: true });
        assert.deepEqual((await store.serviceStatuses.getMany([a])).get(a), { instanceId: a, status: 'HEALTHY', updatedAt: at.leapDay, volumeUsage: usage, awaitingAdoption: true });
        const fault = (instanceId: string, createdAt: Date, id = uid()) => ({ id, instanceId, message: `m-${id}`, details: 'd', createdAt });
        // b's two newest share a millisecond: the higher id wins, as in `latest`
        const faults = [fault(a, at.oneMs), fault(a, at.leapDay), fault(a, at.dstSwitch), fault(b, at.leapDay, `1-${uid()}`), fault(b, at.leapDay, `2-${uid()}`)];
        for (const f of faults) await store.faults.record(f);
        const latest = await store.faults.latestOf([a, b, none]);
        assert.deepEqual([...latest.keys()].sort(), [a, b].sort());
        assert.deepEqual(latest.get(a), faults[2]);
        assert.deepEqual(latest.get(b), faults[4]);
        assert.deepEqual(latest.get(b), await store.faults.latest(b));
        assert.equal((await store.faults.latestOf([])).size, 0);
      });
    });

    describe('instance events', () => {
      it('lists newest first (one millisecond as recorded), pages on past an event, and refuses an unknown marker', async () => {
        const instanceId = uid();
        const event = (name: string, createdAt: Date) => ({ instanceId, type: 'status', name, message: name === 'B' ? 'engine crashed' : null, createdAt }) as const;
        for (const e of [event('C', at.dstSwitch), event('A', at.oneMs), event('D', at.dstSwitch), event('B', at.leapDay)]) await store.instanceEvents.record(e);
        await store.instanceEvents.record({ ...event('X', at.dstSwitch), instanceId: uid() });
        const all = await store.instanceEvents.list(instanceId, { limit: 10 });
        assert.deepEqual(
          all.map(({ id: _id, ...rest }) => rest),
          [event('D', at.dstSwitch), event('C', at.dstSwitch), event('B', at.leapDay), event('A', at.oneMs)],
        );
        assert.equal(new Set(all.map((e) => e.id)).size, 4);
        assert.deepEqual(await store.instanceEvents.list(instanceId, { limit: 1 }), all.slice(0, 1));
        assert.deepEqual(await store.instanceEvents.list(instanceId, { limit: 2, after: all[0]!.id }), all.slice(1, 3));
        assert.deepEqual(await store.instanceEvents.list(instanceId, { limit: 2, after: all[3]!.id }), []);
        await rejectsWithCode(store.instanceEvents.list(instanceId, { limit: 2, after: 'no-such-event' }), 'BadRequest');
      });

      it(`keeps an instance's newest ${instanceEventsKept} only`, async () => {
        const instanceId = uid();
        const base = at.dstSwitch.getTime();
        for (let n = 0; n < instanceEventsKept + 3; n++) {
          await store.instanceEvents.record({ instanceId, type: 'status', name: n % 2 === 0 ? 'HEALTHY' : 'CRASHED', message: null, createdAt: new Date(base + n * 1000) });
        }
        const kept = await store.instanceEvents.list(instanceId, { limit: instanceEventsKept + 10 });
        assert.equal(kept.length, instanceEventsKept);
        assert.equal(kept.at(-1)!.createdAt.getTime(), base + 3 * 1000, 'the three oldest went');
      });
    });

    describe('tasks', () => {
      it('round-trips a task with its JSON payload', async () => {
        const t = task(uid(), { payload: { nested: { list: [1, 'two', null, true] }, n: 1.5 } });
        await store.tasks.create(t);
        assert.deepEqual(await store.tasks.get(t.id), t);
        assert.equal(await store.tasks.get(uid()), undefined);
        await rejectsWithCode(store.tasks.create(t), 'Conflict');
      });

      it('claim takes a pending task: running, owned, leased from now, one attempt more', async () => {
        const t = task(uid());
        await store.tasks.create(t);
        const now = new Date('2030-05-05T05:05:05.505Z');
        const claimed = await store.tasks.claim(t.id, 'worker-a', 30_000, now);
        assert.deepEqual(claimed, {
          ...t,
          state: 'running',
          owner: 'worker-a',
          leaseExpiresAt: new Date(now.getTime() + 30_000),
          attempts: 1,
          updatedAt: now,
        });
        assert.equal(await store.tasks.claim(t.id, 'worker-b', 30_000, now), undefined);
        assert.equal(await store.tasks.claim(uid(), 'worker-b', 30_000, now), undefined);
      });

      it('of ten concurrent claims on one task exactly one wins', async () => {
        const t = task(uid());
        await store.tasks.create(t);
        const now = new Date();
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, n) => store.tasks.claim(t.id, `worker-${n}`, 60_000, now)),
        );
        const winners = results.filter((r) => r !== undefined);
        assert.equal(winners.length, 1);
        const stored = await store.tasks.get(t.id);
        assert.equal(stored?.owner, winners[0]!.owner);
        assert.equal(stored?.attempts, 1);
      });

      it('a task whose lease ran out can be claimed again, and only once', async () => {
        const t = task(uid());
        await store.tasks.create(t);
        const start = new Date('2030-01-01T00:00:00.000Z');
        await store.tasks.claim(t.id, 'dead-worker', 1_000, start);
        const expired = new Date(start.getTime() + 1_000);
        assert.equal(await store.tasks.claim(t.id, 'early', 1_000, new Date(expired.getTime() - 1)), undefined);
        const results = await Promise.all(
          Array.from({ length: 5 }, (_, n) => store.tasks.claim(t.id, `heir-${n}`, 1_000, expired)),
        );
        const heirs = results.filter((r) => r !== undefined);
        assert.equal(heirs.length, 1);
        assert.equal(heirs[0]!.attempts, 2);
        assert.equal(await store.tasks.renewLease(t.id, 'dead-worker', 1_000, expired), false);
        assert.equal(await store.tasks.recordStep(t.id, 'dead-worker', 'late'), false);
        assert.equal(await store.tasks.finish(t.id, 'dead-worker', 'failed'), false);
      });

      it('listClaimable returns pending and lease-expired tasks, oldest first, up to the limit', async () => {
        // Older than any other test's tasks, so the oldest-first page is ours.
        const base = Date.parse('1990-01-01T00:00:00.000Z');
        const now = new Date('1990-02-01T00:00:00.000Z');
        const mk = (minutes: number, overrides = {}) =>
          task(uid(), { createdAt: new Date(base + minutes * 60_000), ...overrides });
        const pendingOld = mk(1);
        const expiredRun = mk(2, { state: 'running', owner: 'w', leaseExpiresAt: new Date(now.getTime() - 1) });
        const liveRun = mk(3, { state: 'running', owner: 'w', leaseExpiresAt: new Date(now.getTime() + 60_000) });
        const done = mk(4, { state: 'done' });
        const pendingNew = mk(5);
        for (const t of [pendingNew, done, liveRun, expiredRun, pendingOld]) await store.tasks.create(t);
        const ids = (await store.tasks.listClaimable(now, 3)).map((t) => t.id);
        assert.deepEqual(ids, [pendingOld.id, expiredRun.id, pendingNew.id]);
        assert.deepEqual((await store.tasks.listClaimable(now, 1)).map((t) => t.id), [pendingOld.id]);
      });

      it('renewLease, recordStep and finish work for the owner only; finish clears the payload', async () => {
        const instanceId = uid();
        const t = task(instanceId);
        await store.tasks.create(t);
        assert.equal(await store.tasks.renewLease(t.id, 'w1', 1_000, new Date()), false, 'not running yet');
        const now = new Date('2031-01-01T00:00:00.000Z');
        await store.tasks.claim(t.id, 'w1', 1_000, now);
        assert.deepEqual(await store.tasks.activeForInstance(instanceId), await store.tasks.get(t.id));

        const later = new Date(now.getTime() + 500);
        assert.equal(await store.tasks.renewLease(t.id, 'w2', 10_000, later), false);
        assert.equal(await store.tasks.renewLease(t.id, 'w1', 10_000, later), true);
        assert.deepEqual((await store.tasks.get(t.id))?.leaseExpiresAt, new Date(later.getTime() + 10_000));

        assert.equal(await store.tasks.recordStep(t.id, 'w2', 'placed'), false);
        assert.equal(await store.tasks.recordStep(t.id, 'w1', 'placed'), true);
        let got = await store.tasks.get(t.id);
        assert.equal(got?.step, 'placed');
        assert.deepEqual(got?.payload, t.payload, 'payload kept when none is given');
        assert.equal(await store.tasks.recordStep(t.id, 'w1', 'prepared', { phase: 2 }), true);
        got = await store.tasks.get(t.id);
        assert.equal(got?.step, 'prepared');
        assert.deepEqual(got?.payload, { phase: 2 });

        assert.equal(await store.tasks.finish(t.id, 'w2', 'done'), false);
        assert.equal(await store.tasks.finish(t.id, 'w1', 'done'), true);
        got = await store.tasks.get(t.id);
        assert.equal(got?.state, 'done');
        assert.equal(got?.owner, null);
        assert.equal(got?.leaseExpiresAt, null);
        assert.equal(got?.payload, null);
        assert.equal(got?.step, 'prepared');
        assert.equal(await store.tasks.finish(t.id, 'w1', 'failed'), false, 'a finished task stays finished');
        assert.equal(await store.tasks.claim(t.id, 'w3', 1_000, new Date('2100-01-01T00:00:00Z')), undefined);
        assert.equal(await store.tasks.activeForInstance(instanceId), undefined);
      });

      it("recordProgress sets the running task's progress only; finish clears it", async () => {
        const instanceId = uid();
        const t = task(instanceId);
        await store.tasks.create(t);
        const progress = { step: 'creating databases and users', percent: 70, updatedAt: at.oneMs };
        assert.equal(await store.tasks.recordProgress(instanceId, progress), false, 'a pending task has not started');
        assert.equal((await store.tasks.get(t.id))?.progress, null);
        await store.tasks.claim(t.id, 'w1', 60_000, new Date('2031-01-01T00:00:00.000Z'));
        assert.equal(await store.tasks.recordProgress(instanceId, { step: 'initialising', percent: 0, updatedAt: at.leapDay }), true);
        assert.equal(await store.tasks.recordProgress(instanceId, progress), true);
        const running = await store.tasks.get(t.id);
        assert.deepEqual(running?.progress, progress);
        assert.deepEqual(running?.updatedAt, new Date('2031-01-01T00:00:00.000Z'), "the task's own update time is the taskmanager's");
        assert.deepEqual((await store.tasks.activeForInstance(instanceId))?.progress, progress);
        assert.equal(await store.tasks.recordProgress(uid(), progress), false, 'an instance without tasks');
        assert.equal(await store.tasks.finish(t.id, 'w1', 'done'), true);
        assert.equal((await store.tasks.get(t.id))?.progress, null);
        assert.equal(await store.tasks.recordProgress(instanceId, progress), false, 'a finished task takes none');
        assert.equal((await store.tasks.get(t.id))?.progress, null);
      });

      it('activeForInstance finds the pending task of an instance', async () => {
        const instanceId = uid();
        await store.tasks.create(task(instanceId, { state: 'failed', createdAt: at.oneMs }));
        const pending = task(instanceId, { kind: 'delete_instance' });
        await store.tasks.create(pending);
        assert.deepEqual(await store.tasks.activeForInstance(instanceId), pending);
        assert.equal(await store.tasks.activeForInstance(uid()), undefined);
      });

      it('activeForInstances finds the newest unfinished task of each instance at once', async () => {
        const [a, b, idle] = [uid(), uid(), uid()];
        await store.tasks.create(task(a, { state: 'pending', createdAt: at.oneMs }));
        const newest = task(a, { kind: 'delete_instance', createdAt: at.leapDay });
        await store.tasks.create(newest);
        const pending = task(b);
        await store.tasks.create(pending);
        await store.tasks.create(task(idle, { state: 'failed' }));
        const active = await store.tasks.activeForInstances([a, b, idle, uid()]);
        assert.deepEqual([...active.keys()].sort(), [a, b].sort());
        assert.deepEqual(active.get(a), newest);
        assert.deepEqual(active.get(a), await store.tasks.activeForInstance(a));
        assert.deepEqual(active.get(b), pending);
        assert.equal((await store.tasks.activeForInstances([])).size, 0);
      });
    });

    describe('backups of many instances', () => {
      it('completedFullOf reads the live COMPLETED full backups of the instances named, and instancesWithRunning which have one running', async () => {
        const [a, b, other] = [instance(), instance(), instance()];
        for (const i of [a, b, other]) await store.instances.create(i);
        const made: Record<string, string> = {};
        const backup = async (name: string, instanceId: string, state: 'COMPLETED' | 'BUILDING' | 'FAILED', backupType: 'full' | 'incremental' = 'full') => {
          const id = uid();
          made[name] = id;
          await store.backups.create({
            id,
            tenantId: a.tenantId,
            instanceId,
            name,
            description: null,
            datastoreVersionId: null,
            parentId: null,
            backupType,
            state,
            container: 'c',
            objectName: name,
            createdAt: at.leapDay,
            updatedAt: at.leapDay,
          });
        };
        await backup('a-full', a.id, 'COMPLETED');
        await backup('a-incremental', a.id, 'COMPLETED', 'incremental');
        await backup('a-running', a.id, 'BUILDING');
        await backup('a-deleted', a.id, 'COMPLETED');
        await store.backups.markDeleted(made['a-deleted']!, at.leapDay);
        await backup('b-full', b.id, 'COMPLETED');
        await backup('b-failed', b.id, 'FAILED');
        await backup('other-full', other.id, 'COMPLETED');
        const found = await store.backups.completedFullOf([a.id, b.id]);
        assert.deepEqual(found.map((x) => x.name).sort(), ['a-full', 'b-full']);
        assert.deepEqual(found.find((x) => x.name === 'a-full'), await store.backups.get(made['a-full']!));
        assert.deepEqual(await store.backups.completedFullOf([]), []);
        assert.deepEqual([...(await store.backups.instancesWithRunning([a.id, b.id, other.id]))], [a.id]);
      });
    });

    describe('instances by host', () => {
      it('countLiveByHost counts each named host’s live instances (internal ones too), zero for a host with none', async () => {
        const [a, b] = [`host-${uid()}`, `host-${uid()}`];
        const place = async (host: string, options: { deleted?: boolean; internal?: boolean } = {}) => {
          const row = instance(options.internal === true ? { internal: true } : {});
          await store.instances.create(row);
          await store.instances.update(row.id, { host });
          if (options.deleted === true) await store.instances.markDeleted(row.id, at.leapDay);
        };
        await place(a);
        await place(a);
        await place(a, { internal: true });
        await place(a, { deleted: true });
        await place(`host-${uid()}`);
        const counts = await store.instances.countLiveByHost([a, b]);
        assert.deepEqual([...counts.entries()].sort(), [[a, 3], [b, 0]].sort());
        assert.equal((await store.instances.countLiveByHost([])).size, 0);
      });
    });

    describe('backups by stored name', () => {
      it('byObjectNames finds deleted and failed backups of one container by object name, and containers lists every container ever used', async () => {
        const a = instance();
        await store.instances.create(a);
        const container = `sweep-${uid()}`;
        const backup = async (objectName: string, state: 'COMPLETED' | 'FAILED', inContainer = container) => {
          const id = uid();
          await store.backups.create({
            id,
            tenantId: a.tenantId,
            instanceId: a.id,
            name: objectName,
            description: null,
            datastoreVersionId: null,
            parentId: null,
            backupType: 'full',
            state,
            container: inContainer,
            objectName,
            createdAt: at.leapDay,
            updatedAt: at.leapDay,
          });
          return id;
        };
        await backup('kept', 'COMPLETED');
        await backup('failed', 'FAILED');
        const deleted = await backup('deleted', 'COMPLETED');
        await store.backups.markDeleted(deleted, at.leapDay);
        await backup('elsewhere', 'FAILED', `${container}-other`);
        const names = Array.from({ length: 1200 }, (_, i) => `absent-${i}`);
        const found = await store.backups.byObjectNames(container, ['kept', 'failed', 'deleted', 'elsewhere', ...names]);
        assert.deepEqual(found.map((b) => `${b.objectName}:${b.state}:${b.deleted}`).sort(), ['deleted:COMPLETED:true', 'failed:FAILED:false', 'kept:COMPLETED:false']);
        assert.deepEqual(await store.backups.byObjectNames(container, []), []);
        const containers = await store.backups.containers();
        assert.ok(containers.includes(container) && containers.includes(`${container}-other`));
        assert.equal(new Set(containers).size, containers.length, 'each container once');
      });
    });

    describe('ping', () => {
      it('answers while the database does (what /readyz asks)', async () => {
        await store.ping();
        await store.ping();
      });
    });

    describe('conductor last seen', () => {
      it('accepts only newer times per instance and method, to the fraction of a millisecond', async () => {
        const id = uid();
        const sent = 1_709_251_199_987.125;
        assert.equal(await store.conductorLastSeen.recordIfNewer(id, 'heartbeat', sent), true);
        assert.equal(await store.conductorLastSeen.recordIfNewer(id, 'heartbeat', sent), false, 'duplicate');
        assert.equal(await store.conductorLastSeen.recordIfNewer(id, 'heartbeat', sent - 0.125), false, 'stale');
        assert.equal(await store.conductorLastSeen.recordIfNewer(id, 'heartbeat', sent + 0.125), true);
        assert.equal(await store.conductorLastSeen.recordIfNewer(id, 'backup_update', sent - 1), true, 'other method');
        assert.equal(await store.conductorLastSeen.recordIfNewer(uid(), 'heartbeat', 1), true, 'other instance');
      });

      it('under concurrency the newest wins and a duplicate counts once', async () => {
        const id = uid();
        const times = Array.from({ length: 12 }, (_, n) => 1_700_000_000_000 + n * 0.5);
        const results = await Promise.all(times.map((t) => store.conductorLastSeen.recordIfNewer(id, 'heartbeat', t)));
        assert.equal(results.at(-1), true, 'the newest message is never stale');
        const newest = times.at(-1)!;
        assert.equal(await store.conductorLastSeen.recordIfNewer(id, 'heartbeat', newest), false);
        assert.equal(await store.conductorLastSeen.recordIfNewer(id, 'heartbeat', newest + 0.001), true);

        const fresh = uid();
        const dupes = await Promise.all(
          Array.from({ length: 10 }, () => store.conductorLastSeen.recordIfNewer(fresh, 'heartbeat', 42.5)),
        );
        assert.equal(dupes.filter(Boolean).length, 1);
      });

      it("lists live instances' last heartbeats with their project and datastore name, not deleted instances' nor other methods'", async () => {
        const ds = await store.datastores.ensureDatastore(`hb-${uid().slice(0, 8)}`, uid());
        const version = await store.datastores.upsertVersion({
          id: uid(),
          datastoreId: ds.id,
          name: '1',
          version: '1.0',
          manager: 'postgresql',
          active: true,
          inactiveReason: null,
          updatedAt: at.leapDay,
        });
        const [live, gone, silent] = [instance({ datastoreVersionId: version.id }), instance({ datastoreVersionId: version.id }), instance({ datastoreVersionId: version.id })];
        for (const i of [live, gone, silent]) await store.instances.create(i);
        const sent = 1_709_251_199_987.125;
        await store.conductorLastSeen.recordIfNewer(live.id, 'heartbeat', sent);
        await store.conductorLastSeen.recordIfNewer(live.id, 'backup_update', sent + 5);
        await store.conductorLastSeen.recordIfNewer(gone.id, 'heartbeat', sent);
        await store.conductorLastSeen.recordIfNewer(silent.id, 'backup_update', sent);
        await store.instances.markDeleted(gone.id, at.leapDay);
        const mine = (await store.conductorLastSeen.listHeartbeats()).filter((h) => [live.id, gone.id, silent.id].includes(h.instanceId));
        assert.deepEqual(mine, [{ instanceId: live.id, tenantId: live.tenantId, datastore: ds.name, sentAt: sent }]);
        // with the status and the engine's metrics the heartbeats left
        await store.serviceStatuses.set({ instanceId: live.id, status: 'HEALTHY', updatedAt: at.leapDay });
        const engineMetrics = { values: { connections: 2, databaseBytes: 4096, operations: 99, cacheHitRatio: 0.5 }, measuredAt: at.leapDay };
        await store.serviceStatuses.report(live.id, { engineMetrics });
        const [beat] = (await store.conductorLastSeen.listHeartbeats()).filter((h) => h.instanceId === live.id);
        assert.deepEqual(beat, { instanceId: live.id, tenantId: live.tenantId, datastore: ds.name, sentAt: sent, status: 'HEALTHY', engineMetrics });
      });

      it('first messages of many instances recorded in concurrent transactions all go through', async () => {
        // The conductor records the time and the status in one transaction per heartbeat.
        const ids = Array.from({ length: 8 }, () => uid());
        const results = await Promise.all(
          ids.map((id) => store.transaction((tx) => tx.conductorLastSeen.recordIfNewer(id, 'heartbeat', 1_700_000_000_000))),
        );
        assert.deepEqual(results, ids.map(() => true));
      });
    });

    describe('agents', () => {
      it('heartbeat inserts then refreshes (engines and contract versions too); listAlive returns the agents seen since, by host', async () => {
        const prefix = `host-${uid()}`;
        const since = new Date('2095-01-01T00:00:00.000Z');
        await store.agents.heartbeat(`${prefix}-b`, new Date(since.getTime() - 1), []);
        await store.agents.heartbeat(`${prefix}-a`, since, ['postgresql/15']);
        await store.agents.heartbeat(`${prefix}-c`, new Date(since.getTime() - 1), []);
        await store.agents.heartbeat(`${prefix}-b`, at.past2038, []);
        await store.agents.heartbeat(`${prefix}-b`, new Date(since.getTime() + 1), ['postgresql/15', 'postgresql/16'], { agent: '1.0', guest: '1.2' });
        const alive = (await store.agents.listAlive(since)).filter((a) => a.host.startsWith(prefix));
        assert.deepEqual(alive, [
          { host: `${prefix}-a`, lastSeenAt: since, engines: ['postgresql/15'], contracts: {} },
          {
            host: `${prefix}-b`,
            lastSeenAt: new Date(since.getTime() + 1),
            engines: ['postgresql/15', 'postgresql/16'],
            contracts: { agent: '1.0', guest: '1.2' },
          },
        ]);
      });
    });

    describe('root enabled history', () => {
      it('records the first enable of root on an instance and keeps it; get answers undefined before', async () => {
        const instanceId = uid();
        assert.equal(await store.rootHistory.get(instanceId), undefined);
        const first = { instanceId, userId: uid().replaceAll('-', ''), createdAt: at.dstSwitch };
        assert.deepEqual(await store.rootHistory.record(first), first);
        const later = { instanceId, userId: uid().replaceAll('-', ''), createdAt: at.past2038 };
        assert.deepEqual(await store.rootHistory.record(later), first);
        assert.deepEqual(await store.rootHistory.get(instanceId), first);
        assert.equal(await store.rootHistory.get(uid()), undefined);
      });

      it('of concurrent first enables exactly one is kept', async () => {
        const instanceId = uid();
        const rows = Array.from({ length: 8 }, (_, n) => ({ instanceId, userId: `user-${n}`, createdAt: at.leapDay }));
        const results = await Promise.all(rows.map((r) => store.rootHistory.record(r)));
        const kept = await store.rootHistory.get(instanceId);
        assert.ok(kept !== undefined && rows.some((r) => r.userId === kept.userId));
        for (const r of results) assert.deepEqual(r, kept);
      });
    });

    describe('instances across projects (management)', () => {
      it('listAll filters by deleted and project; get reaches a deleted instance only when asked', async () => {
        const tenantId = `tenant-${uid()}`;
        const live = instance({ tenantId });
        const gone = instance({ tenantId });
        const other = instance();
        for (const i of [live, gone, other]) await store.instances.create(i);
        await store.instances.markDeleted(gone.id, at.oneMs);
        const ids = (rows: { id: string }[]) => rows.map((r) => r.id);
        const sorted = (...rows: { id: string }[]) => ids(rows).sort();
        assert.deepEqual(ids(await store.instances.listAll({ tenantId })), sorted(live, gone));
        assert.deepEqual(ids(await store.instances.listAll({ tenantId, deleted: false })), [live.id]);
        const deleted = await store.instances.listAll({ tenantId, deleted: true });
        assert.deepEqual(ids(deleted), [gone.id]);
        assert.equal(deleted[0]?.deleted, true);
        assert.deepEqual(deleted[0]?.deletedAt, at.oneMs);
        const everyone = ids(await store.instances.listAll({}));
        assert.ok([live.id, gone.id, other.id].every((id) => everyone.includes(id)));
        assert.equal(await store.instances.get(gone.id), undefined);
        assert.equal((await store.instances.get(gone.id, { includeDeleted: true }))?.deleted, true);
        assert.equal(await store.instances.get(gone.id, { includeDeleted: true, tenantId: 'someone-else' }), undefined);
      });
    });

    describe('backup verifications', () => {
      it('one runs at a time per backup: begin, step, finish, then begin anew replaces the finished one', async () => {
        const backupId = uid();
        const tenantId = `tenant-${uid()}`;
        const at = new Date('2031-02-03T04:05:06.789Z');
        assert.equal(await store.backupVerifications.get(backupId), undefined);
        assert.equal(await store.backupVerifications.update(backupId, { message: 'x' }), false, 'nothing runs yet');
        assert.equal(await store.backupVerifications.begin({ backupId, tenantId, message: 'waiting', startedAt: at }), true);
        assert.equal(await store.backupVerifications.begin({ backupId, tenantId, message: 'again', startedAt: at }), false, 'one runs already');
        assert.equal(await store.backupVerifications.update(backupId, { message: 'checking', scratchInstanceId: 'scratch-1' }), true);
        assert.deepEqual(await store.backupVerifications.get(backupId), {
          backupId, tenantId, status: 'RUNNING', message: 'checking', checks: null, scratchInstanceId: 'scratch-1', startedAt: at, finishedAt: null,
        });
        const end = new Date('2031-02-03T04:06:00.001Z');
        assert.equal(await store.backupVerifications.finish(backupId, { status: 'PASSED', message: 'fine', checks: { tables: 3, errors: 0 }, finishedAt: end }), true);
        assert.equal(await store.backupVerifications.finish(backupId, { status: 'FAILED', message: 'late', finishedAt: end }), false, 'a finished one stays as it ended');
        const passed = await store.backupVerifications.get(backupId);
        assert.deepEqual([passed?.status, passed?.message, passed?.checks, passed?.finishedAt], ['PASSED', 'fine', { tables: 3, errors: 0 }, end]);
        const later = new Date('2031-02-04T00:00:00.000Z');
        assert.equal(await store.backupVerifications.begin({ backupId, tenantId, message: 'waiting', startedAt: later }), true);
        assert.deepEqual(await store.backupVerifications.get(backupId), {
          backupId, tenantId, status: 'RUNNING', message: 'waiting', checks: null, scratchInstanceId: null, startedAt: later, finishedAt: null,
        });
        const many = await store.backupVerifications.getMany([backupId, uid()]);
        assert.deepEqual([...many.keys()], [backupId]);
      });
    });

    describe('quotas', () => {
      it('sets, replaces and lists a project\'s own limits, apart from other projects', async () => {
        const tenantId = `tenant-${uid()}`;
        assert.deepEqual(await store.quotas.list(tenantId), []);
        await store.quotas.set({ tenantId, resource: 'volumes', hardLimit: 100 });
        await store.quotas.set({ tenantId, resource: 'instances', hardLimit: 3 });
        await store.quotas.set({ tenantId, resource: 'instances', hardLimit: -1 });
        await store.quotas.set({ tenantId: `tenant-${uid()}`, resource: 'instances', hardLimit: 7 });
        assert.deepEqual(await store.quotas.list(tenantId), [
          { tenantId, resource: 'instances', hardLimit: -1 },
          { tenantId, resource: 'volumes', hardLimit: 100 },
        ]);
      });

      it('usage counts the live instances of the project, their volume GB and their flavors\' RAM', async () => {
        const tenantId = `tenant-${uid()}`;
        const flavorId = `flavor-${uid()}`;
        await store.flavors.upsert({ id: flavorId, name: 'q', ramMb: 768, vcpus: 1, diskGb: 0, ephemeralGb: 0 });
        assert.deepEqual(await store.quotas.usage(tenantId), { instances: 0, ram: 0, volumes: 0, backups: 0 });
        await store.instances.create(instance({ tenantId, flavorId, volumeSizeGb: 3 }));
        await store.instances.create(instance({ tenantId, flavorId, volumeSizeGb: 4 }));
        // A flavor deleted since still counts as an instance and its volume, with no RAM.
        await store.instances.create(instance({ tenantId, flavorId: `gone-${uid()}`, volumeSizeGb: 5 }));
        const deleted = instance({ tenantId, flavorId, volumeSizeGb: 9 });
        await store.instances.create(deleted);
        await store.instances.markDeleted(deleted.id, new Date());
        await store.instances.create(instance({ flavorId, volumeSizeGb: 9 }));
        assert.deepEqual(await store.quotas.usage(tenantId), { instances: 3, ram: 1536, volumes: 12, backups: 0 });
      });

      it('lockTenant makes concurrent check-then-insert transactions of one project take turns', async () => {
        const tenantId = `tenant-${uid()}`;
        const limit = 2;
        const attempt = () =>
          store.transaction(async (tx) => {
            await tx.quotas.lockTenant(tenantId, new Date());
            const { instances } = await tx.quotas.usage(tenantId);
            if (instances >= limit) return false;
            await tx.instances.create(instance({ tenantId }));
            return true;
          });
        const results = await Promise.all(Array.from({ length: 6 }, attempt));
        assert.equal(results.filter(Boolean).length, limit);
        assert.equal((await store.quotas.usage(tenantId)).instances, limit);
      });

      it('usage after lockTenant sees what others committed, even when the transaction read before it', async () => {
        // MySQL's repeatable read would otherwise answer from the snapshot of that first read.
        const tenantId = `tenant-${uid()}`;
        const limit = 2;
        const attempt = () =>
          store.transaction(async (tx) => {
            await tx.quotas.list(tenantId);
            await tx.instances.get(uid());
            await tx.quotas.lockTenant(tenantId, new Date());
            const { instances } = await tx.quotas.usage(tenantId);
            if (instances >= limit) return false;
            await tx.instances.create(instance({ tenantId }));
            return true;
          });
        const results = await Promise.all(Array.from({ length: 6 }, attempt));
        assert.equal(results.filter(Boolean).length, limit);
        assert.equal((await store.quotas.usage(tenantId)).instances, limit);
      });
    });

    backupScheduleStoreTests(() => store);
    webhookStoreTests(() => store);

    describe('transactions', () => {
      it('commits what fn wrote and returns its result', async () => {
        const p = project();
        const i = instance();
        const result = await store.transaction(async (tx) => {
          await tx.projects.create(p);
          await tx.instances.create(i);
          assert.equal((await tx.instances.get(i.id))?.id, i.id, 'reads its own writes');
          return 'done';
        });
        assert.equal(result, 'done');
        assert.deepEqual(await store.projects.get(p.id), p);
        assert.equal((await store.instances.get(i.id))?.id, i.id);
      });

      it('rolls everything back when fn throws, and rethrows the same error', async () => {
        const p = project();
        const i = instance();
        const t = task(i.id);
        await store.tasks.create(t);
        const boom = new Error('boom');
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.projects.create(p);
            await tx.instances.create(i);
            assert.ok(await tx.tasks.claim(t.id, 'w', 1_000, new Date()));
            await tx.conductorLastSeen.recordIfNewer(i.id, 'heartbeat', 1);
            throw boom;
          }),
          (err) => err === boom,
        );
        assert.equal(await store.projects.get(p.id), undefined);
        assert.equal(await store.instances.get(i.id), undefined);
        assert.equal((await store.tasks.get(t.id))?.state, 'pending');
        assert.equal(await store.conductorLastSeen.recordIfNewer(i.id, 'heartbeat', 1), true);
      });

      it('a failed statement inside fn rolls back the writes before it', async () => {
        const existing = project();
        await store.projects.create(existing);
        const fresh = project();
        await rejectsWithCode(
          store.transaction(async (tx) => {
            await tx.projects.create(fresh);
            await tx.projects.create(project({ name: existing.name }));
          }),
          'Conflict',
        );
        assert.equal(await store.projects.get(fresh.id), undefined);
      });

      it('idempotent writes inside a transaction do not break it', async () => {
        const name = `role-${uid()}`;
        const role = await store.roles.ensure(name, uid());
        const id = uid();
        await store.conductorLastSeen.recordIfNewer(id, 'heartbeat', 10);
        const inside = await store.transaction(async (tx) => {
          const again = await tx.roles.ensure(name, uid());
          const stale = await tx.conductorLastSeen.recordIfNewer(id, 'heartbeat', 5);
          const ds = await tx.datastores.ensureDatastore(`engine-${uid()}`, uid());
          return { again, stale, ds };
        });
        assert.deepEqual(inside.again, role);
        assert.equal(inside.stale, false);
        assert.ok(await store.datastores.getDatastore(inside.ds.id));
      });
    });
  });
}
