// test-lane: parallel (scratch databases of its own on the shared servers)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { hostileNames, longStrings } from '../support/hostile-corpus.js';
import { serverDatabases, type ScratchDatabase } from '../support/server-databases.js';
import { adminSession, json, memberSession, seedDatastores, startHarness, type Harness, type Session } from './api-harness.js';

// Hostile strings through the API into a real PostgreSQL and MariaDB state store, where SQLite
// forgives what they refuse: a NUL in a PostgreSQL text value, a string it cannot encode. Every
// string is stored and read back exactly, or refused with a 4xx; none is a 500.

const strings = [...hostileNames, longStrings[0]!];

for (const [engine, scratch] of Object.entries(serverDatabases)) {
  describe(`hostile strings in a ${engine} state store`, () => {
    let db: ScratchDatabase | undefined;
    let h: Harness;
    let admin: Session;
    let alice: Session;
    before(async () => {
      h = await startHarness({}, (db = await scratch()).url);
      admin = await adminSession(h.app);
      alice = await memberSession(h, 'alice');
      const seeded = await seedDatastores(h.store);
      // the default PostgreSQL takes configuration groups with one string setting
      const version = (await h.store.datastores.getVersion(seeded.activeVersionId))!;
      await h.store.datastores.upsertVersion({
        ...version,
        capabilities: { ...version.capabilities, configurationGroups: true },
        parameters: [{ name: 'log_statement', type: 'string', restartRequired: false }],
      });
    });
    after(async () => {
      await h?.close();
      await db?.drop();
    });

    const send = (method: 'GET' | 'POST' | 'PATCH', path: string, s: Session, body?: unknown) =>
      h.app.inject({
        method,
        url: path,
        headers: { 'x-auth-token': s.token, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
      });

    /** 4xx in the right shape, or the value read back exactly. */
    function refusedOrKept(res: LightMyRequestResponse, value: string, read: (body: any) => unknown, keystone: boolean): void {
      assert.ok(res.statusCode < 500, `${JSON.stringify(value)}: ${res.statusCode} ${res.body.slice(0, 300)}`);
      if (res.statusCode >= 400) {
        const body = json(res);
        if (keystone) assert.equal(body.error.code, res.statusCode);
        else assert.equal(Object.values<any>(body)[0].code, res.statusCode);
        return;
      }
      assert.equal(read(json(res)), value, `${JSON.stringify(value)} came back changed`);
    }

    test('instance names: created, renamed and looked up', async () => {
      let kept = 0;
      for (const value of strings) {
        const created = await send('POST', `/v1.0/${alice.projectId}/instances`, alice, {
          instance: { name: value, flavorRef: '1', volume: { size: 1 }, datastore: { type: 'postgresql' } },
        });
        refusedOrKept(created, value, (b) => b.instance.name, false);
        if (created.statusCode === 200) {
          kept++;
          const id = json(created).instance.id;
          const shown = await send('GET', `/v1.0/${alice.projectId}/instances/${id}`, alice);
          refusedOrKept(shown, value, (b) => b.instance.name, false);
          assert.equal(shown.statusCode, 200);
          const renamed = await send('PATCH', `/v1.0/${alice.projectId}/instances/${id}`, alice, { instance: { name: `${value}2` } });
          assert.ok(renamed.statusCode < 500, `${JSON.stringify(value)}: ${renamed.statusCode} ${renamed.body.slice(0, 300)}`);
        }
        // "." and ".." are path steps, not ids
        if (value === '.' || value === '..') continue;
        const lookup = await send('GET', `/v1.0/${alice.projectId}/instances/${encodeURIComponent(value.replace(/[\ud800-\udfff]/g, '?'))}`, alice);
        assert.ok(lookup.statusCode >= 400 && lookup.statusCode < 500, `${JSON.stringify(value)}: ${lookup.statusCode} ${lookup.body.slice(0, 300)}`);
      }
      assert.ok(kept > strings.length / 2, `${kept} names kept`);
    });

    test('configuration groups: names, descriptions and string values, stored and shown back exactly', async () => {
      let kept = 0;
      for (const value of strings) {
        const created = await send('POST', `/v1.0/${alice.projectId}/configurations`, alice, {
          configuration: { name: value, description: value.slice(0, 255), values: { log_statement: value }, datastore: { type: 'postgresql' } },
        });
        refusedOrKept(created, value, (b) => b.configuration.name, false);
        if (created.statusCode !== 200) continue;
        kept++;
        const shown = json(await send('GET', `/v1.0/${alice.projectId}/configurations/${json(created).configuration.id}`, alice)).configuration;
        assert.equal(shown.values.log_statement, value, `${JSON.stringify(value)} came back changed`);
        assert.equal(shown.description, value.slice(0, 255));
      }
      assert.ok(kept > strings.length / 2, `${kept} groups kept`);
    });

    test('Keystone users and projects: names, descriptions and e-mails, and lookups by name', async () => {
      for (const value of strings) {
        const user = await send('POST', '/identity/v3/users', admin, { user: { name: `u${value}`, description: value, email: value.slice(0, 255) } });
        refusedOrKept(user, `u${value}`, (b) => b.user.name, true);
        if (user.statusCode === 201) {
          const shown = await send('GET', `/identity/v3/users/${json(user).user.id}`, admin);
          assert.equal(json(shown).user.description, value);
        }
        const project = await send('POST', '/identity/v3/projects', admin, { project: { name: `p${value}`.slice(0, 64), description: value } });
        refusedOrKept(project, `p${value}`.slice(0, 64), (b) => b.project.name, true);
        const query = await send('GET', `/identity/v3/users?name=${encodeURIComponent(`u${value}`.replace(/[\ud800-\udfff]/g, '?'))}`, admin);
        assert.ok(query.statusCode < 500, `${JSON.stringify(value)}: ${query.statusCode} ${query.body.slice(0, 300)}`);
      }
    });
  });
}
