// test-lane: alone (it checks the network wall's chain and map element by uid after the user is removed, and an agent beside it may reuse that uid at once and wall it)
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { access, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { lookupGroup, lookupUser } from '../../src/agent/engine-user.js';
import { createInstanceUser, instanceIds, removeInstanceUser } from '../../src/agent/instance-user.js';
import type { EngineIdentity } from '../../src/agent/local-process-runner.js';
import { LocalProcessRunner } from '../../src/agent/local-process-runner.js';
import { NetworkWall } from '../../src/agent/network-wall.js';
import { silentLogger } from '../../src/common/logger.js';
import { suffix } from '../guest/engine-fixture.js';
import { removeInstanceUsersUnder } from '../support/instance-users.js';

// One OS user per instance: a host of a thousand instances needs a thousand users, more than
// login.defs' system range holds (101-999 on Debian, shared with the packages' own users), so
// instance users take their uids and gids from a range of Coffer's own.

const run = promisify(execFile);
const asRoot = process.getuid?.() === 0;

/** Runs `args` as the user (a tenant's program); its stdout. */
async function asUser(user: EngineIdentity, args: string[]): Promise<string> {
  const { stdout } = await run(args[0]!, args.slice(1), { uid: user.uid, gid: user.gid, cwd: '/', timeout: 10_000 });
  return stdout;
}

/**
 * Live processes whose command line holds `marker`, whoever they run as now: a removed user's
 * uid may be the next user's already (parallel tests make users), its command lines are its own.
 */
async function liveWith(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const pid of (await readdir('/proc')).filter((name) => /^\d+$/.test(name))) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(marker)) found.push(Number(pid));
  }
  return found;
}

/** A logger whose warnings (and worse) are kept in `warnings`, by message. */
function warningLogger() {
  const warnings: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') warnings.push((JSON.parse(line) as { msg: string }).msg);
      done();
    },
  });
  return { logger: pino({ level: 'warn' }, stream), warnings };
}

const exists = (path: string) => access(path).then(() => true, () => false);

/** System V shared memory segment ids. */
async function segments(): Promise<string[]> {
  return (await readFile('/proc/sysvipc/shm', 'utf8')).split('\n').slice(1).map((line) => line.trim().split(/\s+/)[1]!);
}

describe('instance users', { skip: asRoot ? false : 'creating OS users needs root' }, () => {
  it("get a uid and a gid of their own from Coffer's range, not the system range", async () => {
    const user = await createInstanceUser('density', silentLogger());
    try {
      assert.ok(user.uid >= instanceIds.min && user.uid <= instanceIds.max, `uid ${user.uid}`);
      assert.equal(await lookupGroup(user.name), user.gid);
      assert.ok(user.gid >= instanceIds.min && user.gid <= instanceIds.max, `gid ${user.gid}`);
      const { stdout } = await run('getent', ['passwd', user.name]);
      assert.match(stdout, /:\/usr\/sbin\/nologin\n$/);
    } finally {
      await removeInstanceUser(user.name, silentLogger());
    }
    assert.equal(await lookupUser(user.name), undefined);
    assert.equal(await lookupGroup(user.name), undefined);
  });

  it('say so when the range is full', async () => {
    // a range of one id, the lowest of the instance range
    const one = { min: instanceIds.min, max: instanceIds.min };
    const first = await createInstanceUser('first', silentLogger(), one);
    try {
      assert.equal(first.uid, instanceIds.min);
      await assert.rejects(createInstanceUser('second', silentLogger(), one), (err: Error) => {
        assert.match(err.message, new RegExp(`no free uid or gid from ${instanceIds.min} to ${instanceIds.min}`));
        return true;
      });
    } finally {
      await removeInstanceUser(first.name, silentLogger());
    }
  });

  it('kills every process of the user, those that fork while it is killed and leave their session included, and none of another user', async () => {
    const [a, b] = [await createInstanceUser('kill-a', silentLogger()), await createInstanceUser('kill-b', silentLogger())];
    // `sleep <marker>`: found by command line whatever uid it has by the time it is looked for
    const mark = `${600 + Math.floor(Math.random() * 300)}.${Math.floor(Math.random() * 1e6)}`;
    const otherMark = `${mark}1`;
    try {
      // forks all the time (a child in a new session, then a short sleep), and a daemon that left its parent's session
      const forker = `while :; do setsid sleep ${mark} < /dev/null > /dev/null 2>&1 & sleep 0.005; done`;
      for (const script of [forker, `setsid sh -c 'sleep ${mark}' < /dev/null > /dev/null 2>&1 &`]) {
        spawn('sh', ['-c', script], { uid: a.uid, gid: a.gid, cwd: '/', detached: true, stdio: 'ignore' }).unref();
      }
      spawn('sleep', [otherMark], { uid: b.uid, gid: b.gid, cwd: '/', detached: true, stdio: 'ignore' }).unref();
      for (let i = 0; i < 100 && (await liveWith(`sleep\0${mark}\0`)).length < 20; i++) await new Promise((r) => setTimeout(r, 20));
      const before = await liveWith(`sleep\0${mark}\0`);
      assert.ok(before.length >= 20, `the user forks: ${before.length} processes`);
      const neighbour = await liveWith(`sleep\0${otherMark}\0`);
      assert.equal(neighbour.length, 1);

      const { logger, warnings } = warningLogger();
      await removeInstanceUser(a.name, logger);
      assert.equal(await lookupUser(a.name), undefined);
      assert.deepEqual(await liveWith(`sleep\0${mark}\0`), [], 'no process of the removed user is left');
      // killed as the user, without the walk of /proc by pid
      assert.deepEqual(warnings, []);
      assert.deepEqual(await liveWith(`sleep\0${otherMark}\0`), neighbour, "the other user's process runs on");
    } finally {
      await removeInstanceUser(a.name, silentLogger());
      await removeInstanceUser(b.name, silentLogger());
    }
    assert.deepEqual(await liveWith(`sleep\0${otherMark}\0`), []);
  });

  it("kills by pid what killing as the user cannot reach: a process whose effective uid alone is the user's", async () => {
    const user = await createInstanceUser('euid', silentLogger());
    const mark = `${600 + Math.floor(Math.random() * 300)}.${Math.floor(Math.random() * 1e6)}`;
    try {
      // real and saved uid root's (seteuid without exec: an exec would make the saved uid the
      // user's): the user's kill(-1) does not reach it, userdel still counts it
      spawn('perl', ['-e', '$> = $ARGV[0]; sleep 600', String(user.uid), mark], { detached: true, stdio: 'ignore' }).unref();
      for (let i = 0; i < 100 && (await liveWith(`\0${mark}\0`)).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal((await liveWith(`\0${mark}\0`)).length, 1);
      const { logger, warnings } = warningLogger();
      await removeInstanceUser(user.name, logger);
      assert.equal(await lookupUser(user.name), undefined);
      assert.deepEqual(await liveWith(`\0${mark}\0`), []);
      assert.deepEqual(warnings, ['processes of the instance user outlived SIGKILL sent as the user: killing them by pid']);
    } finally {
      await removeInstanceUser(user.name, silentLogger());
    }
  });

  it("removes the user's files from /tmp, /var/tmp and /dev/shm and its System V segments, and nothing of another user", async () => {
    const [a, b] = [await createInstanceUser('files-a', silentLogger()), await createInstanceUser('files-b', silentLogger())];
    const tag = `coffer-leftover-${suffix()}`;
    const own = [`/tmp/${tag}-a`, `/var/tmp/${tag}-a`, `/dev/shm/${tag}-a`];
    // a directory of the user's it closed to itself, with a file inside
    const closed = `/tmp/${tag}-closed`;
    // another user's directory the user wrote into, closed to it since: it cannot delete its file itself
    const shared = `/tmp/${tag}-shared`;
    // another instance's data, under /tmp as the tests' are: a directory the user cannot enter
    const neighbourData = await mkdtemp(`/tmp/${tag}-data-`);
    const theirs = [`/tmp/${tag}-b`, `/dev/shm/${tag}-b`, join(shared, 'b'), join(neighbourData, 'b')];
    try {
      for (const path of own) await asUser(a, ['touch', path]);
      await asUser(a, ['mkdir', closed]);
      await asUser(a, ['touch', join(closed, 'inside')]);
      await asUser(a, ['chmod', '000', closed]);
      await asUser(b, ['mkdir', '-m', '1777', shared]);
      await asUser(a, ['touch', join(shared, 'a')]);
      for (const path of theirs) {
        if (path.startsWith(neighbourData)) await writeFile(path, 'x');
        else await asUser(b, ['touch', path]);
      }
      await run('chown', ['-R', `${b.uid}:${b.gid}`, neighbourData]);
      await asUser(b, ['chmod', '755', shared]);
      const segment = (await asUser(a, ['ipcmk', '-M', '4096'])).replace(/\D/g, '');
      const otherSegment = (await asUser(b, ['ipcmk', '-M', '4096'])).replace(/\D/g, '');
      assert.ok((await segments()).includes(segment));

      const { logger, warnings } = warningLogger();
      await removeInstanceUser(a.name, logger);
      // the one file the user could not delete itself sent root through all of /tmp, and only /tmp
      assert.deepEqual(warnings, ['the instance user left files it cannot delete itself: walking all of the directory as root']);
      for (const path of [...own, closed, join(shared, 'a')]) assert.equal(await exists(path), false, `${path} is removed`);
      assert.ok(!(await segments()).includes(segment), 'its shared memory segment is removed');
      for (const path of theirs) assert.equal(await exists(path), true, `${path} stays`);
      assert.ok((await segments()).includes(otherSegment), "the other user's segment stays");
      await run('ipcrm', ['-m', otherSegment]);
    } finally {
      await removeInstanceUser(a.name, silentLogger());
      await removeInstanceUser(b.name, silentLogger());
      await Promise.all([...own, closed, shared, neighbourData, ...theirs].map((path) => rm(path, { recursive: true, force: true })));
    }
  });

  it("the tests' clean-up of a data directory takes its instance users out of the network wall", async () => {
    const user = await createInstanceUser('cleanup', silentLogger());
    const dataDir = await mkdtemp('/tmp/coffer-cleanup-');
    const wall = new NetworkWall(new LocalProcessRunner(undefined));
    try {
      await mkdir(join(dataDir, 'instances', 'one'), { recursive: true });
      await writeFile(join(dataDir, 'instances', 'one', 'instance.json'), JSON.stringify({ osUser: user.name }));
      await wall.raise(user.uid, [{ address: '127.0.0.1', port: 5432 }]);
      await run('nft', ['list', 'chain', 'inet', 'coffer', `wall_${user.uid}`]);
      await removeInstanceUsersUnder(dataDir);
      assert.equal(await lookupUser(user.name), undefined);
      await assert.rejects(run('nft', ['list', 'chain', 'inet', 'coffer', `wall_${user.uid}`]), 'its chain is gone');
      const { stdout } = await run('nft', ['-j', 'list', 'map', 'inet', 'coffer', 'walls']);
      assert.doesNotMatch(stdout, new RegExp(`\\[\\s*${user.uid}\\s*,`), 'its element of the map is gone');
    } finally {
      await removeInstanceUser(user.name, silentLogger());
      await wall.remove(user.uid);
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
