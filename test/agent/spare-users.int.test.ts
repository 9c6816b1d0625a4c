// test-lane: serial (as root it adds and removes OS users and runs a process as one of them)
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { HostPortAllocator } from '../../src/agent/address-allocator.js';
import { lookupGroup, lookupUser } from '../../src/agent/engine-user.js';
import { processesOf, removeInstanceUser } from '../../src/agent/instance-user.js';
import { LocalComputeDriver } from '../../src/agent/local-compute-driver.js';
import { SpareUsers } from '../../src/agent/spare-users.js';
import { silentLogger } from '../../src/common/logger.js';
import { removeInstanceUsersUnder } from '../support/instance-users.js';
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

    const taken = await spares.take('instance-a');
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
    const user = await spares.take('instance-c');
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
    const user = await spares.take('instance-b');
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
    const given = await again.take('instance-c');
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
    // the same agent, which remembers it as made (the take reads the account files, not getent)
    await run('usermod', ['-u', String(made.uid + 7), changed!]);
    const given = await spares.take('instance-d');
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
    const taken = await second.take('instance-d');
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
});
