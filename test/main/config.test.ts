import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CofferError } from '../../src/common/errors.js';
import { agentConfigSchema, apiConfigSchema, loadConfig, serveConfigSchema, workerConfigSchema } from '../../src/main/config.js';

test('serve needs no configuration at all', () => {
  const config = loadConfig(serveConfigSchema, {}, {});
  assert.equal(config.host, '127.0.0.1');
  assert.equal(config.port, 8779);
  assert.ok(config.dataDir.startsWith('/'), 'the data directory is made absolute');
  assert.ok(Object.isFrozen(config));
});

test('flags beat the environment, which beats the config file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-config-'));
  const file = join(dir, 'coffer.json');
  await writeFile(file, JSON.stringify({ port: 9000, host: '127.0.0.2', logLevel: 'debug' }));
  const config = loadConfig(serveConfigSchema, { config: file, port: '9100' }, { COFFER_HOST: '127.0.0.3' });
  assert.equal(config.port, 9100);
  assert.equal(config.host, '127.0.0.3');
  assert.equal(config.logLevel, 'debug');
});

test('a role that needs the database and the bus says which setting is missing', () => {
  assert.throws(
    () => loadConfig(workerConfigSchema, {}, {}),
    (err: unknown) => err instanceof CofferError && /--database-url or COFFER_DATABASE_URL/.test(err.message) && /--bus-url/.test(err.message),
  );
});

test('bad values are refused with the name of the setting', () => {
  assert.throws(
    () => loadConfig(apiConfigSchema, { port: '99999', databaseUrl: 'mysql://root@127.0.0.1/c', busUrl: 'amqp://x' }, {}),
    /port/,
  );
  assert.throws(() => loadConfig(workerConfigSchema, { databaseUrl: 'oracle://x', busUrl: 'amqp://x' }, {}), /state database URL/);
});

test('a secret can come from a file named by <NAME>_FILE', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-config-'));
  const secret = join(dir, 'password');
  await writeFile(secret, 'From-a-file-123\n');
  const config = loadConfig(serveConfigSchema, {}, { COFFER_ADMIN_PASSWORD_FILE: secret });
  assert.equal(config.adminPassword, 'From-a-file-123');
});

test("quota defaults and the rate limit: Trove's values, from flags, environment or file; -1 and 0 allowed, less refused", async () => {
  const api = { databaseUrl: 'mysql://root@127.0.0.1/c', busUrl: 'amqp://x' };
  const defaults = loadConfig(apiConfigSchema, api, {});
  assert.deepEqual(
    [defaults.maxInstancesPerTenant, defaults.maxRamPerTenant, defaults.maxVolumesPerTenant, defaults.maxBackupsPerTenant, defaults.rateLimit],
    [10, -1, 40, 50, 200],
  );
  const dir = await mkdtemp(join(tmpdir(), 'coffer-config-'));
  const file = join(dir, 'coffer.json');
  await writeFile(file, JSON.stringify({ maxBackupsPerTenant: 5, rateLimit: 1000 }));
  const set = loadConfig(
    serveConfigSchema,
    { config: file, maxInstancesPerTenant: '-1', rateLimit: '0' },
    { COFFER_MAX_VOLUMES_PER_TENANT: '100', COFFER_MAX_RAM_PER_TENANT: '8192', COFFER_RATE_LIMIT: '5000' },
  );
  assert.deepEqual(
    [set.maxInstancesPerTenant, set.maxRamPerTenant, set.maxVolumesPerTenant, set.maxBackupsPerTenant, set.rateLimit],
    [-1, 8192, 100, 5, 0],
  );
  assert.throws(() => loadConfig(serveConfigSchema, { maxInstancesPerTenant: '-2' }, {}), /maxInstancesPerTenant/);
  assert.throws(() => loadConfig(serveConfigSchema, {}, { COFFER_RATE_LIMIT: '-1' }), /rateLimit/);
});

test('engine binary directories come per engine from a repeated flag, the environment or the file', () => {
  const base = { busUrl: 'amqp://127.0.0.1' };
  assert.deepEqual(
    loadConfig(agentConfigSchema, { ...base, engineBinDir: ['mysql=/opt/mysql/bin', 'mysql=/opt/mysql8/bin'] }, {}).engineBinDir,
    { mysql: ['/opt/mysql/bin', '/opt/mysql8/bin'] },
  );
  assert.deepEqual(loadConfig(agentConfigSchema, base, { COFFER_ENGINE_BIN_DIRS: 'mysql=/a,postgresql=/p' }).engineBinDir, {
    mysql: ['/a'],
    postgresql: ['/p'],
  });
  assert.deepEqual(loadConfig(agentConfigSchema, base, {}).engineBinDir, {});
  assert.throws(() => loadConfig(agentConfigSchema, { ...base, engineBinDir: ['oracle=/x'] }, {}), /engineBinDir/);
  assert.throws(() => loadConfig(agentConfigSchema, { ...base, engineBinDir: ['mysql'] }, {}), /not <engine>=<directory>/);
});

test("the CA (serve, agent) and the API's HTTPS files (serve, api) come from flags, the environment or the file", () => {
  const agent = loadConfig(agentConfigSchema, { caCertFile: '/etc/coffer/ca.crt' }, { COFFER_BUS_URL: 'amqp://x', COFFER_CA_KEY_FILE: '/etc/coffer/ca.key' });
  assert.equal(agent.caCertFile, '/etc/coffer/ca.crt');
  assert.equal(agent.caKeyFile, '/etc/coffer/ca.key');
  const api = loadConfig(
    apiConfigSchema,
    {},
    { COFFER_DATABASE_URL: 'sqlite::memory:', COFFER_BUS_URL: 'amqp://x', COFFER_TLS_CERT_FILE: '/c.pem', COFFER_TLS_KEY_FILE: '/k.pem' },
  );
  assert.deepEqual([api.tlsCertFile, api.tlsKeyFile], ['/c.pem', '/k.pem']);
  const serve = loadConfig(serveConfigSchema, {}, {});
  assert.deepEqual([serve.caCertFile, serve.tlsCertFile], [undefined, undefined], 'none by default');
});
