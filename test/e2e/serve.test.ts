import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { makeDataDir } from '../support/temp-dir.js';
import { freePort, startRole, type RoleProcess } from '../support/coffer-process.js';
import type { Session } from '../support/api-client.js';
import { adminSession, connectAndWrite, createInstance, deleteAndVerifyGone, waitActive } from './instance-lifecycle.js';

// `coffer serve`: every role in one process, SQLite state, in-process bus, local compute.

const adminPassword = 'Serve-admin-pass-1234';
let dataDir: { path: string; remove: () => Promise<void> };
let serve: RoleProcess;
let baseUrl: string;
let session: Session;

before(async () => {
  dataDir = await makeDataDir('coffer-e2e-serve');
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  serve = startRole(['serve', '--port', String(port), '--data-dir', dataDir.path], { COFFER_ADMIN_PASSWORD: adminPassword });
  await serve.waitFor(/serving the Trove API/, 60_000);
  session = await adminSession(baseUrl, adminPassword);
});

after(async () => {
  await serve?.stop();
  await dataDir?.remove();
});

test('an instance created over HTTP becomes ACTIVE/HEALTHY, accepts its user, and is deleted without a trace', async () => {
  const created = await createInstance(session, 'e2e-serve');
  const instance = await waitActive(session, created.id);
  assert.equal(instance.datastore.type, 'postgresql');
  assert.equal(instance.volume.size, 1);
  await connectAndWrite(instance);
  await deleteAndVerifyGone(session, created.id, dataDir.path);
});
