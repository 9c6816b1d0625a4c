// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/common/index.js';
import { engineRegistry, type EngineDriver } from '../../src/guest/index.js';
import { killServerProcesses } from '../../src/guest/engines/redis/server-process.js';
import { connectRedis } from '../support/redis-client.js';
import { tempDataDir } from '../support/temp-dir.js';
import { localRunner, randomAddress } from './engine-fixture.js';

// Redis 7.0 replays the AOF's transactions (MULTI/EXEC, and every script's writes) as its
// `default` user, checked against that user's rights: with none, a restart drops every one of
// them. Coffer's default user is off but keeps root's rights, and an instance made before that
// gets them at its next start.

describe('redis transactions across restarts', () => {
  let root: string;
  let dir: string;
  let driver: EngineDriver;
  const address = randomAddress();

  async function tenant<T>(work: (client: Awaited<ReturnType<typeof connectRedis>>) => Promise<T>): Promise<T> {
    const client = await connectRedis(address, 6379, ['tenant', 'tenant-Pass-1']);
    try {
      return await work(client);
    } finally {
      client.disconnect();
    }
  }

  const transaction = (key: string) => tenant((client) => client.multi().set(key, 'v').incr('n').exec());

  before(async () => {
    root = await tempDataDir('coffer-aoftx-');
    dir = join(root, 'i');
    await mkdir(dir);
    await chmod(dir, 0o711);
    const runner = await localRunner();
    const discovery = await engineRegistry.redis.discover([], runner);
    assert.ok(discovery.binaries[0] !== undefined, JSON.stringify(discovery.reports));
    driver = engineRegistry.redis.create({
      placement: { instanceId: 'i', dir, address, port: 6379 },
      binary: discovery.binaries[0],
      runner,
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
    });
    await driver.prepare({
      memoryMb: 256,
      databases: [],
      users: [{ name: 'tenant', password: 'tenant-Pass-1', databases: [] }],
      adminPassword: 'unused-by-redis',
      access: null,
      overrides: {},
    });
  });

  after(async () => {
    await driver?.stop().catch(() => undefined);
    if (root !== undefined) {
      await killServerProcesses(join(dir, 'data')).catch(() => undefined);
      await rm(root, { recursive: true, force: true });
    }
  });

  it('keeps a transaction across a restart, with no way in as the default user', async () => {
    await transaction('a');
    await driver.stop();
    await driver.start();
    assert.equal(await tenant((client) => client.get('a')), 'v');
    assert.equal(await tenant((client) => client.get('n')), '1');
    const anonymous = await connectRedis(address, 6379);
    try {
      await assert.rejects(anonymous.get('a'), /NOAUTH/);
      await assert.rejects(anonymous.call('AUTH', ['default', '']), /WRONGPASS|disabled/);
    } finally {
      anonymous.disconnect();
    }
  });

  it('gives an instance made before this its default user rights at its next start', async () => {
    await driver.stop();
    const aclFile = join(dir, 'data', 'users.acl');
    const acl = await readFile(aclFile, 'utf8');
    // the default user as instances were made before: off, without any right
    await writeFile(aclFile, acl.replace(/^user default .*$/m, 'user default off resetchannels -@all'));
    await driver.start();
    // this start replayed the AOF without the rights: its transaction is lost to this run
    assert.equal(await tenant((client) => client.get('a')), null);
    await transaction('b');
    await driver.stop();
    await driver.start();
    // repaired at the start before: both transactions, still in the AOF, are back
    assert.equal(await tenant((client) => client.get('a')), 'v');
    assert.equal(await tenant((client) => client.get('b')), 'v');
    assert.match(await readFile(aclFile, 'utf8'), /^user default off .*~\* &\* \+@all/m);
  });
});
