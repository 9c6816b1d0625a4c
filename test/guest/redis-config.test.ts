import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { ProcessRunner } from '../../src/guest/process-runner.js';
import {
  checkUserName,
  passwordHash,
  renderInitialAclFile,
  rootCommandRules,
  rootDisableArguments,
  rootEnableArguments,
  tenantCommandRules,
  tenantUserArguments,
} from '../../src/guest/engines/redis/acl.js';
import { discoverRedisIn, parseRedisVersion } from '../../src/guest/engines/redis/binaries.js';
import { configString, maxmemoryMb, renderRedisConf } from '../../src/guest/engines/redis/config.js';

const isCode = (code: string) => (err: Error & { code?: string }) => err.code === code;

const confInput = {
  memoryMb: 1024,
  address: '127.93.1.2',
  port: 6379,
  dataDir: '/srv/coffer/i1/data',
  socketPath: '/srv/coffer/i1/data/redis.sock',
  pidFile: '/srv/coffer/i1/data/redis.pid',
  aclFile: '/srv/coffer/i1/data/users.acl',
};

/** redis.conf's directives as name → the rest of the line, as Redis reads them (one per line). */
function directives(conf: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const line of conf.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const [name, ...rest] = line.split(' ');
    found.set(name!, [...(found.get(name!) ?? []), rest.join(' ')]);
  }
  return found;
}

describe('redis.conf', () => {
  it('listens on the instance address only, locked down, persisted inside the instance', () => {
    const conf = directives(renderRedisConf(confInput));
    const one = (name: string) => {
      const values = conf.get(name);
      assert.equal(values?.length, 1, `${name} appears once`);
      return values![0];
    };
    assert.equal(one('bind'), '127.93.1.2');
    assert.equal(one('port'), '6379');
    assert.equal(one('protected-mode'), 'yes');
    assert.equal(one('unixsocket'), '"/srv/coffer/i1/data/redis.sock"');
    assert.equal(one('unixsocketperm'), '700');
    assert.equal(one('daemonize'), 'no');
    assert.equal(one('dir'), '"/srv/coffer/i1/data"');
    assert.equal(one('aclfile'), '"/srv/coffer/i1/data/users.acl"');
    assert.equal(one('pidfile'), '"/srv/coffer/i1/data/redis.pid"');
    assert.equal(one('appendonly'), 'yes');
    assert.equal(one('appendfsync'), 'everysec');
    assert.equal(one('dbfilename'), '"dump.rdb"');
    assert.equal(one('maxmemory'), '768mb');
    assert.equal(one('maxmemory-policy'), 'noeviction');
    assert.equal(one('enable-protected-configs'), 'no');
    assert.equal(one('enable-module-command'), 'no');
    // users live in the ACL file only: Redis refuses `user` lines beside an aclfile
    assert.equal(conf.get('user'), undefined);
    assert.equal(conf.get('requirepass'), undefined);
  });

  it('keeps a quarter of the flavor RAM outside maxmemory, with a floor', () => {
    assert.equal(maxmemoryMb(512), 384);
    assert.equal(maxmemoryMb(16 * 1024), 12 * 1024);
    assert.equal(maxmemoryMb(8), 16);
  });

  it('quotes paths so that spaces, quotes and backslashes stay one value', () => {
    assert.equal(configString('/a b/"c"\\d'), '"/a b/\\"c\\"\\\\d"');
    const conf = renderRedisConf({ ...confInput, dataDir: '/data dir/"x"' });
    assert.match(conf, /^dir "\/data dir\/\\"x\\""$/m);
  });

  it('refuses line breaks, addresses that are not IPs and impossible ports', () => {
    assert.throws(() => configString('a\nbind 0.0.0.0'), isCode('BadRequest'));
    assert.throws(() => renderRedisConf({ ...confInput, dataDir: '/x\r\nprotected-mode no' }), isCode('BadRequest'));
    assert.throws(() => renderRedisConf({ ...confInput, address: '0.0.0.0 ::' }), isCode('BadRequest'));
    assert.throws(() => renderRedisConf({ ...confInput, address: 'localhost' }), isCode('BadRequest'));
    assert.throws(() => renderRedisConf({ ...confInput, port: 70_000 }), isCode('BadRequest'));
  });
});

describe('redis ACL rules', () => {
  it('sends a hostile name and password each as one argument, never as rules', () => {
    const name = 'x>y<z~&+-@all';
    const password = 'pw >other ~* &* +@all nopass\nsecond line';
    const args = tenantUserArguments(name, { password });
    assert.deepEqual(args, [name, 'reset', 'on', `>${password}`, '~*', '&*', ...tenantCommandRules]);
  });

  it('keeps password hashes for a rename, refusing anything that is not a SHA-256', () => {
    const hash = passwordHash('secret');
    assert.equal(hash, '2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b');
    assert.deepEqual(tenantUserArguments('bob', { hashes: [hash] }).slice(0, 4), ['bob', 'reset', 'on', `#${hash}`]);
    assert.throws(() => tenantUserArguments('bob', { hashes: ['nopass'] }), isCode('EngineError'));
  });

  it('refuses names with whitespace or control characters, reserved names and empty passwords', () => {
    for (const name of ['two words', 'line\nbreak', 'car\rriage', 'tab\t', 'nul\0', 'bell\u0007', '', 'x'.repeat(129)]) {
      assert.throws(() => checkUserName(name), isCode('BadRequest'), JSON.stringify(name));
    }
    for (const name of ['default', 'os_admin']) assert.throws(() => checkUserName(name), /reserved/);
    for (const name of ["it's", 'say"hi"', 'back`tick', '>pw', '~*', 'nopass', 'ünïcødé☃名前']) checkUserName(name);
    assert.throws(() => tenantUserArguments('alice', { password: '' }), isCode('BadRequest'));
    assert.throws(() => rootEnableArguments(''), isCode('BadRequest'));
  });

  it('gives tenants data commands only, root all but what takes the instance from the guest', () => {
    assert.deepEqual(tenantCommandRules.slice(0, 3), ['+@all', '-@admin', '-@dangerous']);
    assert.ok(!tenantCommandRules.some((rule) => /^\+(config|shutdown|acl|debug|module|migrate|monitor)/.test(rule)));
    const rootArgs = rootEnableArguments('r00t pw');
    assert.deepEqual(rootArgs.slice(0, 4), ['default', 'reset', 'on', '>r00t pw']);
    for (const denied of ['-acl|setuser', '-acl|deluser', '-config|set', '-shutdown', '-module', '-replicaof', '-migrate']) {
      assert.ok(rootCommandRules.includes(denied), denied);
    }
    assert.deepEqual(rootDisableArguments(), ['default', 'reset']);
  });

  it('starts an instance with the default user off and the guest user known by its hash only', () => {
    const file = renderInitialAclFile('the admin secret');
    assert.equal(
      file,
      'user default off resetpass resetkeys resetchannels -@all\n' +
        `user os_admin on #${passwordHash('the admin secret')} ~* &* +@all\n`,
    );
    assert.ok(!file.includes('the admin secret'));
  });
});

describe('redis discovery', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  const fakeRunner = (stdout: string): ProcessRunner => ({
    run: async () => ({ stdout, stderr: '' }),
    spawnDetached: () => Promise.reject(new Error('not used')),
    stream: () => {
      throw new Error('not used');
    },
    handOver: async () => undefined,
  });
  const binDir = async (withServer: boolean) => {
    const dir = await mkdtemp(join(tmpdir(), 'coffer-rdbin-'));
    dirs.push(dir);
    if (withServer) {
      await writeFile(join(dir, 'redis-server'), '#!/bin/sh\n');
      await chmod(join(dir, 'redis-server'), 0o755);
    }
    return dir;
  };

  it('parses redis-server --version into a major.minor name', () => {
    const output = 'Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=ae4d7c971a948f0';
    assert.deepEqual(parseRedisVersion(output), { versionName: '7.0', version: '7.0.15' });
    assert.deepEqual(parseRedisVersion('Redis server v=7.2.4 sha=0'), { versionName: '7.2', version: '7.2.4' });
    assert.equal(parseRedisVersion('KeyDB server v=x'), undefined);
  });

  it('reports a missing redis-server as inactive, saying how to install it', async () => {
    const discovery = await discoverRedisIn([await binDir(false)], fakeRunner(''));
    assert.deepEqual(discovery.binaries, []);
    const [report] = discovery.reports;
    assert.equal(report?.active, false);
    assert.equal(report?.datastore, 'redis');
    assert.match(report?.inactiveReason ?? '', /apt-get install redis-server/);
  });

  it('finds a redis-server and reports an unknown --version format as the reason it is inactive', async () => {
    const dir = await binDir(true);
    const found = await discoverRedisIn([dir], fakeRunner('Redis server v=7.0.15 sha=0'));
    assert.deepEqual(found.binaries, [{ versionName: '7.0', version: '7.0.15', binDir: dir }]);
    assert.equal(found.reports[0]?.active, true);
    const odd = await discoverRedisIn([dir], fakeRunner('something else'));
    assert.equal(odd.reports[0]?.active, false);
    assert.match(odd.reports[0]?.inactiveReason ?? '', /unknown format: something else.*apt-get install redis-server/);
  });
});
