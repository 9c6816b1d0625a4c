// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import { chmod, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { randomInt } from 'node:crypto';
import { connect as tcpConnect } from 'node:net';
import type { Redis } from 'ioredis';
import type { LocalProcessRunner } from '../../src/agent/index.js';
import { silentLogger } from '../../src/common/logger.js';
import { engineRegistry, type EngineDriver } from '../../src/guest/index.js';
import type { EngineContext } from '../../src/guest/engines/engine.js';
import { withAdminClient } from '../../src/guest/engines/redis/admin.js';
import { killServerProcesses } from '../../src/guest/engines/redis/server-process.js';
import { isProcessAlive } from '../../src/guest/engines/process-watch.js';
import { connectRedis } from '../support/redis-client.js';
import { tempDataDir } from '../support/temp-dir.js';
import { localRunner, ownerOf } from './engine-fixture.js';

// The Redis engine driver against the real redis-server: what a client of the instance sees
// (no way in without a password, tenant users that cannot touch the server), users and root
// with real logins, persistence across restarts, resize, and adoption by a new driver.

const adminPassword = 'Adm1n-pass-for-tests';
const passwords = {
  alice: 'al1ce pass >with ~rule &chars +@all -@read\nand a newline',
  odd: 'odd-Secret-1',
};
// every character ACL rules or the ACL file's syntax give a meaning to, in a name sent as its
// own argument and read back from the ACL file after a restart
const oddName = `x>y<z~&+-@#%'"\`\\`;

/** The instance directory as the agent makes it: the host's, traversable by the engine's user. */
async function instanceDir(path: string): Promise<string> {
  await mkdir(path);
  await chmod(path, 0o711);
  return path;
}

/** An address in this test's own loopback range (127.93.0.0/16), away from other test runs. */
function address(): string {
  return `127.93.${randomInt(0, 256)}.${randomInt(2, 254)}`;
}

describe('redis engine', () => {
  let root: string;
  let dir: string;
  let host: string;
  let context: EngineContext;
  let driver: EngineDriver;
  let runner: LocalProcessRunner;
  /** the guest's own way in: its socket and the secret the engine made for os_admin */
  const admin = async () => ({
    socketPath: join(dir, 'data', 'redis.sock'),
    password: await readFile(join(dir, 'os_admin.password'), 'utf8'),
  });

  /** A client on the instance's address; `auth` is AUTH's arguments (none: unauthenticated). */
  const connect = (auth: string[], target = host): Promise<Redis> => connectRedis(target, 6379, auth);
  /** Rejects with the socket's error code when nothing listens on `target`:6379. */
  const refused = (target: string) =>
    new Promise<void>((resolve, reject) => {
      const socket = tcpConnect({ host: target, port: 6379 });
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', reject);
    });
  /** Logs in as `user`, runs `work`, logs out. */
  const as = async <T>(user: string, password: string, work: (client: Redis) => Promise<T>): Promise<T> => {
    const client = await connect([user, password]);
    try {
      return await work(client);
    } finally {
      client.disconnect();
    }
  };

  before(async () => {
    root = await tempDataDir('coffer-rd-');
    runner = await localRunner();
    host = address();
    const name = 'i'.repeat(107 - '/data/redis.sock'.length - root.length - 1);
    assert.throws(() => engineRegistry.redis.checkInstanceDir(join(root, `${name}i`)), /shorter --data-dir/);
    engineRegistry.redis.checkInstanceDir(join(root, name));
    dir = await instanceDir(join(root, name));
    const discovery = await engineRegistry.redis.discover([], runner);
    assert.ok(discovery.binaries.length > 0, `no redis-server: ${JSON.stringify(discovery.reports)}`);
    context = {
      placement: { instanceId: 'i', dir, address: host, port: 6379 },
      binary: discovery.binaries[0],
      runner,
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
    };
    driver = engineRegistry.redis.create(context);
  });

  after(async () => {
    await driver?.stop().catch(() => undefined);
    if (dir !== undefined) await killServerProcesses(join(dir, 'data')).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  });

  const input = {
    memoryMb: 512,
    databases: [],
    users: [
      { name: 'alice', password: passwords.alice, databases: [] },
      { name: oddName, password: passwords.odd, host: '%', databases: [] },
    ],
    adminPassword,
    access: null,
    overrides: {},
  };

  it('reports Redis 7.0 as active with its capabilities', async () => {
    const discovery = await engineRegistry.redis.discover([], runner);
    const [report] = discovery.reports;
    assert.equal(report?.name, '7.0');
    assert.match(report?.version ?? '', /^7\.0\.\d+$/);
    assert.equal(report?.active, true);
    assert.equal(report?.capabilities.databases, false);
    assert.equal(report?.capabilities.users, true);
    assert.equal(report?.capabilities.accessRules, false);
  });

  it('refuses up front what Redis cannot hold, starting nothing', async () => {
    await assert.rejects(driver.prepare({ ...input, databases: [{ name: 'db' }] }), { code: 'BadRequest', message: /Redis has no databases/ });
    await assert.rejects(
      driver.prepare({ ...input, users: [{ name: 'u', password: 'p', databases: [{ name: 'db' }] }] }),
      { code: 'BadRequest' },
    );
    await assert.rejects(driver.prepare({ ...input, access: { allowedCidrs: ['10.0.0.0/8'] } }), { code: 'OperationNotSupported' });
    await assert.rejects(driver.prepare({ ...input, users: [{ name: 'has space', password: 'p', databases: [] }] }), { code: 'BadRequest' });
    assert.equal(await driver.health(), 'stopped');
  });

  it('prepares an instance whose users write and read over TCP with their passwords', async (t) => {
    const timings = await driver.prepare(input);
    const ms = (value: number) => value.toFixed(0);
    t.diagnostic(`prepare: init ${ms(timings.initMs)} ms, start ${ms(timings.startMs)} ms, setup ${ms(timings.setupMs)} ms`);
    assert.equal(await driver.health(), 'healthy');
    if (runner.identity !== undefined) {
      const status = await readFile(`/proc/${await driver.processId()}/status`, 'utf8');
      assert.match(status, new RegExp(`^Uid:\\s+${runner.identity.uid}\\s`, 'm'));
    }
    await as('alice', passwords.alice, async (alice) => {
      assert.equal(await alice.set('greeting', 'hello'), 'OK');
      assert.equal(await alice.get('greeting'), 'hello');
      assert.equal(await alice.call('ACL', ['WHOAMI']), 'alice');
    });
    await as(oddName, passwords.odd, async (odd) => {
      assert.equal(await odd.call('ACL', ['WHOAMI']), oddName);
      assert.equal(await odd.get('greeting'), 'hello');
    });
  });

  it('is locked down: no passwordless or default login, its own address only, a private socket', async () => {
    const anonymous = await connect([]);
    await assert.rejects(anonymous.call('GET', ['greeting']), /NOAUTH/);
    anonymous.disconnect();
    // a bare AUTH <password> is the default user's, which is off
    await assert.rejects(connect([adminPassword]), /WRONGPASS/);
    await assert.rejects(connect(['default', '']), /WRONGPASS/);
    await assert.rejects(connect(['alice', 'wrong']), /WRONGPASS/);
    // the admin password the taskmanager recorded opens nothing: os_admin has a secret of the host's
    const secret = (await admin()).password;
    assert.ok(secret.length >= 32 && secret !== adminPassword);
    await assert.rejects(connect(['os_admin', adminPassword]), /WRONGPASS/);
    const [a, b, c, d] = host.split('.').map(Number) as [number, number, number, number];
    await refused(host);
    await assert.rejects(refused(`${a}.${b}.${c}.${d === 254 ? 253 : d + 1}`), { code: 'ECONNREFUSED' });

    const host_ = process.getuid!();
    const engine = runner.identity?.uid ?? host_;
    assert.deepEqual(await ownerOf(dir), { uid: host_, mode: '711' });
    assert.deepEqual(await ownerOf(join(dir, 'os_admin.password')), { uid: host_, mode: '600' });
    assert.deepEqual(await ownerOf(join(dir, 'data')), { uid: engine, mode: '700' });
    assert.deepEqual(await ownerOf(join(dir, 'data', 'redis.sock')), { uid: engine, mode: '700' });
    for (const name of ['redis.conf', 'redis.log']) assert.deepEqual(await ownerOf(join(dir, name)), { uid: engine, mode: '600' }, name);
    const acl = await readFile(join(dir, 'data', 'users.acl'), 'utf8');
    assert.match(acl, /^user default off /m);
    assert.ok(!acl.includes(secret) && !acl.includes('al1ce'), 'the ACL file holds hashes, no password');
    const served = await withAdminClient(await admin(), (client) => client.call('CONFIG', ['GET', 'bind']));
    assert.deepEqual(served, ['bind', host]);
  });

  it("keeps tenant users away from the server's configuration and life", async () => {
    await as('alice', passwords.alice, async (alice) => {
      for (const command of [['CONFIG', 'GET', 'requirepass'], ['CONFIG', 'SET', 'dir', '/tmp'], ['SHUTDOWN'], ['ACL', 'SETUSER', 'alice', '+@admin'], ['ACL', 'LIST'], ['MONITOR'], ['DEBUG', 'SLEEP', '0'], ['REPLICAOF', '127.0.0.1', '1'], ['MIGRATE', '127.0.0.1', '1', 'k', '0', '1'], ['CLIENT', 'LIST'], ['BGSAVE']]) {
        // DEBUG is refused before the ACL is read (enable-debug-command no)
        await assert.rejects(alice.call(command[0]!, command.slice(1)), /NOPERM|DEBUG command not allowed/, command.join(' '));
      }
      // what an owner of all the data still needs
      assert.deepEqual(await alice.keys('greet*'), ['greeting']);
      assert.match(String(await alice.call('INFO', ['keyspace'])), /db0:keys=1/);
      assert.equal(await alice.publish('news', 'hi'), 0);
    });
  });

  it("slows an idle server's timer and gives it back at the first check after a tenant's command", async () => {
    // the guest's own connections (os_admin) are no tenant's use: one kept open reads the rate
    await withAdminClient(await admin(), async (watcher) => {
      const hz = async () => ((await watcher.call('CONFIG', ['GET', 'hz'])) as string[])[1];
      await driver.health();
      await driver.health();
      assert.equal(await hz(), '1', 'nothing happened between two checks');
      const alice = await connect(['alice', passwords.alice]);
      try {
        await alice.set('ticks', '1');
        assert.equal(await driver.health(), 'healthy');
        assert.equal(await hz(), '10', 'a connection was opened and used');
        await new Promise((resolve) => setTimeout(resolve, 1_200));
        await driver.health();
        await driver.health();
        assert.equal(await hz(), '1', 'a connection kept open, quiet since before the last check');
        await alice.incr('ticks');
        await driver.health();
        assert.equal(await hz(), '10', 'a kept connection sent a command');
      } finally {
        alice.disconnect();
      }
    });
  });

  it('creates, lists, updates and deletes users with real logins', async () => {
    const users = driver.users!;
    assert.deepEqual(await users.list(), [
      { name: 'alice', host: '%', databases: [] },
      { name: oddName, host: '%', databases: [] },
    ]);
    await users.create([{ name: 'bob', password: 'b0b secret', databases: [] }]);
    assert.equal(await as('bob', 'b0b secret', (bob) => bob.get('greeting')), 'hello');

    // all or nothing: carol is not created beside an existing alice
    await assert.rejects(
      users.create([
        { name: 'carol', password: 'c', databases: [] },
        { name: 'alice', password: 'a', databases: [] },
      ]),
      { code: 'UserAlreadyExists' },
    );
    assert.deepEqual((await users.list()).map((u) => u.name), ['alice', 'bob', oddName]);
    for (const name of ['two words', 'line\nbreak', 'tab\there', 'default', 'os_admin', '']) {
      await assert.rejects(users.create([{ name, password: 'p', databases: [] }]), { code: 'BadRequest' }, JSON.stringify(name));
    }
    await assert.rejects(users.create([{ name: 'erin', password: '', databases: [] }]), { code: 'BadRequest' });
    await assert.rejects(users.create([{ name: 'erin', password: 'p', host: '10.0.0.1', databases: [] }]), { code: 'BadRequest' });

    await users.update({ name: 'bob', host: '%' }, { password: 'new > pass' });
    await assert.rejects(connect(['bob', 'b0b secret']), /WRONGPASS/);
    await as('bob', 'new > pass', async () => undefined);
    // a rename keeps the password and drops the old name
    await users.update({ name: 'bob', host: '%' }, { name: 'robert' });
    await assert.rejects(connect(['bob', 'new > pass']), /WRONGPASS/);
    assert.equal(await as('robert', 'new > pass', (robert) => robert.call('ACL', ['WHOAMI'])), 'robert');
    await assert.rejects(users.update({ name: 'robert', host: '%' }, { name: 'alice' }), { code: 'UserAlreadyExists' });
    await assert.rejects(users.update({ name: 'nobody', host: '%' }, { password: 'x' }), { code: 'UserNotFound' });
    await assert.rejects(users.update({ name: 'os_admin', host: '%' }, { password: 'x' }), { code: 'UserNotFound' });
    await assert.rejects(users.update({ name: 'robert', host: '%' }, { host: '10.0.0.1' }), { code: 'BadRequest' });

    const session = await connect(['robert', 'new > pass']);
    await users.delete({ name: 'robert', host: '%' });
    // DELUSER closes the user's open sessions too
    await assert.rejects(session.call('PING'));
    session.disconnect();
    await assert.rejects(connect(['robert', 'new > pass']), /WRONGPASS/);
    await assert.rejects(users.delete({ name: 'robert', host: '%' }), { code: 'UserNotFound' });
    await assert.rejects(users.delete({ name: 'default', host: '%' }), { code: 'UserNotFound' });
    await assert.rejects(users.delete({ name: 'alice', host: '10.0.0.1' }), { code: 'UserNotFound' });
  });

  it("enables root as Redis's default user, without the commands that would take the instance from the guest", async () => {
    const name = await driver.root!.enable('r00t pass');
    assert.equal(name, 'default');
    // the bare AUTH <password> of clients written before ACLs
    const rootSession = await connect(['r00t pass']);
    assert.equal(await rootSession.call('ACL', ['WHOAMI']), 'default');
    assert.deepEqual(await rootSession.call('CONFIG', ['GET', 'maxmemory-policy']), ['maxmemory-policy', 'noeviction']);
    for (const command of [['CONFIG', 'SET', 'maxmemory', '0'], ['ACL', 'SETUSER', 'os_admin', 'off'], ['ACL', 'DELUSER', 'alice'], ['SHUTDOWN'], ['MODULE', 'LIST'], ['REPLICAOF', '127.0.0.1', '1']]) {
      await assert.rejects(rootSession.call(command[0]!, command.slice(1)), /NOPERM/, command.join(' '));
    }
    // a password again replaces the first
    await driver.root!.enable('second r00t');
    await assert.rejects(connect(['r00t pass']), /WRONGPASS/);

    await driver.root!.disable();
    await assert.rejects(rootSession.call('PING'), 'open root sessions are closed');
    rootSession.disconnect();
    await assert.rejects(connect(['second r00t']), /WRONGPASS/);
    await assert.rejects(connect(['default', 'second r00t']), /WRONGPASS/);
    await driver.root!.disable();
    assert.deepEqual((await driver.users!.list()).map((u) => u.name), ['alice', oddName], 'root is not a tenant user');
  });

  it('refuses access rules it cannot enforce and accepts the default', async () => {
    await driver.updateAccess(null);
    await driver.updateAccess({ isPublic: true });
    await assert.rejects(driver.updateAccess({ allowedCidrs: ['10.0.0.0/8'] }), { code: 'OperationNotSupported', message: /cannot restrict clients/ });
  });

  it('keeps data and users across stop and start, with every file in the instance directory', async () => {
    await as('alice', passwords.alice, async (alice) => {
      await alice.rpush('list', 'a', 'b', 'c');
    });
    const first = await driver.processId();
    assert.ok(first !== undefined);
    await driver.stop();
    assert.equal(await driver.health(), 'stopped');
    assert.equal(await driver.processId(), undefined);
    assert.equal(await isProcessAlive(first), false);
    await assert.rejects(refused(host), { code: 'ECONNREFUSED' });

    const data = await readdir(join(dir, 'data'));
    assert.ok(data.includes('dump.rdb') && data.includes('appendonlydir') && data.includes('users.acl'), data.join(', '));
    assert.ok((await readdir(join(dir, 'data', 'appendonlydir'))).some((file) => file.endsWith('.aof')));

    await driver.start();
    assert.equal(await driver.health(), 'healthy');
    assert.notEqual(await driver.processId(), first);
    await as('alice', passwords.alice, async (alice) => {
      assert.equal(await alice.get('greeting'), 'hello');
      assert.deepEqual(await alice.lrange('list', 0, -1), ['a', 'b', 'c']);
    });
    assert.equal(await as(oddName, passwords.odd, (odd) => odd.call('ACL', ['WHOAMI'])), oddName);
    await assert.rejects(connect(['second r00t']), /WRONGPASS/, 'root stays disabled');
    const log = await readFile(driver.logFiles().general!, 'utf8');
    assert.match(log, /Ready to accept connections/);
  });

  it('converges when prepare is delivered again, keeping the server and its data', async () => {
    const pid = await driver.processId();
    await driver.prepare({ ...input, users: [{ name: 'alice', password: 'reset-pass', databases: [] }] });
    assert.equal(await driver.processId(), pid);
    assert.equal(await as('alice', 'reset-pass', (alice) => alice.get('greeting')), 'hello');
    await driver.users!.update({ name: 'alice', host: '%' }, { password: passwords.alice });
  });

  it('resizes without a restart: maxmemory follows the flavor, live and in redis.conf', async () => {
    const pid = await driver.processId();
    await driver.resize(1024);
    assert.equal(await driver.processId(), pid);
    const maxmemory = await withAdminClient(await admin(), (client) => client.call('CONFIG', ['GET', 'maxmemory']));
    assert.deepEqual(maxmemory, ['maxmemory', String(768 * 1024 * 1024)]);
    assert.match(await readFile(join(dir, 'redis.conf'), 'utf8'), new RegExp(`^maxmemory ${768 * 1024 * 1024}$`, 'm'));
    assert.equal(await as('alice', passwords.alice, (alice) => alice.get('greeting')), 'hello');

    // a stopped engine is started with the new configuration
    await driver.stop();
    await driver.resize(512);
    assert.equal(await driver.health(), 'healthy');
    const after = await withAdminClient(await admin(), (client) => client.call('CONFIG', ['GET', 'maxmemory']));
    assert.deepEqual(after, ['maxmemory', String(384 * 1024 * 1024)]);
  });

  it('is adopted by a new driver, as after an agent restart', async () => {
    const pid = await driver.processId();
    const adopter = engineRegistry.redis.create(context);
    assert.equal(await adopter.processId(), pid);
    assert.equal(await adopter.health(), 'healthy');
    await adopter.start();
    assert.equal(await adopter.processId(), pid, 'start adopts the running server');
    await adopter.stop();
    assert.equal(await isProcessAlive(pid!), false);
    assert.equal(await driver.health(), 'stopped');

    // a host without the binary can still watch and stop, not start
    const watcher = engineRegistry.redis.create({ ...context, binary: undefined });
    await assert.rejects(watcher.start(), { code: 'DatastoreVersionInactive', message: /apt-get install redis-server/ });
    await driver.start();
    assert.equal(await watcher.health(), 'healthy');
    await watcher.stop();
    assert.equal(await driver.health(), 'stopped');
    assert.ok((await stat(join(dir, 'data', 'dump.rdb'))).size > 0);
  });

  it('starts a data directory without its marker over, stopping the server that runs in it first', async () => {
    // as a restore the host died in leaves it: a server started, its data not yet marked as in
    const other = await instanceDir(join(root, 'over'));
    const otherHost = address();
    const otherContext = { ...context, placement: { instanceId: 'over', dir: other, address: otherHost, port: 6379 } };
    const first = engineRegistry.redis.create(otherContext);
    await first.prepare({ ...input, users: [{ name: 'alice', password: 'first-Pass-1', databases: [] }] });
    const pid = (await first.processId())!;
    await rm(join(other, '.redis-init.done'));
    // a new driver, as after an agent restart
    const again = engineRegistry.redis.create(otherContext);
    try {
      await again.prepare(input);
      assert.equal(await isProcessAlive(pid), false, 'the server left in the directory was stopped');
      assert.notEqual(await again.processId(), pid);
      const alice = await connectRedis(otherHost, 6379, ['alice', passwords.alice]);
      assert.equal(await alice.call('ACL', ['WHOAMI']), 'alice');
      alice.disconnect();
      await assert.rejects(connectRedis(otherHost, 6379, ['alice', 'first-Pass-1']), /WRONGPASS/);
    } finally {
      await again.stop();
      await killServerProcesses(join(other, 'data')).catch(() => undefined);
    }
  });

  it("makes a new instance's files ahead of its prepare (beside its certificate), refusing first what prepare refuses; the prepare starts with its users there", async () => {
    const other = await instanceDir(join(root, 'ahead'));
    const otherHost = address();
    const ahead = engineRegistry.redis.create({ ...context, placement: { instanceId: 'ahead', dir: other, address: otherHost, port: 6379 } });
    try {
      await assert.rejects(ahead.prepareFiles!({ ...input, databases: [{ name: 'db' }] }), { code: 'BadRequest', message: /Redis has no databases/ });
      assert.deepEqual(await readdir(other), [], 'nothing made');
      await ahead.prepareFiles!(input);
      assert.ok((await readdir(join(other, 'data'))).includes('users.acl'));
      assert.equal(await ahead.health(), 'stopped', 'nothing started');

      await ahead.prepare(input);
      const alice = await connectRedis(otherHost, 6379, ['alice', passwords.alice]);
      assert.equal(await alice.call('ACL', ['WHOAMI']), 'alice');
      alice.disconnect();
      const endpoint = { socketPath: join(other, 'data', 'redis.sock'), password: await readFile(join(other, 'os_admin.password'), 'utf8') };
      const stats = await withAdminClient(endpoint, (client) => client.call('INFO', ['commandstats']));
      assert.doesNotMatch(String(stats), /cmdstat_acl\|(setuser|save)/, 'the users were in the ACL file it started with');
    } finally {
      await ahead.stop();
      await killServerProcesses(join(other, 'data')).catch(() => undefined);
    }
  });
});
