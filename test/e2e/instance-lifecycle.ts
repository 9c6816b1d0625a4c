import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { processesMentioning } from '../support/processes.js';
import { login, request, trove, waitForInstance, type Session } from '../support/api-client.js';

// The end-to-end journey shared by the embedded and the distributed deployment: create a
// PostgreSQL instance with a database and a user, connect to it as that user with a real
// driver, delete it, and check nothing of it is left behind.

export const appPassword = 'App-user-pass-1234';

export async function adminSession(baseUrl: string, password: string): Promise<Session> {
  return login(baseUrl, 'admin', password, 'admin');
}

export async function createInstance(session: Session, name: string): Promise<any> {
  const res = await request<any>('POST', trove(session, '/instances'), {
    token: session.token,
    body: {
      instance: {
        name,
        flavorRef: '1',
        volume: { size: 1 },
        datastore: { type: 'postgresql' },
        databases: [{ name: 'app' }],
        users: [{ name: 'app', password: appPassword, databases: [{ name: 'app' }] }],
      },
    },
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.instance.status, 'BUILD');
  assert.equal(res.body.instance.name, name);
  return res.body.instance;
}

export async function waitActive(session: Session, id: string, timeoutMs = 60_000): Promise<any> {
  const { instance } = await waitForInstance(
    session,
    id,
    (i) => i?.status === 'ERROR' || (i?.status === 'ACTIVE' && i?.operating_status === 'HEALTHY'),
    timeoutMs,
  );
  assert.equal(instance.status, 'ACTIVE', `instance failed: ${JSON.stringify(instance.fault)}`);
  return instance;
}

export async function connectAndWrite(instance: any): Promise<void> {
  const address = instance.addresses?.[0]?.address ?? instance.ip?.[0];
  assert.ok(address, 'instance has an address');
  const client = new pg.Client({ host: address, port: 5432, user: 'app', password: appPassword, database: 'app' });
  await client.connect();
  try {
    await client.query('CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)');
    await client.query('INSERT INTO notes (body) VALUES ($1)', ['hello from coffer']);
    const { rows } = await client.query('SELECT body FROM notes');
    assert.deepEqual(rows, [{ body: 'hello from coffer' }]);
  } finally {
    await client.end();
  }
  const wrong = new pg.Client({ host: address, port: 5432, user: 'app', password: 'wrong-password', database: 'app' });
  await assert.rejects(wrong.connect(), /password authentication failed/);
  await wrong.end().catch(() => undefined);
}

export async function deleteAndVerifyGone(session: Session, id: string, dataDir: string): Promise<void> {
  const res = await request('DELETE', trove(session, `/instances/${id}`), { token: session.token });
  assert.equal(res.status, 202);
  await waitForInstance(session, id, (_i, status) => status === 404, 60_000);
  assert.equal(existsSync(join(dataDir, 'instances', id)), false, 'instance directory removed');
  assert.deepEqual(processesMentioning(id), [], 'no engine process of the instance is left');
}
