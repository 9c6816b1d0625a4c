// test-lane: parallel (engines as coffer-test-db on random loopback addresses, its own directories)
import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/common/index.js';
import { engineRegistry, type EngineDriver } from '../../src/guest/index.js';
import { RedisAofArchive } from '../../src/guest/engines/redis/aof-archive.js';
import { aofDirName, chunkName, parseChunkName } from '../../src/guest/engines/redis/aof-files.js';
import { infoFields, withAdminClient, type AdminEndpoint } from '../../src/guest/engines/redis/admin.js';
import { rewriteAof } from '../../src/guest/engines/redis/backup.js';
import { killServerProcesses } from '../../src/guest/engines/redis/server-process.js';
import { connectRedis } from '../support/redis-client.js';
import { tempDataDir } from '../support/temp-dir.js';
import { localRunner, randomAddress } from './engine-fixture.js';

// The AOF's archive on a real Redis, as the shipper drives it: the current file's new bytes go
// in chunks that follow each other (here at once, not after a minute), a rewrite closes the file
// and its rest goes as its final chunk, after which Redis may remove the files it replaced; how
// far the archive reaches is the second before the first write not shipped, or the check's
// time when none waits.

describe('redis AOF archive', () => {
  let root: string;
  let dir: string;
  let driver: EngineDriver;
  let archive: RedisAofArchive;
  let archiveHost: ConstructorParameters<typeof RedisAofArchive>[0];
  const address = randomAddress();
  const aofDir = () => join(dir, 'data', 'appendonlydir');
  let programsRun = 0;

  const admin = async (): Promise<AdminEndpoint> => ({
    socketPath: join(dir, 'data', 'redis.sock'),
    password: await readFile(join(dir, 'os_admin.password'), 'utf8'),
  });

  /** an archive of the test's instance that counts how often it asks Redis for its persistence state */
  function countingArchive(): { counted: RedisAofArchive; asked(): number } {
    let asked = 0;
    const counted = new RedisAofArchive(
      {
        ...archiveHost,
        persistence: async () => {
          asked += 1;
          return withAdminClient(await admin(), async (client) => infoFields(String(await client.call('INFO', ['server', 'persistence']))));
        },
      },
      { shipAfterMs: 0 },
    );
    return { counted, asked: () => asked };
  }

  async function set(key: string): Promise<void> {
    const client = await connectRedis(address, 6379, ['tenant', 'tenant-Pass-1']);
    try {
      await client.set(key, 'v');
    } finally {
      client.disconnect();
    }
  }

  async function manifest(): Promise<string> {
    return readFile(join(aofDir(), 'appendonly.aof.manifest'), 'utf8');
  }

  /** what the shipper would store of `name`, after `inspect` */
  async function ship(name: string): Promise<{ facts: Record<string, string>; bytes: Buffer }> {
    const facts = await archive.inspect(name);
    const bytes = await buffer(archive.read(name, new AbortController().signal));
    await archive.remove(name);
    return { facts, bytes };
  }

  before(async () => {
    root = await tempDataDir('coffer-aofarch-');
    dir = join(root, 'i');
    await mkdir(dir);
    await chmod(dir, 0o711);
    const local = await localRunner();
    // counts the programs run as the engine's user (each a process spawned)
    const runner = new Proxy(local, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver) as unknown;
        if ((name === 'run' || name === 'stream') && typeof value === 'function') {
          return (...args: unknown[]) => {
            programsRun += 1;
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const discovery = await engineRegistry.redis.discover([], runner);
    assert.ok(discovery.binaries[0] !== undefined, JSON.stringify(discovery.reports));
    driver = engineRegistry.redis.create({
      placement: { instanceId: 'i', dir, address, port: 6379 },
      binary: discovery.binaries[0],
      runner,
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
      archiveLog: true,
    });
    await driver.prepare({
      memoryMb: 512,
      databases: [],
      users: [{ name: 'tenant', password: 'tenant-Pass-1', databases: [] }],
      adminPassword: 'unused-by-redis',
      access: null,
      // no automatic rewrite closing the file under the test's large writes
      overrides: { appendonly: false, 'aof-use-rdb-preamble': false, 'auto-aof-rewrite-percentage': 0 },
    });
    archiveHost = { dir, dataDir: join(dir, 'data'), runner, logger: silentLogger(), endpoint: admin, running: async () => (await driver.health()) === 'healthy' };
    archive = new RedisAofArchive(archiveHost, { shipAfterMs: 0 });
  });

  after(async () => {
    await driver?.stop().catch(() => undefined);
    if (root !== undefined) {
      await killServerProcesses(join(dir, 'data')).catch(() => undefined);
      await rm(root, { recursive: true, force: true });
    }
  });

  it('runs with what archiving needs, whatever the group set', async () => {
    const live = await withAdminClient(await admin(), async (client) =>
      (await client.call('CONFIG', ['GET', 'append*', 'aof-*'])) as string[],
    );
    const settings = new Map<string, string>();
    for (let i = 0; i + 1 < live.length; i += 2) settings.set(live[i]!, live[i + 1]!);
    assert.equal(settings.get('appendonly'), 'yes');
    assert.equal(settings.get('aof-use-rdb-preamble'), 'yes');
    assert.equal(settings.get('aof-timestamp-enabled'), 'yes');
    assert.equal(settings.get('aof-disable-auto-gc'), 'yes');
  });

  it('ships the current file in chunks that follow each other and end with a whole command', async () => {
    // what prepare wrote before (the first file's start) goes first
    for (const name of await archive.pending()) await ship(name);
    const file = (await manifest()).match(/appendonly\.aof\.(\d+)\.incr\.aof seq \d+ type i/)!;
    const seq = Number(file[1]);
    const start = (await readFile(join(aofDir(), file[0].split(' ')[0]!))).length;

    await set('a');
    await sleep(1100);
    await set('b');
    const [first, ...none] = await archive.pending();
    assert.deepEqual(none, []);
    assert.equal(first, chunkName({ seq, offset: start }));
    const shipped = await ship(first!);
    const onDisk = await readFile(join(aofDir(), `appendonly.aof.${seq}.incr.aof`));
    assert.equal(shipped.facts.final, 'no');
    assert.equal(Number(shipped.facts.bytes), onDisk.length - start);
    assert.deepEqual(shipped.bytes, onDisk.subarray(start));
    const stamps = [...onDisk.toString('latin1').matchAll(/#TS:(\d+)\r\n/g)].map((m) => Number(m[1]));
    assert.equal(shipped.facts['last-commit'], new Date(stamps.at(-1)! * 1000).toISOString());
    assert.deepEqual(await archive.pending(), []);

    // nothing waits: the archive reaches up to the second of the check
    const checked = Date.now();
    const reach = (await archive.archivedThrough())!;
    assert.ok(reach.getTime() >= Math.floor(checked / 1000) * 1000 - 1 && reach.getTime() < Date.now(), reach.toISOString());

    await sleep(1100);
    await set('c');
    const cStamp = Number(/#TS:(\d+)\r\n[^#]*$/.exec((await readFile(join(aofDir(), `appendonly.aof.${seq}.incr.aof`))).toString('latin1'))![1]);
    assert.ok(cStamp > stamps.at(-1)!);
    // a write not shipped yet: the archive reaches up to the second before it
    assert.equal((await archive.archivedThrough())!.getTime(), cStamp * 1000 - 1);
    const [next] = await archive.pending();
    assert.deepEqual(parseChunkName(next!), { seq, offset: onDisk.length });
    await ship(next!);
  });

  it('reads no file while Redis reports its AOF unchanged, and finds a write or a rewrite at the next round', async () => {
    // the driver's own archive, as the guest's shipper runs it: its host asks Redis over the health check's kept connection
    const guestArchive = driver.backup!.walArchive!;
    for (const name of await guestArchive.pending()) await guestArchive.remove(name);
    // the round that finds nothing reads the files once, to know nothing waits
    assert.deepEqual(await guestArchive.pending(), []);
    const quiet = programsRun;
    for (let round = 0; round < 5; round += 1) assert.deepEqual(await guestArchive.pending(), []);
    assert.equal(programsRun, quiet, 'an idle round runs no program');

    // a write: the next round reads the files and finds it waiting for its minute, and so does every round until it goes
    await set('quiet-1');
    assert.deepEqual(await guestArchive.pending(), []);
    assert.ok(programsRun > quiet, 'a round after a write reads the files');
    const waiting = programsRun;
    assert.deepEqual(await guestArchive.pending(), []);
    assert.ok(programsRun > waiting, 'bytes waiting are looked at again each round');

    // a rewrite closes the file: the next round ships its end, the write with it
    await withAdminClient(await admin(), (client) => rewriteAof(client, new AbortController().signal, Date.now() + 60_000));
    const [closed, ...none] = await guestArchive.pending();
    assert.deepEqual(none, []);
    assert.equal((await guestArchive.inspect(closed!)).final, 'yes');
    assert.match((await buffer(guestArchive.read(closed!, new AbortController().signal))).toString('latin1'), /quiet-1/);
    await guestArchive.remove(closed!);
    // then quiet again
    assert.deepEqual(await guestArchive.pending(), []);
    const again = programsRun;
    assert.deepEqual(await guestArchive.pending(), []);
    assert.equal(programsRun, again);
    // the tests below drive the test's own archive, which must read the state the guest's left
    archive = new RedisAofArchive(archiveHost, { shipAfterMs: 0 });
  });

  it('asks Redis nothing in idle rounds: the AOF directory tells that nothing changed', async () => {
    const { counted, asked } = countingArchive();
    for (const name of await counted.pending()) await counted.remove(name);
    assert.deepEqual(await counted.pending(), []);
    const quietPrograms = programsRun;
    for (let round = 0; round < 5; round += 1) assert.deepEqual(await counted.pending(), []);
    assert.equal(asked(), 0, 'an idle round asks Redis nothing');
    assert.equal(programsRun, quietPrograms, 'an idle round runs no program');
    // a write, and a rewrite, are still found at the next round
    await set('dir-quiet-1');
    const [written] = await counted.pending();
    assert.match((await buffer(counted.read(written!, new AbortController().signal))).toString('latin1'), /dir-quiet-1/);
    await counted.remove(written!);
    assert.deepEqual(await counted.pending(), []);
    await withAdminClient(await admin(), (client) => rewriteAof(client, new AbortController().signal, Date.now() + 60_000));
    const afterRewrite = programsRun;
    await counted.pending();
    assert.ok(programsRun > afterRewrite, 'a round after a rewrite reads the files');
    for (const name of await counted.pending()) await counted.remove(name);
    assert.equal(asked(), 0);
    archive = new RedisAofArchive(archiveHost, { shipAfterMs: 0 });
  });

  it('asks Redis instead of reading a directory its engine user filled past what Redis keeps there', async () => {
    const { counted, asked } = countingArchive();
    const dir = join(archiveHost.dataDir, aofDirName);
    const filler = Array.from({ length: 300 }, (_, n) => join(dir, `filler-${n}`));
    await Promise.all(filler.map((file) => writeFile(file, '')));
    try {
      for (const name of await counted.pending()) await counted.remove(name);
      const before = asked();
      for (let round = 0; round < 3; round += 1) assert.deepEqual(await counted.pending(), []);
      assert.equal(asked(), before + 3, 'each idle round asks Redis');
    } finally {
      await Promise.all(filler.map((file) => rm(file, { force: true })));
    }
  });

  it('ships a closed file to its end, then lets Redis remove the files a rewrite replaced', async () => {
    const before = await manifest();
    const seq = Number(/appendonly\.aof\.(\d+)\.incr\.aof seq \d+ type i/.exec(before)![1]);
    await set('d');
    await withAdminClient(await admin(), (client) => rewriteAof(client, new AbortController().signal, Date.now() + 60_000));
    assert.match(await manifest(), new RegExp(`appendonly\\.aof\\.${seq}\\.incr\\.aof seq ${seq} type h`));
    const names = await archive.pending();
    assert.equal(names.length, 1);
    assert.equal(parseChunkName(names[0]!).seq, seq);
    const { facts } = await ship(names[0]!);
    assert.equal(facts.final, 'yes');
    // shipped: no history left, in the manifest or the directory
    assert.doesNotMatch(await manifest(), /type h/);
    assert.ok(!(await readdir(aofDir())).includes(`appendonly.aof.${seq}.incr.aof`));

    // the next file starts at offset 0 with a SELECT (its annotation only when the second changed)
    await set('e');
    const [first] = await archive.pending();
    assert.deepEqual(parseChunkName(first!), { seq: seq + 1, offset: 0 });
    const shipped = await ship(first!);
    assert.match(shipped.bytes.toString('latin1'), /^(#TS:\d+\r\n)?\*2\r\n\$6\r\nSELECT\r\n/);
  });

  it('ships a full chunk before its minute, ending where a command ends, and a command larger than a chunk alone', async () => {
    // as the guest runs it: the current file waits a minute unless a chunk's worth is written
    archive = new RedisAofArchive(archiveHost, { shipAfterMs: 3_600_000 });
    const mib = 1024 * 1024;
    const client = await connectRedis(address, 6379, ['tenant', 'tenant-Pass-1']);
    try {
      await set('small');
      assert.deepEqual(await archive.pending(), []);
      for (let i = 0; i < 5; i += 1) await client.set('big', 'x'.repeat(16 * mib));
      const [first, ...rest] = await archive.pending();
      assert.deepEqual(rest, [], 'what is left of a chunk waits');
      const { seq, offset } = parseChunkName(first!);
      const shipped = await ship(first!);
      const length = Number(shipped.facts.bytes);
      assert.equal(shipped.facts.final, 'no');
      assert.ok(length <= 64 * mib && length > 48 * mib, String(length));
      const onDisk = await readFile(join(aofDir(), `appendonly.aof.${seq}.incr.aof`));
      assert.match(onDisk.subarray(offset + length, offset + length + 4).toString('latin1'), /^(\*3|#TS)/, 'the next chunk starts with a command');

      await client.set('huge', 'y'.repeat(70 * mib));
      // the rest of the 16 MiB writes fill a chunk of their own; the 70 MiB command is one alone
      const [rest16, huge, ...none] = await archive.pending();
      assert.deepEqual(none, []);
      assert.deepEqual(parseChunkName(rest16!), { seq, offset: offset + length });
      const restLength = Number((await archive.inspect(rest16!)).bytes);
      assert.deepEqual(parseChunkName(huge!), { seq, offset: offset + length + restLength });
      const hugeCommand = `*3\r\n$3\r\nset\r\n$4\r\nhuge\r\n$${70 * mib}\r\n`.length + 70 * mib + 2;
      assert.equal(Number((await archive.inspect(huge!)).bytes), hugeCommand);
    } finally {
      client.disconnect();
    }
  });
});
