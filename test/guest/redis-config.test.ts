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
import { identityOf } from '../../src/guest/engines/engine-modules.js';
import { redisEngine } from '../../src/guest/engines/redis/engine.js';
import { configString, maxmemoryMb, redisSettings, renderRedisConf } from '../../src/guest/engines/redis/config.js';
import { planLiveChanges } from '../../src/guest/engines/redis/live-config.js';
import { refusedDirective } from '../../src/guest/engines/redis/server-process.js';
import { redisParameters, redisParameterTable } from '../../src/guest/engines/redis/parameters.js';

const redis = identityOf('redis', redisEngine.modules);

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

/**
 * A line split into arguments as Redis's sdssplitargs does for redis.conf: blanks separate,
 * "…" takes backslash escapes (\\ \" \n \xHH …), '…' takes only \'; a closing quote must end
 * the argument. Throws where Redis would refuse the line.
 */
function splitArgs(line: string): string[] {
  const args: string[] = [];
  let i = 0;
  const escapes: Record<string, string> = { n: '\n', r: '\r', t: '\t', b: '\b', a: '\u0007' };
  while (i < line.length) {
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (i >= line.length) break;
    let arg = '';
    const quote = line[i] === '"' || line[i] === "'" ? line[i++] : undefined;
    for (;;) {
      if (i >= line.length) {
        if (quote !== undefined) throw new Error(`unbalanced quotes: ${line}`);
        break;
      }
      const c = line[i]!;
      if (quote === undefined) {
        if (c === ' ' || c === '\t') break;
        arg += c;
        i++;
      } else if (quote === '"' && c === '\\' && line[i + 1] === 'x' && /^[0-9a-f]{2}$/i.test(line.slice(i + 2, i + 4))) {
        arg += String.fromCharCode(parseInt(line.slice(i + 2, i + 4), 16));
        i += 4;
      } else if (c === '\\' && i + 1 < line.length && (quote === '"' || line[i + 1] === "'")) {
        const next = line[i + 1]!;
        arg += quote === '"' ? (escapes[next] ?? next) : next;
        i += 2;
      } else if (c === quote) {
        i++;
        if (i < line.length && line[i] !== ' ' && line[i] !== '\t') throw new Error(`closing quote followed by ${line[i]}: ${line}`);
        break;
      } else {
        arg += c;
        i++;
      }
    }
    args.push(arg);
  }
  return args;
}

/** Every directive's arguments as Redis reads them, by name (in the order of the file). */
function parsedConf(conf: string): Map<string, string[][]> {
  const found = new Map<string, string[][]>();
  for (const line of conf.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const [name, ...args] = splitArgs(line);
    found.set(name!, [...(found.get(name!) ?? []), args]);
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
    assert.equal(one('bind'), '"127.93.1.2"');
    assert.equal(one('port'), '6379');
    assert.equal(one('protected-mode'), 'yes');
    assert.equal(one('unixsocket'), '"/srv/coffer/i1/data/redis.sock"');
    assert.equal(one('unixsocketperm'), '"700"');
    assert.equal(one('daemonize'), 'no');
    assert.equal(one('dir'), '"/srv/coffer/i1/data"');
    assert.equal(one('aclfile'), '"/srv/coffer/i1/data/users.acl"');
    assert.equal(one('pidfile'), '"/srv/coffer/i1/data/redis.pid"');
    assert.equal(one('appendonly'), 'yes');
    assert.equal(one('appendfsync'), '"everysec"');
    assert.equal(one('dbfilename'), '"dump.rdb"');
    assert.equal(one('maxmemory'), String(768 * 1024 * 1024));
    assert.equal(one('maxmemory-policy'), '"noeviction"');
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

describe('redis configuration groups', () => {
  const render = (overrides: Record<string, string | number | boolean>) => parsedConf(renderRedisConf({ ...confInput, overrides }));
  const plain = render({});

  it('publishes a useful set, with Coffer’s value of each in range, and nothing that reaches files, programs or the network', () => {
    assert.equal(redisEngine.capabilities.configurationGroups, true);
    const names = redisParameters.map((p) => p.name);
    assert.equal(new Set(names).size, names.length, 'no name twice');
    for (const wanted of ['maxmemory-policy', 'timeout', 'save', 'appendonly', 'appendfsync', 'slowlog-log-slower-than', 'notify-keyspace-events', 'databases']) {
      assert.ok(names.includes(wanted), wanted);
    }
    const forbidden = /^(dir|dbfilename|appenddirname|appendfilename|logfile|pidfile|unixsocket.*|bind|bind-source-addr|port|tls-.*|aclfile|enable-.*-command|enable-protected-configs|protected-mode|rename-command|loadmodule|replicaof|slaveof|masterauth|masteruser|requirepass|maxmemory|include|ignore-warnings|syslog-.*|cluster-config-file)$/;
    for (const name of names) assert.doesNotMatch(name, forbidden);
    for (const { name, type, min, max, standard } of redisParameterTable) {
      assert.equal(typeof standard, type === 'integer' ? 'number' : type, name);
      if (typeof standard === 'number') {
        assert.ok(min !== undefined && max !== undefined && Number.isSafeInteger(min) && Number.isSafeInteger(max), `${name} has integer bounds`);
        assert.ok(min <= standard && standard <= max, `${name}: ${min} <= ${standard} <= ${max}`);
      }
    }
    // the wire shape carries Trove's rule fields only
    assert.ok(redisParameters.every((p) => !('standard' in p)));
  });

  it('renders every published parameter exactly once, with Coffer’s value without an override', () => {
    for (const { name, standard } of redisParameterTable) {
      const values = plain.get(name);
      assert.equal(values?.length, 1, `${name} appears once`);
      const expected = typeof standard === 'boolean' ? (standard ? 'yes' : 'no') : String(standard);
      assert.deepEqual(values![0], [expected], name);
    }
    assert.deepEqual(plain.get('save'), [['3600 1 300 100 60 10000']], 'save points are one argument, as Redis splits them itself');
    assert.deepEqual(plain.get('notify-keyspace-events'), [['']]);
  });

  it('lets an override replace Coffer’s own value of the same name and changes nothing else', () => {
    const overrides = { 'maxmemory-policy': 'allkeys-lru', appendonly: false, save: '', timeout: 30, databases: 32, 'slowlog-log-slower-than': -1 };
    const conf = render(overrides);
    assert.deepEqual(conf.get('maxmemory-policy'), [['allkeys-lru']]);
    assert.deepEqual(conf.get('appendonly'), [['no']]);
    assert.deepEqual(conf.get('save'), [['']]);
    assert.deepEqual(conf.get('timeout'), [['30']]);
    assert.deepEqual(conf.get('databases'), [['32']]);
    assert.deepEqual(conf.get('slowlog-log-slower-than'), [['-1']]);
    assert.deepEqual([...conf.keys()], [...plain.keys()], 'the same directives in the same order');
    for (const [name, values] of plain) {
      if (!(name in overrides)) assert.deepEqual(conf.get(name), values, name);
    }
  });

  it('keeps a hostile string one value of its own parameter', () => {
    const hostile = 'allkeys-lru" bind 0.0.0.0 \\" protected-mode no \\x41 \'x\'';
    const conf = render({ 'maxmemory-policy': hostile, 'notify-keyspace-events': 'Ex\\' });
    assert.deepEqual(conf.get('maxmemory-policy'), [[hostile]]);
    assert.deepEqual(conf.get('notify-keyspace-events'), [['Ex\\']]);
    assert.deepEqual(conf.get('bind'), [['127.93.1.2']]);
    assert.deepEqual(conf.get('protected-mode'), [['yes']]);
    for (const value of ['a\nbind 0.0.0.0', 'a\rb', 'a\0b']) {
      assert.throws(() => renderRedisConf({ ...confInput, overrides: { save: value } }), isCode('UnprocessableEntity'), JSON.stringify(value));
    }
  });

  it('renders nothing outside the published parameters, whatever the caller passes', () => {
    const outside: Record<string, string | number | boolean>[] = [{ dir: '/tmp' }, { requirepass: 'x' }, { maxmemory: 0 }, { 'enable-module-command': true }, { loadmodule: '/x.so' }];
    for (const overrides of outside) {
      assert.throws(() => renderRedisConf({ ...confInput, overrides }), isCode('UnprocessableEntity'), JSON.stringify(overrides));
    }
    assert.throws(() => renderRedisConf({ ...confInput, overrides: { timeout: 1.5 } }), isCode('UnprocessableEntity'));
    assert.throws(() => renderRedisConf({ ...confInput, overrides: { databases: 10_001 } }), isCode('UnprocessableEntity'));
    assert.throws(() => renderRedisConf({ ...confInput, overrides: { appendonly: 'yes' } }), isCode('UnprocessableEntity'));
    // Trove compares names case-insensitively: rendered under Redis's own name
    assert.deepEqual(render({ 'MaxMemory-Policy': 'volatile-lfu' }).get('maxmemory-policy'), [['volatile-lfu']]);
  });

  it('plans CONFIG SET for what runs with another value, and names the restart-only ones still running their old value', () => {
    const settings = redisSettings({ ...confInput, overrides: { 'maxmemory-policy': 'allkeys-lru', databases: 32, appendonly: false } });
    const live = new Map(redisParameterTable.map(({ name, standard }) => [name, typeof standard === 'boolean' ? (standard ? 'yes' : 'no') : String(standard)]));
    assert.deepEqual(planLiveChanges(settings, live, redisParameterTable), {
      set: [['maxmemory-policy', 'allkeys-lru'], ['appendonly', false]],
      pendingRestart: ['databases'],
    });
    // once they run: nothing to do, nothing pending
    live.set('maxmemory-policy', 'allkeys-lru').set('databases', '32').set('appendonly', 'no');
    assert.deepEqual(planLiveChanges(settings, live, redisParameterTable), { set: [], pendingRestart: [] });
    // detached: back to Coffer's values
    const detached = redisSettings(confInput);
    assert.deepEqual(planLiveChanges(detached, live, redisParameterTable), {
      set: [['maxmemory-policy', 'noeviction'], ['appendonly', true]],
      pendingRestart: ['databases'],
    });
  });
});

describe('redis start failures', () => {
  const refusal = [
    '',
    '*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***',
    'Reading the configuration file, at line 51',
    `>>> 'notify-keyspace-events "Kx!"'`,
    "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.",
  ].join('\n');

  it('names the directive and reason of the redis.conf line Redis refused, without its value or paths', () => {
    assert.deepEqual(refusedDirective(`1:C 03 Dec 2026 07:00:00.000 # oO0OoO0OoO0Oo Redis is starting\n${refusal}\n`), {
      name: 'notify-keyspace-events',
      reason: "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.",
    });
    const withPath = refusal.replace(/Invalid.*$/, "Can't open the log file: /srv/coffer/i1/x.log");
    assert.equal(refusedDirective(withPath)?.reason, "Can't open the log file: x.log");
  });

  it('ignores a refusal that is not the last thing the log says (an earlier start)', () => {
    assert.equal(refusedDirective(`${refusal}\n1:M 03 Dec 2026 07:01:00.000 # Could not create server TCP listening socket`), undefined);
    assert.equal(refusedDirective('1:M 03 Dec 2026 07:01:00.000 * Ready to accept connections'), undefined);
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
    // off and without a password, but with root's rights: Redis 7.0 replays the AOF's transactions as `default`
    assert.deepEqual(rootDisableArguments(), ['default', 'reset', '~*', '&*', ...rootCommandRules]);
  });

  it('starts an instance with the default user off and the guest user known by its hash only', () => {
    const file = renderInitialAclFile('the admin secret');
    assert.equal(
      file,
      `user default off resetpass ~* &* ${rootCommandRules.join(' ')}\n` +
        `user os_admin on #${passwordHash('the admin secret')} ~* &* +@all\n`,
    );
    assert.ok(!file.includes('the admin secret'));
  });

  it("starts a new instance with the tenant's users in its ACL file, known by their hashes only", () => {
    const file = renderInitialAclFile('the admin secret', [{ name: 'alice', password: 'alice pass >x' }, { name: `o"d\\d`, password: 'odd' }]);
    const lines = file.trimEnd().split('\n');
    assert.equal(lines.length, 4);
    assert.equal(lines[2], `user ${tenantUserArguments('alice', { hashes: [passwordHash('alice pass >x')] }).join(' ')}`);
    assert.equal(lines[3], `user o"d\\d reset on #${passwordHash('odd')} ~* &* ${tenantCommandRules.join(' ')}`);
    assert.ok(!file.includes('alice pass') && !file.includes('>'), 'no password in the clear');
    assert.throws(() => renderInitialAclFile('the admin secret', [{ name: 'os_admin', password: 'p' }]), isCode('BadRequest'));
    assert.throws(() => renderInitialAclFile('the admin secret', [{ name: 'has space', password: 'p' }]), isCode('BadRequest'));
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
    ready: async () => undefined,
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
    const discovery = await discoverRedisIn([await binDir(false)], fakeRunner(''), redis);
    assert.deepEqual(discovery.binaries, []);
    const [report] = discovery.reports;
    assert.equal(report?.active, false);
    assert.equal(report?.datastore, 'redis');
    assert.match(report?.inactiveReason ?? '', /apt-get install redis-server/);
  });

  it('finds a redis-server and reports an unknown --version format as the reason it is inactive', async () => {
    const dir = await binDir(true);
    const found = await discoverRedisIn([dir], fakeRunner('Redis server v=7.0.15 sha=0'), redis);
    assert.deepEqual(found.binaries, [{ versionName: '7.0', version: '7.0.15', binDir: dir }]);
    assert.equal(found.reports[0]?.active, true);
    const odd = await discoverRedisIn([dir], fakeRunner('something else'), redis);
    assert.equal(odd.reports[0]?.active, false);
    assert.match(odd.reports[0]?.inactiveReason ?? '', /unknown format: something else.*apt-get install redis-server/);
  });
});
