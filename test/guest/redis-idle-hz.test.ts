import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { idleHz, IdleHzPolicy, tenantIdleSeconds, type ServerActivity } from '../../src/guest/engines/redis/idle-hz.js';

// When the guest slows an idle Redis's timer and gives it back (the real server: redis-engine.int.test.ts).

const line = (id: number, user: string, idle: number) =>
  `id=${id} addr=127.0.0.1:5${id} laddr=127.0.0.1:6379 fd=8 name= age=30 idle=${idle} flags=N db=0 sub=0 psub=0 multi=-1 cmd=get user=${user} redir=-1 resp=2`;

const activity = (hz: number, connectionsReceived: number, tenantIdle: number[] = []): ServerActivity => ({
  hz,
  connectionsReceived,
  tenantIdleSeconds: tenantIdle,
});
const noGroup = async () => undefined;

describe('the idle hz policy', () => {
  it("reads the idle seconds of every connection but the guest's own", () => {
    const list = [line(3, 'os_admin', 0), line(7, 'app', 12), line(9, 'default', 0), ''].join('\n');
    assert.deepEqual(tenantIdleSeconds(list), [12, 0]);
    assert.deepEqual(tenantIdleSeconds(`${line(3, 'os_admin', 0)}\n`), []);
  });

  it('changes nothing at its first check, which has nothing to compare with', async () => {
    const policy = new IdleHzPolicy();
    assert.equal(await policy.next(activity(10, 5), noGroup, 0), undefined);
  });

  it('slows a server that received no connection and no command since the last check', async () => {
    const policy = new IdleHzPolicy();
    await policy.next(activity(10, 5, [40]), noGroup, 0);
    assert.equal(await policy.next(activity(10, 5, [50]), noGroup, 10_000), idleHz);
    // already slow: nothing to send
    assert.equal(await policy.next(activity(idleHz, 5, [60]), noGroup, 20_000), undefined);
  });

  it('gives the standard rate back to a server a tenant used since the last check', async () => {
    const policy = new IdleHzPolicy();
    await policy.next(activity(idleHz, 5), noGroup, 0);
    // a connection opened and closed between two checks
    assert.equal(await policy.next(activity(idleHz, 6), noGroup, 10_000), 10);
    const kept = new IdleHzPolicy();
    await kept.next(activity(idleHz, 5, [100]), noGroup, 0);
    // a kept connection that sent a command 3 s ago
    assert.equal(await kept.next(activity(idleHz, 5, [3]), noGroup, 10_000), 10);
    // one that has been quiet since before the last check keeps nothing awake
    assert.equal(await kept.next(activity(10, 5, [13]), noGroup, 20_000), idleHz);
  });

  it('takes a connection used within the last second as used, however close the two checks were', async () => {
    const policy = new IdleHzPolicy();
    await policy.next(activity(idleHz, 5, [30]), noGroup, 1_000);
    // a command sent between two checks in the same millisecond: CLIENT LIST says idle 0
    assert.equal(await policy.next(activity(idleHz, 5, [0]), noGroup, 1_000), 10);
    const close = new IdleHzPolicy();
    await close.next(activity(10, 5, [30]), noGroup, 1_000);
    assert.equal(await close.next(activity(10, 5, [0]), noGroup, 1_300), undefined, 'used: the standard rate stays');
    // a second quiet since the last check: idle 1 is before it
    assert.equal(await close.next(activity(10, 5, [1]), noGroup, 1_500), idleHz);
  });

  it('leaves a rate somebody else set while the server is used', async () => {
    const policy = new IdleHzPolicy();
    await policy.next(activity(50, 5), noGroup, 0);
    assert.equal(await policy.next(activity(50, 6), noGroup, 10_000), undefined);
  });

  it("never changes a configuration group's hz, and reads the group only when a change is due", async () => {
    let asked = 0;
    const group = async () => {
      asked += 1;
      return 25;
    };
    const policy = new IdleHzPolicy();
    await policy.next(activity(25, 5), group, 0);
    assert.equal(await policy.next(activity(25, 5), group, 10_000), undefined);
    assert.equal(asked, 1);
    assert.equal(await policy.next(activity(25, 6), group, 20_000), undefined);
    assert.equal(asked, 1, 'a used server at a rate not the idle one is left alone without reading the spec');
  });
});
