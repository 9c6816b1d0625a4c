import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { Logger } from '../../src/common/logger.js';
import { openStateStore, type StateStore } from '../../src/db/index.js';
import { migrations } from '../../src/db/migrations/index.js';
import { project } from './state-store-fixtures.js';

// What openStateStore promises on every engine, each case on a database of its own: it
// migrates a fresh database once, a migrated one is left alone, and roles starting together
// (two opens racing on a fresh database) both come up on the same schema.

export interface FreshDatabase {
  url: string;
  drop: () => Promise<void>;
}

/** A logger that keeps the migrations each open reports as applied. */
function migrationLog(): { logger: Logger; applied: string[][] } {
  const applied: string[][] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const line = JSON.parse(chunk.toString()) as { applied?: string[] };
      if (line.applied !== undefined) applied.push(line.applied);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), applied };
}

/** every migration, in the order Kysely applies them */
const allMigrations = Object.keys(migrations).sort();

export function openStateStoreSuite(name: string, fresh: () => Promise<FreshDatabase>): void {
  describe(`openStateStore on ${name}`, () => {
    it('migrates a fresh database, and opening it again changes nothing', async () => {
      const db = await fresh();
      const stores: StateStore[] = [];
      try {
        const log = migrationLog();
        const first = await openStateStore(db.url, { logger: log.logger });
        stores.push(first);
        const p = project();
        await first.projects.create(p);
        await first.close();
        const second = await openStateStore(db.url, { logger: log.logger });
        stores.push(second);
        assert.deepEqual(log.applied, [allMigrations, []]);
        assert.deepEqual(await second.projects.get(p.id), p);
      } finally {
        for (const s of stores) await s.close();
        await db.drop();
      }
    });

    it('two opens racing on a fresh database both succeed, migrating it once', async () => {
      const db = await fresh();
      const stores: StateStore[] = [];
      try {
        const log = migrationLog();
        const results = await Promise.allSettled([
          openStateStore(db.url, { logger: log.logger }),
          openStateStore(db.url, { logger: log.logger }),
        ]);
        for (const r of results) if (r.status === 'fulfilled') stores.push(r.value);
        for (const r of results) if (r.status === 'rejected') throw r.reason;
        assert.deepEqual(log.applied.flat(), allMigrations);
        const [a, b] = stores as [StateStore, StateStore];
        const p = project();
        await a.projects.create(p);
        assert.deepEqual(await b.projects.get(p.id), p);
      } finally {
        for (const s of stores) await s.close();
        await db.drop();
      }
    });

    it('with migrate: false leaves a fresh database empty', async () => {
      const db = await fresh();
      const store = await openStateStore(db.url, { migrate: false });
      try {
        await assert.rejects(store.projects.get('x'));
      } finally {
        await store.close();
        await db.drop();
      }
    });
  });
}
