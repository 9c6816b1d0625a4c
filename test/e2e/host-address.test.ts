// test-lane: parallel (coffer serve on ports of its own from a random range of 127.0.0.1, a port and a data directory of its own)
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { request, trove, waitForInstance } from '../support/api-client.js';
import { appPassword, createInstance, deleteAndVerifyGone, waitActive } from './instance-lifecycle.js';
import { startServe, type ServeRun } from './serve-run.js';

// `coffer serve --host-address`: the instance listens on the host's address with a port from
// --instance-ports, the taskmanager records it, and Trove's view carries it in `addresses`
// (Coffer's extension) while `ip` stays the address alone; clients connect there.

const adminPassword = 'HostAddress-admin-pass-1234';
// a random block of 20 in 44000-49999, so parallel runs rarely meet
const first = 44_000 + Math.floor(Math.random() * 300) * 20;
let run: ServeRun;
let id: string | undefined;

before(async () => {
  run = await startServe('coffer-e2e-hostaddr', adminPassword, ['--host-address', '127.0.0.1', '--instance-ports', `${first}-${first + 19}`, '--warm-pool-size', '0']);
});

after(async () => {
  if (id !== undefined) {
    await request('DELETE', trove(run.session, `/instances/${id}`), { token: run.session.token }).catch(() => undefined);
    await waitForInstance(run.session, id, (_i, status) => status === 404, 60_000).catch(() => undefined);
  }
  await run?.stop();
});

test("an instance on the host's address shows its port and serves there", async () => {
  const created = await createInstance(run.session, 'on-host');
  id = created.id as string;
  const instance = await waitActive(run.session, id, 120_000);
  const [address] = instance.addresses as { address: string; type: string; port?: number }[];
  assert.equal(address?.address, '127.0.0.1');
  assert.equal(address?.type, 'private');
  assert.ok(address?.port !== undefined && address.port >= first && address.port <= first + 19, `port ${address?.port}`);
  assert.deepEqual(instance.ip, ['127.0.0.1']);
  // PostgreSQL serves TLS on its one port
  await waitForInstance(run.session, id, (i) => i?.tls?.port !== null && i?.tls?.port !== undefined, 30_000);
  const shown = (await request<any>('GET', trove(run.session, `/instances/${id}`), { token: run.session.token })).body.instance;
  assert.equal(shown.tls.port, address.port);
  const client = new pg.Client({ host: address.address, port: address.port, user: 'app', password: appPassword, database: 'app' });
  await client.connect();
  try {
    assert.deepEqual((await client.query("SELECT current_setting('port') AS port")).rows, [{ port: String(address.port) }]);
  } finally {
    await client.end();
  }
  await deleteAndVerifyGone(run.session, id, run.dataDir.path);
  id = undefined;
});
