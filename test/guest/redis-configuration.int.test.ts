// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { chmod, mkdir, readFile, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import type { PrepareInput } from '../../src/bus/index.js';
import { silentLogger } from '../../src/common/index.js';
import { engineRegistry, type EngineDriver } from '../../src/guest/index.js';
import type { EngineContext } from '../../src/guest/engines/engine.js';
import { withAdminClient, type AdminEndpoint } from '../../src/guest/engines/redis/admin.js';
import { liveValue } from '../../src/guest/engines/redis/config.js';
import { redisParameterTable } from '../../src/guest/engines/redis/parameters.js';
import { killServerProcesses } from '../../src/guest/engines/redis/server-process.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { connectRedis } from '../support/redis-client.js';
import { tempDataDir } from '../support/temp-dir.js';
import { localRunner } from './engine-fixture.js';

// Configuration groups on a real redis-server, beyond the conformance suite's checks: the
// published parameters against what Redis 7 itself accepts, a prepare that starts with
// overrides, all-or-nothing applies, what is pending until a restart, and who may reconfigure.

const tenant = { name: 'app', password: 'App-pass-1' };

describe('redis configuration groups', () => {
  let root: string;
  let dir: string;
  let context: EngineContext;
  let driver: EngineDriver;
  const host = `127.93.${randomInt(0, 256)}.${randomInt(2, 254)}`;
  const admin = async (): Promise<AdminEndpoint> => ({
    socketPath: join(dir, 'data', 'redis.sock'),
    password: await readFile(join(dir, 'os_admin.password'), 'utf8'),
  });
  const asAdmin = async <T>(work: (client: Redis) => Promise<T>): Promise<T> => withAdminClient(await admin(), work);
  const configGet = (name: string) => asAdmin(async (client) => ((await client.call('CONFIG', ['GET', name])) as string[])[1]);
  const asTenant = async <T>(work: (client: Redis) => Promise<T>): Promise<T> => {
    const client = await connectRedis(host, 6379, [tenant.name, tenant.password]);
    try {
      return await work(client);
    } finally {
      client.disconnect();
    }
  };
  const files = async () => ({
    conf: await readFile(join(dir, 'redis.conf'), 'utf8'),
    spec: await readFile(join(dir, 'engine-spec.json'), 'utf8'),
  });

  const overrides = {
    'maxmemory-policy': 'allkeys-lfu',
    databases: 4,
    appendonly: false,
    save: '',
    'notify-keyspace-events': 'Ex',
    timeout: 120,
    // one class only: the others keep Redis's limits
    'client-output-buffer-limit': 'pubsub 1048576 0 0',
  };
  const input: PrepareInput = {
    memoryMb: 256,
    databases: [],
    users: [{ name: tenant.name, password: tenant.password, databases: [] }],
    adminPassword: 'Adm1n-pass',
    access: null,
    overrides,
  };

  before(async () => {
    root = await tempDataDir('coffer-rcg-');
    dir = join(root, 'i');
    await mkdir(dir);
    await chmod(dir, 0o711);
    const runner = await localRunner();
    const discovery = await engineRegistry.redis.discover([], runner);
    assert.ok(discovery.binaries.length > 0, `no redis-server: ${JSON.stringify(discovery.reports)}`);
    context = {
      placement: { instanceId: 'rcg', dir, address: host, port: 6379 },
      binary: discovery.binaries[0],
      runner,
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
    };
    driver = engineRegistry.redis.create(context);
  });

  after(async () => {
    await driver?.stop().catch(() => undefined);
    if (root !== undefined) {
      await killServerProcesses(join(dir, 'data')).catch(() => undefined);
      await rm(root, { recursive: true, force: true });
    }
  });

  it('refuses a prepare with an unpublished parameter before anything starts', async () => {
    await rejectsWithCode(driver.prepare({ ...input, overrides: { dir: '/tmp' } }), 'UnprocessableEntity');
    await rejectsWithCode(driver.prepare({ ...input, overrides: { databases: 0 } }), 'UnprocessableEntity');
    assert.equal(await driver.health(), 'stopped');
  });

  it('fails a prepare whose value Redis refuses at its start, naming the parameter', async () => {
    await assert.rejects(driver.prepare({ ...input, overrides: { 'maxmemory-policy': 'bogus-policy' } }), (err: Error) => {
      assert.equal((err as Error & { code?: string }).code, 'EngineError');
      assert.match(err.message, /^Redis refused the value of maxmemory-policy in its configuration: argument\(s\) must be one of the following: volatile-lru/);
      return true;
    });
    assert.equal(await driver.health(), 'stopped');
  });

  it('starts a prepared instance with its overrides live from the first start', async () => {
    await driver.prepare(input);
    assert.equal(await driver.health(), 'healthy');
    assert.equal(await configGet('maxmemory-policy'), 'allkeys-lfu');
    assert.equal(await configGet('databases'), '4');
    assert.equal(await configGet('appendonly'), 'no');
    assert.equal(await configGet('save'), '');
    // Redis keeps event letters in its own order
    assert.equal(await configGet('notify-keyspace-events'), 'xE');
    assert.equal(await configGet('timeout'), '120');
    assert.equal(await configGet('client-output-buffer-limit'), 'normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 0 0');
    // Coffer's own settings stay
    assert.equal(await configGet('maxmemory'), String(192 * 1024 * 1024));
    assert.equal(await configGet('bind'), host);
    // as the tenant sees it: four databases
    await asTenant(async (client) => {
      assert.equal(await client.call('SELECT', ['3']), 'OK');
      await assert.rejects(client.call('SELECT', ['4']), /out of range/);
    });
    assert.deepEqual(JSON.parse((await files()).spec), { memoryMb: 256, access: null, overrides });
  });

  it('publishes only what Redis 7 has, restartRequired exactly where CONFIG SET refuses, rendered as Redis reads it', async () => {
    const effective = await driver.configuration!.effective();
    await asAdmin(async (client) => {
      for (const { name, restartRequired } of redisParameterTable) {
        const reply = (await client.call('CONFIG', ['GET', name])) as string[];
        assert.equal(reply[0], name, `${name} exists in Redis`);
        const running = reply[1]!;
        // Coffer's own values run as rendered (a rendering Redis read otherwise would differ
        // here); the overrides, some in forms Redis normalises, were checked above
        if (!(name in overrides)) assert.equal(running, liveValue(effective[name]!), `${name} runs as rendered`);
        const set = client.call('CONFIG', ['SET', name, running]);
        if (restartRequired) await assert.rejects(set, /immutable config/, `${name} is restart-only`);
        else assert.equal(await set, 'OK', `${name} is dynamic`);
      }
    });
  });

  it('publishes integer bounds Redis accepts', async () => {
    await asAdmin(async (client) => {
      for (const { name, type, restartRequired, min, max } of redisParameterTable) {
        if (type !== 'integer' || restartRequired) continue;
        const running = ((await client.call('CONFIG', ['GET', name])) as string[])[1]!;
        // maxclients above the open-file limit is refused by the host's limit, not by a rule
        const bounds = name === 'maxclients' ? [min!] : [min!, max!];
        for (const bound of bounds) assert.equal(await client.call('CONFIG', ['SET', name, String(bound)]), 'OK', `${name} ${bound}`);
        await client.call('CONFIG', ['SET', name, running]);
      }
    });
  });

  it('applies all or nothing: a value Redis refuses changes neither the running server nor the files', async () => {
    const before = await files();
    const slowlog = await configGet('slowlog-max-len');
    await assert.rejects(
      driver.configuration!.apply({ ...overrides, 'slowlog-max-len': 999, 'notify-keyspace-events': 'Kx!' }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'EngineError');
        assert.match(err.message, /^Redis refused the value of notify-keyspace-events: .*Invalid event class character/);
        return true;
      },
    );
    assert.equal(await configGet('slowlog-max-len'), slowlog, 'the other value of the same CONFIG SET is not applied');
    assert.equal(await configGet('notify-keyspace-events'), 'xE');
    assert.deepEqual(await files(), before);
    await rejectsWithCode(driver.configuration!.apply({ nosuch: 1 }), 'UnprocessableEntity');
    await rejectsWithCode(driver.configuration!.apply({ timeout: -1 }), 'UnprocessableEntity');
    assert.deepEqual(await files(), before);
  });

  it('names a restart-only parameter while the server runs another value, and only then', async () => {
    assert.deepEqual(await driver.configuration!.apply(overrides), { pendingRestart: [] }, 'unchanged: nothing pending');
    assert.deepEqual(await driver.configuration!.apply({ ...overrides, databases: 8 }), { pendingRestart: ['databases'] });
    // applied again, or beside a dynamic change: still pending, as the server still runs 4
    assert.deepEqual(await driver.configuration!.apply({ ...overrides, databases: 8, timeout: 5 }), { pendingRestart: ['databases'] });
    assert.equal(await configGet('timeout'), '5');
    assert.equal(await configGet('databases'), '4');
    await driver.stop();
    await driver.start();
    assert.equal(await configGet('databases'), '8');
    assert.deepEqual(await driver.configuration!.apply({ ...overrides, databases: 8, timeout: 5 }), { pendingRestart: [] });
  });

  it('keeps the overrides through a resize and an access update, which change only their own part', async () => {
    await driver.resize(512);
    await driver.updateAccess({ isPublic: true });
    assert.equal(await configGet('maxmemory'), String(384 * 1024 * 1024));
    assert.equal(await configGet('timeout'), '5');
    const spec = JSON.parse((await files()).spec);
    assert.deepEqual(spec, { memoryMb: 512, access: { isPublic: true }, overrides: { ...overrides, databases: 8, timeout: 5 } });
    const effective = await driver.configuration!.effective();
    assert.equal(effective.maxmemory, 384 * 1024 * 1024);
    assert.equal(effective.timeout, 5);
    assert.equal(effective['maxmemory-policy'], 'allkeys-lfu');
    // and a restart runs from the same file
    await driver.stop();
    await driver.start();
    assert.equal(await configGet('timeout'), '5');
    assert.equal(await configGet('maxmemory'), String(384 * 1024 * 1024));
  });

  it('leaves reconfiguring to the guest: neither tenants nor root may CONFIG SET', async () => {
    await asTenant(async (client) => {
      await assert.rejects(client.call('CONFIG', ['SET', 'maxmemory-policy', 'noeviction']), /NOPERM/);
      await assert.rejects(client.call('CONFIG', ['GET', 'maxmemory-policy']), /NOPERM/);
    });
    await driver.root!.enable('R00t-pass');
    const rootClient = await connectRedis(host, 6379, ['R00t-pass']);
    try {
      await assert.rejects(rootClient.call('CONFIG', ['SET', 'maxmemory-policy', 'noeviction']), /NOPERM/);
    } finally {
      rootClient.disconnect();
      await driver.root!.disable();
    }
    assert.equal(await configGet('maxmemory-policy'), 'allkeys-lfu');
  });

  it('detaches back to Coffer’s values, live, with the restart-only one pending', async () => {
    assert.deepEqual(await driver.configuration!.apply({}), { pendingRestart: ['databases'] });
    assert.equal(await configGet('maxmemory-policy'), 'noeviction');
    assert.equal(await configGet('appendonly'), 'yes');
    assert.equal(await configGet('save'), '3600 1 300 100 60 10000');
    assert.equal(await configGet('notify-keyspace-events'), '');
    assert.equal(await configGet('timeout'), '0');
    assert.equal(await configGet('client-output-buffer-limit'), 'normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60');
    assert.deepEqual(JSON.parse((await files()).spec).overrides, {});
  });

  it('refuses to configure a stopped server, which could not check the values, changing nothing', async () => {
    await driver.stop();
    const before = await files();
    await rejectsWithCode(driver.configuration!.apply({ timeout: 7 }), 'UnprocessableEntity');
    assert.deepEqual(await files(), before);
    await driver.start();
    assert.equal(await configGet('databases'), '16');
  });

  it('renders an instance from before saved specs from the host’s record of its flavor', async () => {
    await unlink(join(dir, 'engine-spec.json'));
    const legacy = engineRegistry.redis.create({ ...context, memoryMb: 1024 });
    const effective = await legacy.configuration!.effective();
    assert.equal(effective.maxmemory, 768 * 1024 * 1024);
    assert.equal(effective['maxmemory-policy'], 'noeviction');
    assert.deepEqual(await legacy.configuration!.apply({ timeout: 9 }), { pendingRestart: [] });
    assert.equal(await configGet('timeout'), '9');
    assert.deepEqual(JSON.parse((await files()).spec), { memoryMb: 1024, access: null, overrides: { timeout: 9 } });
    // without any record there is nothing to render from: said, not guessed
    await unlink(join(dir, 'engine-spec.json'));
    await rejectsWithCode(engineRegistry.redis.create(context).configuration!.effective(), 'EngineError');
  });
});
