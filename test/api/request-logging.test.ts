import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { adminPassword, passwordAuth, startHarness } from './api-harness.js';

/** A logger at `level` whose JSON lines are kept in `lines`. */
function memoryLogger(level: string) {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

async function logsOf(level: string) {
  const { logger, lines } = memoryLogger(level);
  const h = await startHarness({ logger });
  try {
    const login = await h.app.inject({ method: 'POST', url: '/identity/v3/auth/tokens', payload: passwordAuth('admin', adminPassword, 'admin') });
    assert.equal(login.statusCode, 201);
    const requestId = String(login.headers['x-openstack-request-id']);
    const token = String(login.headers['x-subject-token']);
    return { lines, requestId, token, text: () => lines.map((l) => JSON.stringify(l)).join('\n') };
  } finally {
    await h.close();
  }
}

test('at info, requests leave no line in the log (coffer serve logs to a file)', async () => {
  const { lines } = await logsOf('info');
  assert.deepEqual(lines.filter((l) => 'reqId' in l), []);
});

test('at debug, each request is logged with its id, and neither its password nor its token', async () => {
  const { lines, requestId, token, text } = await logsOf('debug');
  const own = lines.filter((l) => l.reqId === requestId);
  assert.deepEqual(own.map((l) => l.msg), ['incoming request', 'request completed']);
  assert.equal(own[0]?.method, 'POST');
  assert.equal(own[0]?.url, '/identity/v3/auth/tokens');
  assert.equal(own[1]?.statusCode, 201);
  assert.doesNotMatch(text(), new RegExp(adminPassword));
  assert.ok(!text().includes(token));
});
