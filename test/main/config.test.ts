import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CofferError } from '../../src/common/errors.js';
import { agentConfigSchema, apiConfigSchema, keystoneOptionsOf, loadConfig, serveConfigSchema, workerConfigSchema } from '../../src/main/config.js';

test('serve needs no configuration at all', () => {
  const config = loadConfig(serveConfigSchema, {}, {});
  assert.equal(config.host, '127.0.0.1');
  assert.equal(config.port, 8779);
  assert.ok(config.dataDir.startsWith('/'), 'the data directory is made absolute');
  assert.ok(Object.isFrozen(config));
});

test('flags beat the environment, which beats the config file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
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
    (err: unknown) =>
      err instanceof CofferError &&
      /--database-url or COFFER_DATABASE_URL/.test(err.message) &&
      /--bus-url/.test(err.message) &&
      /--bus-key-file or COFFER_BUS_KEY_FILE; make one with: head -c 32 \/dev\/urandom \| base64/.test(err.message),
  );
});

test('bad values are refused with the name of the setting', () => {
  assert.throws(
    () => loadConfig(apiConfigSchema, { port: '99999', databaseUrl: 'mysql://root@127.0.0.1/c', busUrl: 'amqp://x', busKeyFile: '/k' }, {}),
    /port/,
  );
  assert.throws(() => loadConfig(workerConfigSchema, { databaseUrl: 'oracle://x', busUrl: 'amqp://x' }, {}), /state database URL/);
});

test('a secret can come from a file named by <NAME>_FILE', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const secret = join(dir, 'password');
  await writeFile(secret, 'From-a-file-123\n');
  const config = loadConfig(serveConfigSchema, {}, { COFFER_ADMIN_PASSWORD_FILE: secret });
  assert.equal(config.adminPassword, 'From-a-file-123');
});

test("quota defaults and the rate limit: Trove's values, from flags, environment or file; -1 and 0 allowed, less refused", async (t) => {
  const api = { databaseUrl: 'mysql://root@127.0.0.1/c', busUrl: 'amqp://x', busKeyFile: '/k' };
  const defaults = loadConfig(apiConfigSchema, api, {});
  assert.deepEqual(
    [defaults.maxInstancesPerTenant, defaults.maxRamPerTenant, defaults.maxVolumesPerTenant, defaults.maxBackupsPerTenant, defaults.rateLimit],
    [10, -1, 40, 50, 200],
  );
  const dir = await mkdtemp(join(tmpdir(), 'coffer-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
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
  const base = { busUrl: 'amqp://127.0.0.1', busKeyFile: '/k' };
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

test('the largest volume is 10 GB unless --max-volume-size, COFFER_MAX_VOLUME_SIZE or maxVolumeSize says otherwise', () => {
  assert.equal(loadConfig(serveConfigSchema, {}, {}).maxVolumeSize, 10);
  assert.equal(loadConfig(serveConfigSchema, { maxVolumeSize: '50' }, { COFFER_MAX_VOLUME_SIZE: '20' }).maxVolumeSize, 50);
  assert.equal(loadConfig(serveConfigSchema, {}, { COFFER_MAX_VOLUME_SIZE: '20' }).maxVolumeSize, 20);
  assert.throws(() => loadConfig(serveConfigSchema, { maxVolumeSize: '0' }, {}), /maxVolumeSize/);
});

test('without a Keystone URL the built-in identity serves, and no Keystone setting is needed', () => {
  assert.equal(keystoneOptionsOf(loadConfig(serveConfigSchema, {}, {})), undefined);
});

test('a Keystone URL needs the service user and its password, and says which is missing', () => {
  assert.throws(
    () => loadConfig(serveConfigSchema, { keystoneUrl: 'http://keystone:5000/v3' }, {}),
    (err: unknown) => err instanceof CofferError && /keystoneUser: .*--keystone-user/.test(err.message) && /COFFER_KEYSTONE_PASSWORD/.test(err.message),
  );
});

test('Keystone settings: defaults as keystonemiddleware\'s, the password from a file, yes/no from the environment', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const passwordFile = join(dir, 'keystone-password');
  await writeFile(passwordFile, 'from-the-file\n', { mode: 0o600 });
  const config = loadConfig(
    apiConfigSchema,
    { keystoneUrl: 'http://keystone:5000/v3', keystoneUser: 'coffer', keystonePasswordFile: passwordFile, databaseUrl: 'sqlite::memory:', busUrl: 'amqp://x', busKeyFile: '/etc/coffer/bus.key' },
    { COFFER_KEYSTONE_REGISTER_ENDPOINT: 'no', COFFER_KEYSTONE_TOKEN_CACHE_TIME: '0' },
  );
  assert.deepEqual(keystoneOptionsOf(config), {
    url: 'http://keystone:5000/v3',
    username: 'coffer',
    password: 'from-the-file',
    userDomainId: 'default',
    projectName: 'service',
    projectDomainId: 'default',
    region: 'RegionOne',
    interface: 'internal',
    cacheSeconds: 0,
    cacheSize: 10_000,
    registerEndpoint: false,
  });
  const fromEnv = loadConfig(serveConfigSchema, {}, {
    COFFER_KEYSTONE_URL: 'http://keystone:5000',
    COFFER_KEYSTONE_USER: 'coffer',
    COFFER_KEYSTONE_PASSWORD_FILE: passwordFile,
  });
  assert.equal(keystoneOptionsOf(fromEnv)?.password, 'from-the-file');
  assert.equal(keystoneOptionsOf(fromEnv)?.registerEndpoint, true);
  assert.throws(() => loadConfig(serveConfigSchema, { keystoneInterface: 'private' }, {}), /keystoneInterface/);
});

test("the CA (serve, agent) and the API's HTTPS files (serve, api) come from flags, the environment or the file", () => {
  const agent = loadConfig(agentConfigSchema, { caCertFile: '/etc/coffer/ca.crt' }, { COFFER_BUS_URL: 'amqp://x', COFFER_BUS_KEY_FILE: '/etc/coffer/bus.key', COFFER_CA_KEY_FILE: '/etc/coffer/ca.key' });
  assert.equal(agent.caCertFile, '/etc/coffer/ca.crt');
  assert.equal(agent.caKeyFile, '/etc/coffer/ca.key');
  const api = loadConfig(
    apiConfigSchema,
    {},
    { COFFER_DATABASE_URL: 'sqlite::memory:', COFFER_BUS_URL: 'amqp://x', COFFER_BUS_KEY_FILE: '/etc/coffer/bus.key', COFFER_TLS_CERT_FILE: '/c.pem', COFFER_TLS_KEY_FILE: '/k.pem' },
  );
  assert.deepEqual([api.tlsCertFile, api.tlsKeyFile], ['/c.pem', '/k.pem']);
  const serve = loadConfig(serveConfigSchema, {}, {});
  assert.deepEqual([serve.caCertFile, serve.tlsCertFile], [undefined, undefined], 'none by default');
});

test("Trove's usage notifications: off without a URL, the URL from a file, an amqp URL only, RegionOne unless given", async (t) => {
  const worker = { databaseUrl: 'sqlite::memory:', busUrl: 'amqp://x', busKeyFile: '/k' };
  const off = loadConfig(workerConfigSchema, worker, {});
  assert.equal(off.notificationUrl, undefined);
  assert.equal(off.notificationRegion, 'RegionOne');
  const dir = await mkdtemp(join(tmpdir(), 'coffer-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const urlFile = join(dir, 'notification-url');
  await writeFile(urlFile, 'amqp://billing:s3cret@broker.example/billing\n');
  const fromFile = loadConfig(serveConfigSchema, {}, { COFFER_NOTIFICATION_URL_FILE: urlFile, COFFER_NOTIFICATION_REGION: 'north' });
  assert.equal(fromFile.notificationUrl, 'amqp://billing:s3cret@broker.example/billing');
  assert.equal(fromFile.notificationRegion, 'north');
  assert.throws(() => loadConfig(workerConfigSchema, { ...worker, notificationUrl: 'http://broker.example' }, {}), /notificationUrl: the notification URL must be an amqp/);
});

test('--metrics-address: none by default on every role; host:port from the flag, the environment or the file; anything else refused', async (t) => {
  const needs = { databaseUrl: 'sqlite::memory:', busUrl: 'amqp://u:p@127.0.0.1/v', busKeyFile: '/k' };
  assert.equal(loadConfig(serveConfigSchema, {}, {}).metricsAddress, undefined);
  assert.equal(loadConfig(apiConfigSchema, needs, {}).metricsAddress, undefined);
  assert.equal(loadConfig(workerConfigSchema, needs, {}).metricsAddress, undefined);
  assert.equal(loadConfig(agentConfigSchema, needs, {}).metricsAddress, undefined);
  assert.equal(loadConfig(workerConfigSchema, { ...needs, metricsAddress: '127.0.0.1:9180' }, {}).metricsAddress, '127.0.0.1:9180');
  assert.equal(loadConfig(agentConfigSchema, needs, { COFFER_METRICS_ADDRESS: '[::1]:9181' }).metricsAddress, '[::1]:9181');
  const dir = await mkdtemp(join(tmpdir(), 'coffer-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'coffer.json');
  await writeFile(file, JSON.stringify({ metricsAddress: '0.0.0.0:9182' }));
  assert.equal(loadConfig(serveConfigSchema, { config: file }, {}).metricsAddress, '0.0.0.0:9182');
  assert.throws(
    () => loadConfig(apiConfigSchema, { ...needs, metricsAddress: '9180' }, {}),
    (err: unknown) => err instanceof CofferError && /metricsAddress: not host:port, e\.g\. 127\.0\.0\.1:9180/.test(err.message),
  );
});

test('instances get loopback addresses unless --host-address names this host\'s, with ports from --instance-ports', () => {
  const base = { busUrl: 'amqp://127.0.0.1', busKeyFile: '/k' };
  const loopback = loadConfig(agentConfigSchema, base, {});
  assert.equal(loopback.hostAddress, undefined);
  assert.equal(loopback.instancePorts, '30000-32767');
  const host = loadConfig(agentConfigSchema, { ...base, hostAddress: '192.0.2.10' }, { COFFER_INSTANCE_PORTS: '40000-40099' });
  assert.deepEqual([host.hostAddress, host.instancePorts], ['192.0.2.10', '40000-40099']);
  assert.equal(loadConfig(serveConfigSchema, {}, { COFFER_HOST_ADDRESS: '127.0.0.1' }).hostAddress, '127.0.0.1');
  assert.throws(() => loadConfig(serveConfigSchema, { hostAddress: 'db.example' }, {}), /hostAddress/);
  assert.throws(() => loadConfig(agentConfigSchema, { ...base, hostAddress: '0.0.0.0' }, {}), /hostAddress/);
  assert.throws(() => loadConfig(agentConfigSchema, { ...base, instancePorts: '40000' }, {}), /instancePorts/);
});
