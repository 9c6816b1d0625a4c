import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { noEngineCapabilities } from '../../src/common/index.js';
import { openStateStore } from '../../src/db/index.js';
import { migrations } from '../../src/db/migrations/index.js';
import { openStateStoreSuite } from './open-state-store.suite.js';
import { task, uid } from './state-store-fixtures.js';
import { stateStoreSuite } from './state-store.suite.js';

// SQLite, the embedded default: a file in a temporary directory per database.

async function freshFile(): Promise<{ dir: string; path: string; url: string; drop: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-state-'));
  // A missing parent directory is part of the contract: openStateStore creates it.
  const path = join(dir, 'nested', 'state.db');
  return { dir, path, url: `sqlite:${path}`, drop: () => rm(dir, { recursive: true, force: true }) };
}

stateStoreSuite('SQLite', async () => {
  const db = await freshFile();
  const store = await openStateStore(db.url);
  return {
    store,
    drop: async () => {
      await store.close();
      await db.drop();
    },
  };
});

openStateStoreSuite('SQLite', freshFile);

describe('openStateStore on SQLite specifics', () => {
  let db: Awaited<ReturnType<typeof freshFile>>;
  before(async () => {
    db = await freshFile();
  });
  after(() => db.drop());

  it('creates the parent directory and leaves the file in WAL mode', async () => {
    const store = await openStateStore(`sqlite://${db.path}`);
    await store.close();
    assert.ok(existsSync(db.path));
    const raw = new BetterSqlite3(db.path, { readonly: true });
    try {
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      raw.close();
    }
  });

  it('enforces foreign keys', async () => {
    const store = await openStateStore(db.url);
    try {
      await assert.rejects(store.tokens.create({
        tokenHash: uid(),
        userId: uid(),
        projectId: uid(),
        methods: [],
        auditId: uid(),
        issuedAt: new Date(),
        expiresAt: new Date(),
      }), { code: 'NotFound' });
    } finally {
      await store.close();
    }
  });

  it("a finished task's payload (user passwords) is gone from the file, not left in a free page", async () => {
    const fresh = await freshFile();
    try {
      const store = await openStateStore(fresh.url);
      const secret = `Pw-${uid()}-not-in-the-file`;
      const t = task(uid(), { payload: { users: [{ name: 'app', password: secret }] } });
      await store.tasks.create(t);
      // the payload reaches the file itself, as it does when a create outlives a checkpoint
      const raw = new BetterSqlite3(fresh.path);
      raw.pragma('wal_checkpoint(TRUNCATE)');
      raw.close();
      assert.equal((await readFile(fresh.path)).includes(secret), true);
      assert.ok(await store.tasks.claim(t.id, 'w', 60_000, new Date()));
      assert.ok(await store.tasks.finish(t.id, 'w', 'done'));
      await store.close();
      // closing checkpoints the WAL into the file and removes it: the file is all there is
      assert.equal(existsSync(`${fresh.path}-wal`), false);
      assert.equal((await readFile(fresh.path)).includes(secret), false);
    } finally {
      await fresh.drop();
    }
  });

  it('two stores on one file race for a task and exactly one gets it', async () => {
    const [a, b] = await Promise.all([openStateStore(db.url), openStateStore(db.url)]);
    try {
      const t = task(uid());
      await a.tasks.create(t);
      const now = new Date();
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, n) => (n % 2 === 0 ? a : b).tasks.claim(t.id, `w${n}`, 60_000, now)),
      );
      assert.equal(results.filter((r) => r !== undefined).length, 1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('upgrading a 0001 database keeps its versions, which then can do nothing optional', async () => {
    const upgraded = await freshFile();
    try {
      const path = join(upgraded.dir, 'state.db');
      const raw = new BetterSqlite3(path);
      const old = new Kysely<any>({ dialect: new SqliteDialect({ database: raw }) });
      const migrated = await new Migrator({ db: old, provider: { getMigrations: async () => migrations } }).migrateTo('0001-initial');
      assert.equal(migrated.error, undefined);
      await old.insertInto('datastores').values({ id: 'ds', name: 'postgresql', default_version_id: null }).execute();
      await old
        .insertInto('datastore_versions')
        .values({ id: 'v15', datastore_id: 'ds', name: '15', version: '15.19', manager: 'postgresql', active: 1, inactive_reason: null, updated_at: '2026-01-01T00:00:00.000Z' })
        .execute();
      await old.destroy();
      const store = await openStateStore(`sqlite:${path}`);
      try {
        const version = await store.datastores.getVersion('v15');
        assert.equal(version?.version, '15.19');
        assert.deepEqual(version?.capabilities, noEngineCapabilities);
        assert.deepEqual(version?.parameters, []);
        assert.equal(await store.rootHistory.get('any-instance'), undefined);
      } finally {
        await store.close();
      }
    } finally {
      await upgraded.drop();
    }
  });

  it('upgrading a 0007 database keeps its service statuses, with nothing reported until the next heartbeat', async () => {
    const upgraded = await freshFile();
    try {
      const path = join(upgraded.dir, 'state.db');
      const raw = new BetterSqlite3(path);
      const old = new Kysely<any>({ dialect: new SqliteDialect({ database: raw }) });
      const migrated = await new Migrator({ db: old, provider: { getMigrations: async () => migrations } }).migrateTo('0007-configuration-groups');
      assert.equal(migrated.error, undefined);
      await old.insertInto('service_statuses').values({ instance_id: 'i-old', status: 'HEALTHY', updated_at: '2026-01-01T00:00:00.000Z' }).execute();
      await old.destroy();
      const store = await openStateStore(`sqlite:${path}`);
      try {
        assert.deepEqual(await store.serviceStatuses.get('i-old'), { instanceId: 'i-old', status: 'HEALTHY', updatedAt: new Date('2026-01-01T00:00:00.000Z') });
      } finally {
        await store.close();
      }
    } finally {
      await upgraded.drop();
    }
  });

  it('opens an in-memory database', async () => {
    const store = await openStateStore('sqlite::memory:');
    try {
      assert.equal(store.dialect, 'sqlite');
      assert.equal(await store.instances.countActive('anyone'), 0);
    } finally {
      await store.close();
      await store.close();
    }
  });
});
