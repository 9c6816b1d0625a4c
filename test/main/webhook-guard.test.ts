import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CofferError } from '../../src/common/errors.js';
import { apiConfigSchema, loadConfig, serveConfigSchema, workerConfigSchema } from '../../src/main/config.js';
import { webhookGuard } from '../../src/main/webhook-guard.js';
import { rejectsWithCode } from '../support/coffer-errors.js';

// --webhook-allowed-cidrs and what each role refuses of its own: a taskmanager knows the bus, the
// state database, its metrics listener and (by --public-url) the API; serve and api their own port.

const needs = { databaseUrl: 'mysql://root@127.0.0.1/coffer', busUrl: 'amqp://u:p@127.0.0.1/v', busKeyFile: '/k' };

test('--webhook-allowed-cidrs: unset by default; a comma-separated list from the flag or the environment; a malformed range refused', () => {
  assert.equal(loadConfig(serveConfigSchema, {}, {}).webhookAllowedCidrs, undefined);
  assert.deepEqual(loadConfig(apiConfigSchema, { ...needs, webhookAllowedCidrs: '10.0.0.0/8, 192.0.2.0/24' }, {}).webhookAllowedCidrs, ['10.0.0.0/8', '192.0.2.0/24']);
  assert.deepEqual(loadConfig(workerConfigSchema, needs, { COFFER_WEBHOOK_ALLOWED_CIDRS: 'fd00::/8' }).webhookAllowedCidrs, ['fd00::/8']);
  assert.throws(
    () => loadConfig(workerConfigSchema, { ...needs, webhookAllowedCidrs: '10.0.0.0' }, {}),
    (err: unknown) => err instanceof CofferError && /webhookAllowedCidrs: "10\.0\.0\.0" is not a CIDR range/.test(err.message),
  );
});

test("a taskmanager refuses the bus, the state database, its metrics listener and the API, on their ports", async () => {
  const config = loadConfig(workerConfigSchema, { ...needs, webhookAllowedCidrs: '127.0.0.0/8', publicUrl: 'http://127.0.0.1:8779', metricsAddress: '127.0.0.1:9180' }, {});
  const guard = webhookGuard(config);
  for (const port of [5672, 3306, 8779, 9180]) await rejectsWithCode(guard.resolve(`http://127.0.0.1:${port}/`), 'BadRequest');
  await rejectsWithCode(guard.resolve('http://127.77.0.5:5432/'), 'BadRequest');
  assert.equal((await guard.resolve('http://127.0.0.1:9000/')).port, 9000);
});

test('serve refuses its own API port and loopback by default', async () => {
  const guard = webhookGuard(loadConfig(serveConfigSchema, { port: '8780' }, {}));
  await rejectsWithCode(guard.resolve('http://127.0.0.1:9000/'), 'BadRequest');
  const allowing = webhookGuard(loadConfig(serveConfigSchema, { port: '8780', webhookAllowedCidrs: '127.0.0.0/8' }, {}));
  await rejectsWithCode(allowing.resolve('http://127.0.0.1:8780/'), 'BadRequest');
  assert.equal((await allowing.resolve('http://127.0.0.1:9000/')).port, 9000);
});
