// test-lane: serial (as root it adds and removes OS users and runs a process as one of them)
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { HostPortAllocator } from '../../src/agent/address-allocator.js';
import { lookupGroup, lookupUser } from '../../src/agent/engine-user.js';
import { instanceIds, processesOf, removeInstanceUser } from '../../src/agent/instance-user.js';
import { LocalComputeDriver } from '../../src/agent/local-compute-driver.js';
import { LocalProcessRunner } from '../../src/agent/local-process-runner.js';
import { NetworkWall } from '../../src/agent/network-wall.js';
import { SpareUsers } from '../../src/agent/spare-users.js';
import { silentLogger } from '../../src/common/logger.js';
import { removeInstanceUsersUnder } from '../support/instance-users.js';
import { chainOf } from '../support/network-walls.js';
import { tempDataDir } from '../support/temp-dir.js';
import { until } from '../support/wait.js';

// As root the agent keeps instance users made ahead of time (useradd is slow and one at a time
// on the whole host): a create takes one, the agent makes the next in the background, and the
// record of them survives a restart.

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const dirs: string[] = [];

after(async () => {
  for (const dir of dirs) {
    await removeInstanceUsersUnder(dir);
    await rm(dir, { recursive: true, force: true });
  }
});

async function spareDir(): Promise<{ dir: string; file: string; recorded: () => Promise<string[]> }> {
  const dir = await tempDataDir('coffer-spare-');
  dirs.push(dir);
  const file = join(dir, 'spare-users.json');
  return { dir, file, recorded: async () => (JSON.parse(await readFile(file, 'utf8')) as { users: string[] }).users };
}

/** a user as an instance needs it: it exists, with a group of its own, and runs nothing */
async function assertFreshUser(name: string): Promise<void> {
  const identity = await lookupUser(name);
  assert.ok(identity !== undefined, `${name} exists`);
  assert.equal(await lookupGroup(name), identity.gid, `${name} has a group of its own`);
  assert.deepEqual(await processesOf(identity.uid), []);
}

/** walled with nothing allowed: the two refusals alone */
function assertWallOfNothing(chain: string[] | undefined, what: string): void {
  assert.ok(chain !== undefined, `${what} is walled`);
  assert.equal(chain.length, 2, chain.join('\n'));
  assert.match(chain[0]!, /reject with tcp reset/);
  assert.match(chain[1]!, /reject/);
}

describe('spare instance users', { skip: !isRoot && 'needs root (useradd)' }, () => {
  it('are made in the background up to the size, each recorded, and a take hands one out and makes the next', async () => {
    const { file, recorded } = await spareDir();
    const spares = new SpareUsers({ file, size: 2, logger: silentLogger() });
    await spares.open();
    assert.deepEqual(await recorded(), []);
    await spares.fill();
    const made = await recorded();
    for (const name of made) {
      assert.match(name, /^coffer-[0-9a-f]{12}$/);
      await assertFreshUser(name);
    }

    const taken = (await spares.take('instance-a')).identity;
    assert.ok(made.includes(taken.name), 'the create got a user made ahead of time');
    assert.ok(!(await recorded()).includes(taken.name), 'a taken user is no longer spare');
    await spares.fill();
    assert.equal((await recorded()).length, 2);
    assert.ok(!(await recorded()).includes(taken.name));
    await spares.stop();
    await removeInstanceUser(taken.name, silentLogger());
  });

  it('makes no spare user while creates are under way, and makes them once they are over', async () => {
    const { file, recorded } = await spareDir();
    let creating = true;
    const spares = new SpareUsers({ file, size: 1, logger: silentLogger(), busy: () => creating, busyPollMs: 10 });
    await spares.open();
    const filling = spares.fill();
    // a create meanwhile makes its own user: it does not queue behind a spare's useradd
    const user = (await spares.take('instance-c')).identity;
    await assertFreshUser(user.name);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(await recorded(), [], 'nothing made during the creates');
    creating = false;
    await filling;
    const made = await recorded();
    assert.equal(made.length, 1);
    await assertFreshUser(made[0]!);
    await spares.stop();
    await removeInstanceUser(user.name, silentLogger());
  });

  it('makes a user at once when none is ready', async () => {
    const { file, recorded } = await spareDir();
    const spares = new SpareUsers({ file, size: 0, logger: silentLogger() });
    await spares.open();
    const user = (await spares.take('instance-b')).identity;
    await assertFreshUser(user.name);
    assert.deepEqual(await recorded(), []);
    await spares.stop();
    await removeInstanceUser(user.name, silentLogger());
  });

  it('never hands out a spare user changed since it was made (no group of its own): it is removed and another user given', async () => {
    const { file, recorded } = await spareDir();
    const spares = new SpareUsers({ file, size: 1, logger: silentLogger() });
    await spares.open();
    await spares.fill();
    await spares.stop();
    const [tampered] = await recorded();
    // its primary group now one others share: the instance directory opens to that gid
    await run('usermod', ['-g', 'nogroup', tampered!]);

    const again = new SpareUsers({ file, size: 1, logger: silentLogger() });
    await again.open();
    const given = (await again.take('instance-c')).identity;
    assert.notEqual(given.name, tampered);
    await assertFreshUser(given.name);
    assert.equal(await lookupUser(tampered!), undefined, 'the changed user is gone');
    await again.stop();
    await removeInstanceUser(given.name, silentLogger());
  });

  it('checks a spare user against what it was made as when taken: one whose uid changed meanwhile is removed, not handed out', async () => {
    const { file, recorded } = await spareDir();
    const spares = new SpareUsers({ file, size: 1, logger: silentLogger() });
    await spares.open();
    await spares.fill();
    const [changed] = await recorded();
    const made = (await lookupUser(changed!))!;
    // the same agent, which remembers it as made (the take reads the account files, not getent);
    // the new uid is above the range useradd gives instance users, so that no user made beside
    // this test (other files run in parallel) can hold it already
    await run('usermod', ['-u', String(instanceIds.max + 1 + (made.uid % 10_000)), changed!]);
    const given = (await spares.take('instance-d')).identity;
    assert.notEqual(given.name, changed);
    await assertFreshUser(given.name);
    assert.equal(await lookupUser(changed!), undefined, 'the changed user is gone');
    await spares.stop();
    await removeInstanceUser(given.name, silentLogger());
    for (const name of await recorded()) await removeInstanceUser(name, silentLogger());
  });

  it('takes up the users an earlier run left, forgets names never made, and removes what is over the size', async () => {
    const { file, recorded } = await spareDir();
    const first = new SpareUsers({ file, size: 3, logger: silentLogger() });
    await first.open();
    await first.fill();
    assert.equal((await recorded()).length, 3);
    await first.stop();
    const left = await recorded();
    // as if the agent died between writing a name and its useradd
    await writeFile(file, JSON.stringify({ users: [...left, 'coffer-000000000000'] }));

    const second = new SpareUsers({ file, size: 2, logger: silentLogger() });
    await second.open();
    const kept = await recorded();
    assert.equal(kept.length, 2);
    assert.ok(kept.every((name) => left.includes(name)));
    const removed = left.filter((name) => !kept.includes(name));
    assert.equal(removed.length, 1);
    assert.equal(await lookupUser(removed[0]!), undefined, 'the user over the size is removed');
    const taken = (await second.take('instance-d')).identity;
    assert.ok(kept.includes(taken.name));
    await second.stop();
    await removeInstanceUser(taken.name, silentLogger());
  });

  it('a stop during the filling leaves every user it made on record', async () => {
    const { file, recorded } = await spareDir();
    const spares = new SpareUsers({ file, size: 5, logger: silentLogger() });
    await spares.open();
    const filling = spares.fill();
    await until('a first spare user', async () => (await recorded()).length >= 1, 20_000);
    await spares.stop();
    await filling;
    const names = await recorded();
    for (const name of names) await assertFreshUser(name);
    assert.ok(names.length < 5, 'the filling stopped early');
  });

  it("the local driver places an instance with one of the agent's spare users", async () => {
    const { dir, recorded } = await spareDir();
    const first = 42_000 + Math.floor(Math.random() * 80) * 100;
    const driver = new LocalComputeDriver({ dataDir: dir, addresses: new HostPortAllocator('127.0.0.1', `${first}-${first + 99}`), logger: silentLogger(), spareUsers: 1 });
    await driver.open(() => ({ standardPort: 6379, span: 2 }));
    await driver.prepareAhead();
    const [spare] = await recorded();
    const placed = await driver.place({ instanceId: 'spare-user-instance', engine: { manager: 'redis', version: '7' }, flavor: { id: 'small', ramMb: 512, vcpus: 1 }, volumeSizeGb: 1, ports: { standardPort: 6379, span: 2 } });
    assert.equal(placed.record.osUser, spare);
    await driver.prepareAhead();
    assert.equal((await recorded()).length, 1);
    assert.ok(!(await recorded()).includes(spare!));
    await driver.remove('spare-user-instance');
    assert.equal(await lookupUser(spare!), undefined, "the instance's user goes with it");
    await driver.close();
  });

  it('walls each spare with nothing allowed as it is made and hands it out as walled; one the wall fails for is handed out unwalled', async () => {
    const wall = new NetworkWall(new LocalProcessRunner(undefined));
    const { file, recorded } = await spareDir();
    const spares = new SpareUsers({ file, size: 1, logger: silentLogger(), wall: (identity) => wall.raise(identity.uid, []) });
    await spares.open();
    await spares.fill();
    const [made] = await recorded();
    const uid = (await lookupUser(made!))!.uid;
    assertWallOfNothing(await chainOf(uid), 'the spare');
    const taken = await spares.take('instance-w');
    assert.deepEqual(taken, { identity: { name: made, uid, gid: taken.identity.gid }, walled: true });
    await spares.stop();
    await removeInstanceUser(made!, silentLogger());
    await wall.remove(uid);

    const failing = await spareDir();
    const unwalled = new SpareUsers({ file: failing.file, size: 1, logger: silentLogger(), wall: () => Promise.reject(new Error('no nftables')) });
    await unwalled.open();
    await unwalled.fill();
    const given = await unwalled.take('instance-x');
    assert.equal(given.walled, false, 'its create raises its wall whole');
    await assertFreshUser(given.identity.name);
    await unwalled.stop();
    await removeInstanceUser(given.identity.name, silentLogger());
  });

  it('takes up spares left by an earlier run as unwalled (the host may have rebooted) and walls them before it makes new ones', async () => {
    const wall = new NetworkWall(new LocalProcessRunner(undefined));
    const { file, recorded } = await spareDir();
    const first = new SpareUsers({ file, size: 2, logger: silentLogger() });
    await first.open();
    await first.fill();
    await first.stop();
    const left = await recorded();

    const walls: string[] = [];
    const second = new SpareUsers({
      file,
      size: 2,
      logger: silentLogger(),
      wall: async (identity) => {
        walls.push(identity.name);
        await wall.raise(identity.uid, []);
      },
    });
    await second.open();
    const early = await second.take('instance-y');
    assert.ok(left.includes(early.identity.name));
    assert.equal(early.walled, false, 'not walled by this run yet');
    await second.fill();
    const [kept] = left.filter((name) => name !== early.identity.name);
    assert.equal(walls[0], kept, 'the one found is walled first');
    const late = await second.take('instance-z');
    assert.deepEqual([late.identity.name, late.walled], [kept, true]);
    assertWallOfNothing(await chainOf(late.identity.uid), 'the spare found');
    await second.stop();
    for (const { identity } of [early, late]) {
      await removeInstanceUser(identity.name, silentLogger());
      await wall.remove(identity.uid);
    }
    for (const name of await recorded()) {
      const identity = await lookupUser(name);
      await removeInstanceUser(name, silentLogger());
      if (identity !== undefined) await wall.remove(identity.uid);
    }
  });

  it("the local driver walls an instance on a spare user's wall of nothing, and raises it whole when that wall is gone", async () => {
    const { dir } = await spareDir();
    const first = 42_000 + Math.floor(Math.random() * 80) * 100;
    const driver = new LocalComputeDriver({ dataDir: dir, addresses: new HostPortAllocator('127.0.0.1', `${first}-${first + 99}`), logger: silentLogger(), spareUsers: 1 });
    await driver.open(() => ({ standardPort: 6379, span: 2 }));
    const place = (instanceId: string) =>
      driver.place({ instanceId, engine: { manager: 'redis', version: '7' }, flavor: { id: 'small', ramMb: 512, vcpus: 1 }, volumeSizeGb: 1, ports: { standardPort: 6379, span: 2 } });
    const allowed = (placed: Awaited<ReturnType<typeof place>>) => [{ address: placed.record.address, port: placed.record.port }];

    await driver.prepareAhead();
    const placed = await place('walled-ahead-a');
    const uid = (await lookupUser(placed.record.osUser!))!.uid;
    assertWallOfNothing(await chainOf(uid), 'placed, before anything runs as it');
    await driver.wall(placed, allowed(placed));
    const chain = (await chainOf(uid))!;
    assert.equal(chain.length, 3, chain.join('\n'));
    assert.match(chain[0]!, new RegExp(`ip daddr 127\\.0\\.0\\.1 th dport ${placed.record.port} accept`));

    await driver.prepareAhead();
    const second = await place('walled-ahead-b');
    const secondUid = (await lookupUser(second.record.osUser!))!.uid;
    // as a reboot leaves it: no chain for the uid
    await new NetworkWall(new LocalProcessRunner(undefined)).remove(secondUid);
    await driver.wall(second, allowed(second));
    assert.deepEqual(await chainOf(secondUid), [chain[0]!.replace(String(placed.record.port), String(second.record.port)), chain[1], chain[2]]);

    await driver.remove('walled-ahead-a');
    await driver.remove('walled-ahead-b');
    assert.equal(await chainOf(uid), undefined, 'the wall goes with the instance');
    await driver.close();
  });
});
