import { InvalidArgumentError, type Command } from 'commander';
import type { ApiClient } from './api-client.js';
import type { InstanceView, ReplicationView } from './api-types.js';
import { ApiError } from './cli-error.js';
import type { CliIo } from './cli-io.js';
import { runAction } from './command-runner.js';
import { findInstance, listInstances } from './instance-lookup.js';
import { openSession } from './session.js';
import { printJson, renderFields, renderTable, type Cell } from './table-format.js';

// `coffer instance replication`: Coffer's GET /instances/{id}/replication as tables (the
// instance's role, its group's settings, where its engine's log stands, and each replica's
// streaming and lag as the engines say now), after PATCHing the group's settings when
// --failover or --synchronous is given.

interface ReplicationFlags {
  failover?: boolean;
  synchronous?: boolean;
  json?: boolean;
}

function onOff(value: string): boolean {
  if (value === 'on') return true;
  if (value === 'off') return false;
  throw new InvalidArgumentError('Expected on or off.');
}

const onOffText = (value: boolean | undefined) => (value === undefined ? undefined : value ? 'on' : 'off');
const yesNo = (value: boolean) => (value ? 'yes' : 'no');

function lagText(bytes: number | null, seconds: number | null): string | undefined {
  const parts = [bytes === null ? undefined : `${bytes} bytes`, seconds === null ? undefined : `${seconds} s`].filter((p) => p !== undefined);
  return parts.length === 0 ? undefined : parts.join(', ');
}

function replicationPath(id: string): string {
  return `/instances/${encodeURIComponent(id)}/replication`;
}

async function changeSettings(client: ApiClient, instance: InstanceView, settings: { failover?: boolean; synchronous?: boolean }): Promise<ReplicationView> {
  const { id, name } = instance;
  try {
    const body = (await client.request('PATCH', replicationPath(id), { replication: settings })).body as { replication?: ReplicationView } | undefined;
    if (body?.replication !== undefined) return body.replication;
  } catch (err) {
    if (err instanceof ApiError && instance.replica_of !== undefined && /is a replica of/.test(err.message)) {
      const flags = Object.entries(settings).map(([key, value]) => `--${key} ${onOffText(value)}`).join(' ');
      throw new ApiError(err.status, err.message, `Run \`coffer instance replication ${instance.replica_of.id} ${flags}\`.`);
    }
    if (err instanceof ApiError && /has no replicas/.test(err.message)) {
      throw new ApiError(err.status, err.message, `Add one with \`coffer instance create ${name}-replica --replica-of ${name}\`.`);
    }
    throw err;
  }
  return client.getMember<ReplicationView>(replicationPath(id), 'replication');
}

function groupFields(instance: InstanceView, view: ReplicationView, names: ReadonlyMap<string, string>): Array<[string, Cell]> {
  const named = (id: string | null) => (id === null ? undefined : names.has(id) ? `${names.get(id)} (${id})` : id);
  const head: Array<[string, Cell]> = [
    ['Instance', `${instance.name} (${instance.id})`],
    ['Role', view.role === 'source' ? 'primary' : view.role],
  ];
  switch (view.role) {
    case 'standalone':
      return [...head, ['Failover', onOffText(view.failover)], ['Synchronous', onOffText(view.synchronous)]];
    case 'source':
      return [...head, ['Failover', onOffText(view.failover)], ['Synchronous', onOffText(view.synchronous)], ['Position', view.position]];
    case 'replica':
      return [
        ...head,
        ['Replica of', named(view.replica_of)],
        ['Streaming', yesNo(view.streaming)],
        ['Lag', lagText(view.lag_bytes, view.lag_seconds)],
        ['Position', view.position],
      ];
  }
}

/** What to do next, when the view alone leaves it open. */
function footnote(instance: InstanceView, view: ReplicationView): string {
  switch (view.role) {
    case 'standalone':
      return `${instance.name} has no replicas: add one with \`coffer instance create <name> --replica-of ${instance.name}\`.\n`;
    case 'replica':
      return `Failover and synchronous replication are its group's settings: see them on its primary, \`coffer instance replication ${view.replica_of ?? '<primary>'}\`.\n`;
    case 'source': {
      const streaming = new Set(view.replicas.filter((r) => r.streaming).map((r) => r.id));
      const members = new Set([...view.replicas.map((r) => r.id), ...(instance.replicas ?? []).map((r) => r.id)]);
      return [...members].some((id) => !streaming.has(id)) ? 'A replica that is not streaming cannot take over: `coffer instance events <replica>` may tell why.\n' : '';
    }
  }
}

async function showReplication(io: CliIo, idOrName: string, flags: ReplicationFlags): Promise<void> {
  const client = await openSession(io);
  const instance = await findInstance(client, idOrName);
  const settings = {
    ...(flags.failover === undefined ? {} : { failover: flags.failover }),
    ...(flags.synchronous === undefined ? {} : { synchronous: flags.synchronous }),
  };
  const changed = Object.keys(settings).length > 0;
  const view = changed ? await changeSettings(client, instance, settings) : await client.getMember<ReplicationView>(replicationPath(instance.id), 'replication');
  if (flags.json === true) return printJson(io.stdout, view);
  const names = new Map((await listInstances(client)).map((i) => [i.id, i.name]));
  if (changed) {
    const said = Object.entries(settings).map(([key, value]) => `${key} ${onOffText(value)}`).join(', ');
    io.stdout.write(`Replication of ${instance.name}'s group changed: ${said}.\n`);
  }
  io.stdout.write(renderFields(groupFields(instance, view, names)));
  if (view.role === 'source') {
    const rows: Cell[][] = view.replicas.map((r) => [r.id, names.get(r.id), yesNo(r.streaming), r.lag_bytes, r.lag_seconds]);
    // a member the engine does not know yet (a failed-over primary waiting for its host to rejoin)
    for (const member of instance.replicas ?? []) {
      if (!view.replicas.some((r) => r.id === member.id)) rows.push([member.id, names.get(member.id), 'no', null, null]);
    }
    if (rows.length > 0) io.stdout.write(renderTable(['Replica', 'Name', 'Streaming', 'Lag (bytes)', 'Lag (s)'], rows));
  }
  io.stdout.write(footnote(instance, view));
}

export function registerReplicationStatus(instance: Command, io: CliIo): void {
  instance
    .command('replication <id-or-name>')
    .description(
      "Show an instance's replication as its engine reports it now: its role, its group's failover and synchronous settings, its log position, and each replica's streaming and lag",
    )
    .option('--failover <on|off>', 'first turn automatic failover on or off for the group (on a primary; on by default)', onOff)
    .option('--synchronous <on|off>', 'first make commits wait until a replica holds them, or stop waiting (on a primary with replicas)', onOff)
    .option('--json', 'print the API object as JSON')
    .action((idOrName: string, flags: ReplicationFlags) => runAction(io, () => showReplication(io, idOrName, flags)));
}
