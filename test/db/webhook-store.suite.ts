import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { webhookEventTypes, type StateStore, type WebhookRow } from '../../src/db/index.js';
import { at, instance, uid } from './state-store-fixtures.js';

// Webhooks and their delivery log, part of the state-store suite: deliveries are made as events
// are recorded, and several taskmanagers take a due delivery by a guarded UPDATE that exactly one
// of them wins on every engine.

function hook(tenantId: string, overrides: Partial<WebhookRow> = {}): WebhookRow {
  return { id: uid(), tenantId, url: 'https://hooks.example/coffer', secret: `secret-${uid()}`, events: null, createdAt: at.leapDay, ...overrides };
}

export function webhookStoreTests(store: () => StateStore): void {
  describe('webhooks', () => {
    it('creates, shows (scoped to its project), lists oldest first and deletes a hook', async () => {
      const tenantId = `tenant-${uid()}`;
      const first = hook(tenantId, { events: [webhookEventTypes.status] });
      const second = hook(tenantId, { createdAt: at.dstSwitch });
      await store().webhooks.create(second);
      await store().webhooks.create(first);
      assert.deepEqual(await store().webhooks.get(first.id), first);
      assert.deepEqual(await store().webhooks.get(first.id, { tenantId }), first);
      assert.equal(await store().webhooks.get(first.id, { tenantId: `tenant-${uid()}` }), undefined);
      assert.deepEqual(await store().webhooks.list(tenantId), [first, second]);
      assert.equal(await store().webhooks.delete(first.id), true);
      assert.equal(await store().webhooks.delete(first.id), false);
      assert.deepEqual(await store().webhooks.list(tenantId), [second]);
    });

    it("records a pending delivery for each hook of the instance's project that takes the event, from its creation on", async () => {
      const i = instance({ name: 'orders-db' });
      await store().instances.create(i);
      const all = hook(i.tenantId);
      const tasksOnly = hook(i.tenantId, { events: [webhookEventTypes['task.failed']] });
      const otherProject = hook(`tenant-${uid()}`);
      for (const h of [all, tasksOnly, otherProject]) await store().webhooks.create(h);
      await store().instanceEvents.record({ instanceId: i.id, type: 'status', name: 'RUNNING', message: null, createdAt: at.dstSwitch });
      const late = hook(i.tenantId);
      await store().webhooks.create(late);
      await store().instanceEvents.record({ instanceId: i.id, type: 'task.failed', name: 'restart', message: 'the engine did not start', createdAt: at.past2038 });

      const [event1, event2] = (await store().instanceEvents.list(i.id, { limit: 10 })).reverse();
      const forAll = await store().webhooks.deliveries(all.id, 10);
      assert.deepEqual(forAll.map((d) => [d.eventId, d.eventType, d.eventName, d.state, d.attempts]).sort(), [
        [event1!.id, 'org.coffer.instance.status', 'RUNNING', 'pending', 0],
        [event2!.id, 'org.coffer.instance.task.failed', 'restart', 'pending', 0],
      ].sort());
      const failed = forAll.find((d) => d.eventId === event2!.id)!;
      assert.equal(failed.instanceName, 'orders-db');
      assert.equal(failed.message, 'the engine did not start');
      assert.deepEqual(failed.eventTime, at.past2038);
      assert.deepEqual((await store().webhooks.deliveries(tasksOnly.id, 10)).map((d) => d.eventId), [event2!.id]);
      assert.deepEqual((await store().webhooks.deliveries(late.id, 10)).map((d) => d.eventId), [event2!.id], 'not the event older than the hook');
      assert.deepEqual(await store().webhooks.deliveries(otherProject.id, 10), []);
      const scratch = instance({ tenantId: i.tenantId, internal: true });
      await store().instances.create(scratch);
      await store().instanceEvents.record({ instanceId: scratch.id, type: 'status', name: 'RUNNING', message: null, createdAt: at.past2038 });
      assert.equal((await store().webhooks.deliveries(all.id, 10)).length, 2, "Coffer's internal instances are not the project's to hear of");
      await store().webhooks.delete(all.id);
      assert.deepEqual(await store().webhooks.deliveries(all.id, 10), [], 'a deleted hook takes its log with it');
    });

    it('lets exactly one of several claimers take a due delivery, and takes it again once its lease ran out', async () => {
      const i = instance();
      await store().instances.create(i);
      const h = hook(i.tenantId);
      await store().webhooks.create(h);
      await store().instanceEvents.record({ instanceId: i.id, type: 'status', name: 'RUNNING', message: null, createdAt: new Date() });
      const now = new Date(Date.now() + 1000);
      const due = (await store().webhooks.listDue(now, 1000)).filter((d) => d.webhookId === h.id);
      assert.equal(due.length, 1);
      assert.equal(due[0]!.url, h.url);
      assert.equal(due[0]!.secret, h.secret);
      assert.equal(due[0]!.tenantId, i.tenantId);
      const id = due[0]!.id;
      const wins = await Promise.all(['tm-1', 'tm-2', 'tm-3', 'tm-4'].map((owner) => store().webhooks.claim(id, owner, 60_000, now)));
      assert.equal(wins.filter(Boolean).length, 1);
      assert.equal((await store().webhooks.listDue(now, 1000)).some((d) => d.id === id), false, 'a leased delivery is not due');
      const later = new Date(now.getTime() + 61_000);
      assert.equal(await store().webhooks.claim(id, 'tm-5', 60_000, later), true, 'the lease ran out');
      const winner = ['tm-1', 'tm-2', 'tm-3', 'tm-4'][wins.indexOf(true)]!;
      assert.equal(await store().webhooks.recordAttempt(id, winner, { state: 'pending', statusCode: 500, error: 'answered 500', nextAttemptAt: later }, later), false, 'it lost the lease');

      const retryAt = new Date(later.getTime() + 20_000);
      assert.equal(await store().webhooks.recordAttempt(id, 'tm-5', { state: 'pending', statusCode: 500, error: 'answered 500', nextAttemptAt: retryAt }, later), true);
      assert.equal((await store().webhooks.listDue(later, 1000)).some((d) => d.id === id), false, 'not due before its retry time');
      assert.equal(await store().webhooks.claim(id, 'tm-1', 60_000, retryAt), true);
      assert.equal(await store().webhooks.recordAttempt(id, 'tm-1', { state: 'delivered', statusCode: 204, error: null, nextAttemptAt: retryAt }, retryAt), true);
      const [delivered] = await store().webhooks.deliveries(h.id, 10);
      assert.equal(delivered!.state, 'delivered');
      assert.equal(delivered!.attempts, 2);
      assert.equal(delivered!.lastStatusCode, 204);
      assert.equal(delivered!.lastError, null);
      assert.deepEqual(delivered!.deliveredAt, retryAt);
      assert.equal(await store().webhooks.claim(id, 'tm-2', 60_000, new Date(retryAt.getTime() + 3_600_000)), false, 'a delivered one is never taken again');
    });
  });
}
