// test-lane: alone (it checks processes by the uid of a user it just removed, which the next useradd anywhere reuses: no agent may run beside it)
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { access, chmod, chown, lstat, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { Client } from 'pg';
import { LocalProcessRunner } from '../../src/agent/index.js';
import { lookupGroup, lookupUser } from '../../src/agent/engine-user.js';
import { removeInstanceUser } from '../../src/agent/instance-user.js';
import { chownTree } from '../../src/agent/owner-tree.js';
import { agentContract, agentTopic, createRpcClient } from '../../src/bus/index.js';
import { silentLogger } from '../../src/common/logger.js';
import { openStateStore } from '../../src/db/index.js';
import { engineRegistry } from '../../src/guest/index.js';
import { withAdminClient } from '../../src/guest/engines/postgresql/admin.js';
import { readPostmasterPid } from '../../src/guest/engines/postgresql/postmaster.js';
import { bootstrapAdmin } from '../../src/main/admin-password.js';
import { secureDataDir } from '../../src/main/data-dir.js';
import { suffix } from '../guest/engine-fixture.js';
import { tempDataDir } from '../support/temp-dir.js';
import { until, waitUntil } from '../support/wait.js';
import { agentHarness, engine, flavor } from './agent-harness.js';

// The agent as root (how CI and production run it): a tenant's superuser can run programs as
// its engine's OS user (COPY ... PROGRAM). Each instance has a user of its own, which can read
// its own engine's files and nothing of another instance's, of the warm pool's or of Coffer's.

const run = promisify(execFile);
const kind = `postgresql-${engine.version}`;

/** Runs `args` as `user`; what it printed, or the error when it failed. */
async function asUser(user: string, args: string[]): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout } = await run('runuser', ['-u', user, '--', ...args], { timeout: 10_000 });
    return { ok: true, output: stdout };
  } catch (err) {
    return { ok: false, output: String((err as { stderr?: unknown }).stderr ?? err) };
  }
}

/** The uid a process runs as. */
async function uidOf(pid: number): Promise<number> {
  return Number(/^Uid:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

const notRoot = process.getuid?.() !== 0 && 'only root gives each instance an OS user of its own';

async function zombiesOf(uid: number): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir('/proc')) {
    const status = /^\d+$/.test(pid) ? await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '') : '';
    if (/^State:\s+Z/m.test(status) && new RegExp(`^Uid:\\s+${uid}\\s`, 'm').test(status)) found.push(pid);
  }
  return found;
}

describe('instance isolation', { skip: notRoot }, () => {
  const { transport, beats, roots, announcements, newAgent, prepared } = agentHarness('coffer-iso-');

  it('announces each engine version with the capabilities its engine declares, root included', async () => {
    const { options } = await newAgent({ warmPoolSize: 0 });
    const announced = await waitUntil('agent heartbeat', () => announcements.find((x) => x.host === options.host));
    const postgresql = announced.engines.filter((e) => e.manager === 'postgresql');
    assert.ok(postgresql.length > 0);
    const declared = engineRegistry.postgresql.capabilities;
    for (const version of postgresql) {
      // an installation without pg_basebackup (the npm builds of 16 to 18) has no backups or replicas; root stays
      const copies = version.capabilities.backup ? declared : { ...declared, backup: false, incrementalBackup: false, pointInTimeRecovery: false, replication: false };
      assert.deepEqual(version.capabilities, copies, version.name);
    }
    assert.deepEqual(postgresql.find((version) => version.name === '15')?.capabilities, declared, "Debian's 15 has every tool");
  });

  it("lets an instance's OS user read its own engine's files and nothing of other instances, the pool or Coffer", async (t) => {
    // the data directory as `coffer serve` lays it out: state database and admin password beside the instances
    const dataDir = await tempDataDir('coffer-iso-');
    roots.push(dataDir);
    await secureDataDir(dataDir, { serve: true });
    const store = await openStateStore(`sqlite:${join(dataDir, 'coffer.sqlite')}`, { logger: silentLogger() });
    await bootstrapAdmin(store, dataDir, undefined, () => undefined);
    assert.equal((await stat(join(dataDir, 'coffer.sqlite-wal'))).mode & 0o777, 0o600, 'SQLite gives its WAL the database file\'s mode');
    await store.close();
    const secrets = ['coffer.sqlite', 'coffer.log', 'admin-password'].map((name) => join(dataDir, name));
    for (const path of secrets) assert.equal((await stat(path)).mode & 0o777, 0o600, path);
    assert.equal((await stat(dataDir)).mode & 0o777, 0o711);

    const first = await newAgent({ dataDir, warmPoolSize: 1 });
    const agentRpc = createRpcClient(transport, agentContract, agentTopic(first.options.host));
    const kindDir = join(dataDir, 'pool', kind);
    const poolEntries = async () => (await readdir(kindDir).catch(() => [] as string[])).filter((n) => /^[0-9a-f]{16}$/.test(n));
    await until('a warm cluster', async () => (await poolEntries()).length === 1, 60_000);

    // A takes the pool's cluster, B (unless the pool refilled meanwhile) runs initdb
    const instances = [];
    for (const name of ['a', 'b']) {
      const instanceId = `iso-${name}-${suffix()}`;
      const adminPassword = `adm-${suffix()}`;
      const server = await prepared(agentRpc, instanceId, adminPassword);
      const dir = join(dataDir, 'instances', instanceId);
      const { osUser } = JSON.parse(await readFile(join(dir, 'instance.json'), 'utf8')) as { osUser: string };
      const identity = (await lookupUser(osUser))!;
      instances.push({ instanceId, server, dir, adminPassword, identity, pid: (await readPostmasterPid(join(dir, 'data')))!.pid });
    }
    const [a, b] = instances as [(typeof instances)[0], (typeof instances)[0]];
    const poolUid = (await lookupUser('coffer-db'))!.uid;
    assert.equal(new Set([a.identity.uid, b.identity.uid, poolUid, 0]).size, 4, 'each instance has a user of its own');
    assert.equal(await uidOf(a.pid), a.identity.uid);
    assert.equal(await uidOf(b.pid), b.identity.uid);

    // what A's user can and cannot read (the successes show the probe itself works)
    const readsAsA = async (path: string) => (await asUser(a.identity.name, ['cat', path])).ok;
    assert.equal((await asUser(a.identity.name, ['cat', join(a.dir, 'data', 'PG_VERSION')])).output, '15\n');
    assert.equal(await readsAsA(join(a.dir, 'postgresql.conf')), true);
    assert.equal((await asUser(b.identity.name, ['cat', join(b.dir, 'data', 'PG_VERSION')])).output, '15\n');
    const [entry] = await poolEntries();
    const forbidden = [
      ...['data/PG_VERSION', 'data/global/pg_control', 'postgresql.conf', 'pg_hba.conf', 'postgresql.log', 'os_admin.password', 'instance.json'].map(
        (name) => join(b.dir, name),
      ),
      // the guest's secret and the host's record of A's own instance
      join(a.dir, 'os_admin.password'),
      join(a.dir, 'instance.json'),
      ...secrets,
      ...(entry === undefined ? [] : [join(kindDir, entry, 'data', 'PG_VERSION'), join(kindDir, entry, 'os_admin.pool-password')]),
    ];
    for (const path of forbidden) {
      await access(path);
      assert.equal(await readsAsA(path), false, `${a.identity.name} must not read ${path}`);
    }
    for (const dir of [b.dir, join(dataDir, 'instances'), join(dataDir, 'pool'), dataDir]) {
      assert.equal((await asUser(a.identity.name, ['ls', dir])).ok, false, `${a.identity.name} must not list ${dir}`);
    }

    // the same through A's engine, as a tenant's superuser would try it
    const endpoint = { socketDir: join(a.dir, 'data'), port: a.server.port, password: a.adminPassword };
    const copyFromProgram = async (client: Client, command: string) => {
      await client.query('CREATE TEMP TABLE out (line text)');
      await client.query(`COPY out FROM PROGRAM '${command}'`);
      return (await client.query<{ line: string }>('SELECT line FROM out')).rows.map((row) => row.line);
    };
    const program = (command: string) => withAdminClient(endpoint, 'postgres', (client) => copyFromProgram(client, command));
    assert.deepEqual(await program('id -un'), [a.identity.name]);
    await assert.rejects(program(`cat ${join(b.dir, 'data', 'PG_VERSION')}`), /program ".*" failed/);
    await assert.rejects(program(`cat ${join(dataDir, 'coffer.sqlite')}`), /program ".*" failed/);
    // left behind by A's tenant: a file in /tmp, a System V shared memory segment, and a process
    // that outlives its engine, which inherits the session's socket: this client's end settles
    // only once that process is gone
    const leftover = `/tmp/coffer-iso-left-${suffix()}`;
    const tenant = new Client({ host: endpoint.socketDir, port: endpoint.port, user: 'os_admin', password: a.adminPassword, database: 'postgres' });
    tenant.on('error', () => undefined);
    await tenant.connect();
    const [segment] = await copyFromProgram(tenant, `setsid sleep 600 < /dev/null > /dev/null 2>&1 & touch ${leftover}; ipcmk -M 4096 | tr -dc 0-9`);
    const segments = async () => (await readFile('/proc/sysvipc/shm', 'utf8')).split('\n').map((line) => line.trim().split(/\s+/)[1]);
    assert.ok((await segments()).includes(segment), `segment ${segment} exists`);
    const tenantEnded = tenant.end();
    await access(leftover);

    // A's own engine serves its users
    const app = new Client({ host: a.server.address, port: a.server.port, user: 'app', password: 'app-Secret-1', database: 'appdb' });
    await app.connect();
    assert.deepEqual((await app.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
    await app.end();

    // a restarted agent finds each instance's engine under the same user
    await first.agent.stop();
    const mark = beats.length;
    await newAgent({ dataDir, host: first.options.host, addressPool: first.options.addressPool, warmPoolSize: 1 });
    await until('A HEALTHY again', () => beats.some((x, i) => i >= mark && x.instanceId === a.instanceId && x.status === 'HEALTHY'));
    assert.equal((await readPostmasterPid(join(a.dir, 'data')))!.pid, a.pid, 'adopted, not restarted');
    assert.equal(await uidOf(a.pid), a.identity.uid);

    // delete: whatever ran as A's user is gone, and so are the user and its files in /tmp; B runs on
    const began = performance.now();
    assert.deepEqual(await agentRpc.deleteServer({ instanceId: a.instanceId }), { deleted: true });
    t.diagnostic(`delete with user removal: ${(performance.now() - began).toFixed(0)} ms`);
    assert.equal(await lookupUser(a.identity.name), undefined, 'the instance user is removed');
    await assert.rejects(access(leftover), 'files the user left in /tmp are removed');
    assert.ok(!(await segments()).includes(segment), 'its shared memory segment is removed');
    // a zombie runs nothing; one may linger where PID 1 is slow to reap the orphans
    const zombies = await zombiesOf(a.identity.uid);
    const status = await Promise.all(
      (await readdir('/proc'))
        .filter((n) => /^\d+$/.test(n) && !zombies.includes(n))
        .map((pid) => uidOf(Number(pid)).catch(() => -1)),
    );
    assert.ok(!status.includes(a.identity.uid), 'no process of the removed user is left');
    await tenantEnded;
    assert.equal(await uidOf(b.pid), b.identity.uid, "B's engine keeps running");
    assert.deepEqual(await agentRpc.deleteServer({ instanceId: b.instanceId }), { deleted: true });
    assert.equal(await lookupUser(b.identity.name), undefined);
  });

  it("keeps each instance directory the host's, traversable by the instance's user alone", async () => {
    const { options } = await newAgent({ warmPoolSize: 0 });
    const agentRpc = createRpcClient(transport, agentContract, agentTopic(options.host));
    const instanceId = `iso-${suffix()}`;
    await agentRpc.createServer({ instanceId, engine, flavor, volumeSizeGb: 1 });
    const dir = join(options.dataDir, 'instances', instanceId);
    const record = JSON.parse(await readFile(join(dir, 'instance.json'), 'utf8')) as { osUser: string };
    const identity = (await lookupUser(record.osUser))!;
    const stats = await stat(dir);
    assert.deepEqual({ uid: stats.uid, gid: stats.gid, mode: stats.mode & 0o777 }, { uid: 0, gid: identity.gid, mode: 0o710 });
    assert.equal((await stat(join(dir, 'instance.json'))).mode & 0o777, 0o600);
    assert.match(record.osUser, /^coffer-[0-9a-f]{12}$/);
    await writeFile(join(dir, 'probe'), 'x', { mode: 0o644 });
    assert.equal((await asUser(identity.name, ['cat', join(dir, 'probe')])).ok, true, 'its own user traverses it');
    assert.equal((await asUser('coffer-db', ['cat', join(dir, 'probe')])).ok, false, 'no other user does');
    await agentRpc.deleteServer({ instanceId });
    assert.equal(await lookupUser(record.osUser), undefined);
    assert.equal(await lookupGroup(record.osUser), undefined, 'its group goes with it');
  });

  it('moves an instance made when all engines shared the pool user to a user of its own, keeping its data', async () => {
    const first = await newAgent({ warmPoolSize: 0 });
    const { options } = first;
    const agentRpc = createRpcClient(transport, agentContract, agentTopic(options.host));
    const instanceId = `iso-old-${suffix()}`;
    const dir = join(options.dataDir, 'instances', instanceId);
    const server = await prepared(agentRpc, instanceId, `adm-${suffix()}`);
    const query = async (sql: string) => {
      const client = new Client({ host: server.address, port: server.port, user: 'app', password: 'app-Secret-1', database: 'appdb' });
      await client.connect();
      try {
        return (await client.query(sql)).rows;
      } finally {
        await client.end();
      }
    };
    await query("CREATE TABLE t AS SELECT 'kept' AS v");

    // rewound to the layout of before: the engine runs as coffer-db, the record names no user
    await first.agent.stop();
    const poolUser = (await lookupUser('coffer-db'))!;
    const placement = { instanceId, dir, address: server.address, port: server.port };
    const found = await engineRegistry.postgresql.discover([], new LocalProcessRunner(poolUser));
    const binary = found.binaries.find((x) => x.versionName === engine.version);
    const driver = (runner: LocalProcessRunner) =>
      engineRegistry.postgresql.create({ placement, binary, runner, logger: silentLogger(), defaultClientCidrs: ['127.0.0.0/8'] });
    const record = JSON.parse(await readFile(join(dir, 'instance.json'), 'utf8')) as Record<string, unknown>;
    const ownUser = (await lookupUser(record['osUser'] as string))!;
    await driver(new LocalProcessRunner(ownUser)).stop();
    await chownTree(dir, ownUser.uid, poolUser);
    await chown(dir, 0, 0);
    await chmod(dir, 0o711);
    await removeInstanceUser(ownUser.name, silentLogger());
    delete record['osUser'];
    await writeFile(join(dir, 'instance.json'), JSON.stringify(record));
    await driver(new LocalProcessRunner(poolUser)).start();
    const oldPid = (await readPostmasterPid(join(dir, 'data')))!.pid;
    assert.equal(await uidOf(oldPid), poolUser.uid);

    const mark = beats.length;
    await newAgent({ dataDir: options.dataDir, host: options.host, addressPool: options.addressPool, warmPoolSize: 0 });
    await until('HEALTHY again', () => beats.some((x, i) => i >= mark && x.instanceId === instanceId && x.status === 'HEALTHY'), 30_000);
    const { osUser } = JSON.parse(await readFile(join(dir, 'instance.json'), 'utf8')) as { osUser: string };
    const moved = (await lookupUser(osUser))!;
    const pid = (await readPostmasterPid(join(dir, 'data')))!.pid;
    assert.notEqual(pid, oldPid, 'restarted under its new user');
    assert.equal(await uidOf(pid), moved.uid);
    assert.notEqual(moved.uid, poolUser.uid);
    const stats = await stat(dir);
    assert.deepEqual({ gid: stats.gid, mode: stats.mode & 0o777 }, { gid: moved.gid, mode: 0o710 });
    const owners = new Set<number>();
    for (const entry of await readdir(join(dir, 'data'), { recursive: true })) owners.add((await lstat(join(dir, 'data', entry))).uid);
    assert.deepEqual(owners, new Set([moved.uid]));
    assert.deepEqual(await query('SELECT v FROM t'), [{ v: 'kept' }]);
    assert.deepEqual(await agentRpc.deleteServer({ instanceId }), { deleted: true });
    assert.equal(await lookupUser(osUser), undefined);
  });

  it('removes an instance user whose exited process lingers as a zombie nobody reaps', async () => {
    const name = `coffer-zz${suffix()}`.slice(0, 32);
    await run('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', name]);
    const user = (await lookupUser(name))!;
    // sh forks a process of the user that exits at once, then becomes `sleep`, which never reaps
    // it: a zombie of the user, as an engine orphaned under a PID 1 that does not reap leaves
    const parent = spawn('sh', ['-c', `setpriv --reuid=${user.uid} --regid=${user.gid} --clear-groups true & exec sleep 60`], {
      stdio: 'ignore',
    });
    try {
      await until('a zombie of the user', async () => (await zombiesOf(user.uid)).length > 0, 10_000);
      await removeInstanceUser(name, silentLogger());
      assert.equal(await lookupUser(name), undefined);
    } finally {
      parent.kill('SIGKILL');
      await run('userdel', [name]).catch(() => undefined);
    }
  });
});
