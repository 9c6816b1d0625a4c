// test-lane: parallel (coffer serve as nobody on a loopback range, a port and a data directory of its own)
import assert from 'node:assert/strict';
import { chown } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { makeDataDir } from '../support/temp-dir.js';
import { freePort, startRole, type RoleProcess } from '../support/coffer-process.js';
import { processesMentioning } from '../support/processes.js';
import type { Session } from '../support/api-client.js';
import { adminSession, connectAndWrite, createInstance, deleteAndVerifyGone, waitActive } from './instance-lifecycle.js';

// The quick start promises that no root is needed: `coffer serve` started by an ordinary user
// runs its engines as that user. CI runs as root, so the test drops to `nobody` to prove it.

const ordinary = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
const adminPassword = 'Plain-admin-pass-1234';
let dataDir: { path: string; remove: () => Promise<void> };
let serve: RoleProcess;
let session: Session;

before(async () => {
  dataDir = await makeDataDir('coffer-e2e-plain');
  if (ordinary.uid !== undefined) await chown(dataDir.path, ordinary.uid, ordinary.gid!);
  const port = await freePort();
  serve = startRole(
    ['serve', '--port', String(port), '--data-dir', dataDir.path, '--address-pool', '127.80.0.0/24'],
    { COFFER_ADMIN_PASSWORD: adminPassword },
    ordinary,
  );
  await serve.waitFor(/serving the Trove API/, 60_000);
  session = await adminSession(`http://127.0.0.1:${port}`, adminPassword);
});

after(async () => {
  await serve?.stop();
  await dataDir?.remove();
});

test('coffer serve run by an ordinary user runs its engines as that user', async () => {
  const created = await createInstance(session, 'e2e-plain');
  const instance = await waitActive(session, created.id);
  const [pid] = processesMentioning(created.id);
  assert.ok(pid, 'the engine process runs');
  const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  assert.equal(Number(uid), ordinary.uid ?? process.getuid?.());
  await connectAndWrite(instance);
  await deleteAndVerifyGone(session, created.id, dataDir.path);
});
