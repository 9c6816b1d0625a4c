import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { LocalDirectoryStorage } from '../../src/backup/index.js';
import { guestContract, guestTopic, serveRpc, type GuestLogActionInput, type Subscription } from '../../src/bus/index.js';
import { CofferError, newUuid } from '../../src/common/index.js';
import { adminPassword, adminSession, seedDatastores, startHarness, type Harness, type Session } from '../api/api-harness.js';
import { fakeGuestHandlers } from '../support/fake-guest.js';
import { makeDataDir } from '../support/temp-dir.js';
import { runCli, tempConfigDir } from './run-cli.js';

// coffer logs against the real API over HTTP, with a fake guest that stores one object per
// publish as the real one stores what its log gained: what is printed is what was published, in
// order, each once; --follow goes on until the instance is gone.

let h: Harness;
let dir: string;
let cleanup: () => Promise<void>;
let admin: Session;
let storageDir: Awaited<ReturnType<typeof makeDataDir>>;
let storage: LocalDirectoryStorage;
const guests: Subscription[] = [];
let versionId: string;

before(async () => {
  ({ dir, cleanup } = await tempConfigDir());
  storageDir = await makeDataDir('coffer-cli-logs');
  storage = new LocalDirectoryStorage(storageDir.path);
  h = await startHarness({ rateLimitPerMinute: 100_000, backupStorage: storage });
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = h.app.server.address() as AddressInfo;
  admin = await adminSession(h.app);
  versionId = (await seedDatastores(h.store)).activeVersionId;
  const login = await runCli(dir, ['login', '--url', `http://127.0.0.1:${port}`], { env: { COFFER_PASSWORD: adminPassword } });
  assert.equal(login.code, 0, login.stderr);
});
after(async () => {
  for (const guest of guests) await guest.close();
  await h?.close();
  await storageDir?.remove();
  await cleanup?.();
});

/** An ACTIVE instance whose guest stores `lines[n]` as object n at its n-th publish; `onPublish` runs after each. */
async function loggingInstance(name: string, lines: string[], onPublish: (count: number, id: string) => Promise<void> = async () => undefined) {
  const id = newUuid();
  const now = new Date();
  await h.store.instances.create({
    id, name, tenantId: admin.projectId, flavorId: '2', volumeSizeGb: 1, datastoreVersionId: versionId,
    taskStatus: 'NONE', taskDescription: '', taskStartTime: null, access: null, createdAt: now, updatedAt: now,
  });
  await h.store.instances.update(id, { host: 'host-a', address: '127.96.1.1', port: 5432 });
  await h.store.serviceStatuses.set({ instanceId: id, status: 'HEALTHY', updatedAt: now });
  const actions: GuestLogActionInput[] = [];
  let published = 0;
  guests.push(
    await serveRpc(h.transport, guestContract, guestTopic(id), fakeGuestHandlers({
      guestLogAction: async (input) => {
        actions.push(input);
        if (input.name !== 'general') throw new CofferError('BadRequest', `No log ${input.name} on this instance; its logs are general.`);
        if (input.publish === true && published < lines.length) {
          await storage.ensureContainer(input.container);
          await storage.put(input.container, `${id}/postgresql-${input.name}/${String(published).padStart(8, '0')}`, Readable.from([Buffer.from(lines[published]!)]));
          published += 1;
        }
        await onPublish(actions.length, id);
        return { log: { name: input.name, type: 'USER', status: 'Published', published: 1, pending: 0, stored: true } };
      },
    })),
  );
  return { id, actions };
}

test('coffer logs publishes the general log, then prints everything published', async () => {
  const { actions } = await loggingInstance('logged', ['first line\nsecond line\n']);
  const res = await runCli(dir, ['logs', 'logged']);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout, 'first line\nsecond line\n');
  assert.deepEqual(actions.map((a) => [a.name, a.publish]), [['general', true]]);
});

test('coffer logs --follow prints what each later publish adds, once, until the instance is gone', async () => {
  const lines = ['one\n', 'two\n', 'three\n'];
  await loggingInstance('followed', lines, async (count, id) => {
    // after the fourth publish (nothing new in it) the instance is deleted
    if (count === 4) await h.store.instances.markDeleted(id, new Date());
  });
  const res = await runCli(dir, ['logs', 'followed', '--follow']);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout, 'one\ntwo\nthree\n');
  assert.match(res.stderr, /followed is gone/);
});

test('coffer logs names the log to publish with --log, and says why a log it cannot have is refused', async () => {
  const res = await runCli(dir, ['logs', 'logged', '--log', 'nope']);
  assert.notEqual(res.code, 0);
  assert.match(res.stderr, /No log nope/);
});
