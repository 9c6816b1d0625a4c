// test-lane: parallel (OS users of random names; the one-id range at the bottom of the instance range is far from the ids useradd hands out from the top)
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { lookupGroup, lookupUser } from '../../src/agent/engine-user.js';
import { createInstanceUser, instanceIds, removeInstanceUser } from '../../src/agent/instance-user.js';
import { silentLogger } from '../../src/common/logger.js';

// One OS user per instance: a host of a thousand instances needs a thousand users, more than
// login.defs' system range holds (101-999 on Debian, shared with the packages' own users), so
// instance users take their uids and gids from a range of Coffer's own.

const run = promisify(execFile);
const asRoot = process.getuid?.() === 0;

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
});
