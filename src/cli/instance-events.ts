import type { ApiClient } from './api-client.js';
import type { CliIo } from './cli-io.js';
import { timestampText } from './instance-format.js';
import { findInstance } from './instance-lookup.js';
import { openSession } from './session.js';
import { printJson, renderTable } from './table-format.js';

// `coffer instance events`: what happened to an instance (Coffer's GET /instances/{id}/events),
// the newest `limit` of it, printed oldest first so that it reads as a story.

export interface InstanceEventView {
  id: string;
  type: string;
  name: string;
  message: string | null;
  created: string;
}

export interface EventsOptions {
  limit: number;
  json?: boolean;
}

const eventText: Record<string, (name: string) => string> = {
  status: (name) => `status ${name}`,
  'task.started': (name) => `${name} started`,
  'task.done': (name) => `${name} done`,
  'task.failed': (name) => `${name} failed`,
  'backup.completed': (name) => `backup ${name} completed`,
  'backup.failed': (name) => `backup ${name} failed`,
  'replication.promoted': (name) => `${name} promoted to primary`,
  'replication.failover': (name) => `failover to ${name}`,
  'replication.rejoined': (name) => `rejoined as a replica of ${name}`,
};

export async function listInstanceEvents(client: ApiClient, instanceId: string, limit: number): Promise<InstanceEventView[]> {
  const events: InstanceEventView[] = [];
  let marker: string | undefined;
  while (events.length < limit) {
    const query = new URLSearchParams({ limit: String(limit - events.length), ...(marker === undefined ? {} : { marker }) });
    const body = await client.get<{ events?: InstanceEventView[]; links?: unknown[] }>(`/instances/${encodeURIComponent(instanceId)}/events?${query}`);
    const page = body?.events ?? [];
    events.push(...page);
    if (page.length === 0 || body?.links === undefined) break;
    marker = page.at(-1)!.id;
  }
  return events;
}

export async function showInstanceEvents(io: CliIo, idOrName: string, options: EventsOptions): Promise<void> {
  const client = await openSession(io);
  const { id, name } = await findInstance(client, idOrName);
  const events = await listInstanceEvents(client, id, options.limit);
  if (options.json === true) return printJson(io.stdout, events);
  if (events.length === 0) {
    io.stdout.write(`No events for ${name} yet.\n`);
    return;
  }
  const rows = events
    .reverse()
    .map((event) => [timestampText(event.created), (eventText[event.type] ?? ((n: string) => `${event.type} ${n}`))(event.name), event.message ?? '']);
  io.stdout.write(renderTable(['TIME', 'EVENT', 'DETAIL'], rows));
}
