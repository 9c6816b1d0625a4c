import type { InstanceEventType } from './state-store.js';

/**
 * The CloudEvents `type` of each instance event a webhook receives: what a hook's `events` filter
 * names and what its receiver switches on. Adding an instance event type without naming it here
 * does not compile.
 */
export const webhookEventTypes: Readonly<Record<InstanceEventType, string>> = Object.freeze({
  status: 'org.coffer.instance.status',
  warning: 'org.coffer.instance.warning',
  'task.started': 'org.coffer.instance.task.started',
  'task.done': 'org.coffer.instance.task.done',
  'task.failed': 'org.coffer.instance.task.failed',
  'backup.completed': 'org.coffer.instance.backup.completed',
  'backup.failed': 'org.coffer.instance.backup.failed',
  'replication.promoted': 'org.coffer.instance.replication.promoted',
  'replication.failover': 'org.coffer.instance.replication.failover',
  'replication.rejoined': 'org.coffer.instance.replication.rejoined',
});

export const webhookEventTypeNames: readonly string[] = Object.freeze(Object.values(webhookEventTypes));
