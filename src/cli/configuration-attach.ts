import type { ApiClient } from './api-client.js';
import type { ConfigurationGroupView, ConfigurationValue, InstanceView } from './api-types.js';
import { ApiError, CliError } from './cli-error.js';
import type { CliIo } from './cli-io.js';
import { renderChanges, restartNames, valuesDiff, type ValueChange } from './configuration-diff.js';
import { findConfiguration, getConfiguration, groupParametersIfKnown, groupPath } from './configuration-lookup.js';
import { runInstanceAction, type WaitFlags } from './instance-action-commands.js';
import { findInstance, getInstance } from './instance-lookup.js';
import { faultText, stateText, waitForInstance } from './instance-wait.js';
import { listAll } from './list-all.js';
import { openSession } from './session.js';

// Attaching and detaching a group (Trove's PUT /instances/{id} with `configuration`), and
// following the instances a group update reaches: each says what changes, waits for the task,
// then tells whether the instance waits for a restart and the command that does it.

/** What to do once a change reached an instance: nothing, or the restart it waits for. */
export function restartAdvice(instance: InstanceView, restartRef: string, restartKeys: readonly string[]): string {
  if (instance.status !== 'RESTART_REQUIRED') return `The change is live on ${instance.name}; no restart is needed.\n`;
  const which = restartKeys.length === 0 ? 'The change takes' : `${restartKeys.join(', ')} ${restartKeys.length === 1 ? 'takes' : 'take'}`;
  return `${instance.name} is RESTART_REQUIRED: ${which} effect when the engine restarts. Restart it with:\n  coffer instance restart ${restartRef}\n`;
}

function hasConfiguration(instance: InstanceView): boolean {
  return instance.configuration !== undefined && instance.configuration !== null;
}

/**
 * What the instance's engine runs with now (GET /instances/{id}/configuration), so attach can
 * say `old → new`; undefined when the API cannot tell, and attach then shows only the new values.
 */
async function effectiveConfiguration(client: ApiClient, id: string): Promise<Record<string, ConfigurationValue> | undefined> {
  try {
    const body = await client.getMember<{ configuration?: Record<string, ConfigurationValue> }>(
      `/instances/${encodeURIComponent(id)}/configuration`,
      'instance',
    );
    return body.configuration;
  } catch (err) {
    if (err instanceof CliError) return undefined;
    throw err;
  }
}

function changesText(heading: string, changes: readonly ValueChange[]): string {
  return `${heading}\n${changes.length === 0 ? '  (no value changes)\n' : renderChanges(changes)}`;
}

export async function attachConfiguration(io: CliIo, instanceRef: string, groupRef: string, flags: WaitFlags): Promise<void> {
  const client = await openSession(io);
  const instance = await findInstance(client, instanceRef);
  if (hasConfiguration(instance)) {
    const current = instance.configuration?.name ?? instance.configuration?.id;
    throw new CliError(
      `${instance.name} already has configuration group ${current} attached.`,
      `An instance has one group at a time: \`coffer configuration detach ${instanceRef}\` first.`,
    );
  }
  const group = await findConfiguration(client, groupRef);
  refuseOtherVersion(instance, group);
  const { parameters } = await groupParametersIfKnown(client, group);
  const changes = valuesDiff((await effectiveConfiguration(client, instance.id)) ?? {}, group.values ?? {}, parameters, { removals: false });
  // With --json, stdout is the instance's JSON alone.
  const notes = flags.json === true ? io.stderr : io.stdout;
  const after = await runInstanceAction(io, instance.id, flags, () => ({
    doing: `Attaching ${group.name} to ${instance.name}`,
    what: 'Configuration change',
    send: async (c) => {
      await sendConfiguration(c, instance, group.id, group);
      notes.write(changesText(`Attaching configuration group ${group.name} to ${instance.name}:`, changes));
    },
    done: (now) => (now.configuration?.id === group.id ? `Configuration group ${group.name} is attached to ${instance.name}.` : undefined),
  }));
  if (after !== undefined) io.stdout.write(restartAdvice(after, instanceRef, restartNames(changes)));
}

/** Trove attaches a group only to instances of its datastore version: say which group would fit. */
function refuseOtherVersion(instance: InstanceView, group: ConfigurationGroupView): void {
  const datastore = instance.datastore?.type ?? undefined;
  const version = instance.datastore?.version ?? undefined;
  if (datastore === undefined || version === undefined || group.datastore_name === undefined || group.datastore_version_name === undefined) return;
  if (datastore === group.datastore_name && version === group.datastore_version_name) return;
  throw new CliError(
    `${group.name} is for ${group.datastore_name} ${group.datastore_version_name}; ${instance.name} runs ${datastore} ${version}.`,
    `Create a group for it with \`coffer configuration create <name> --datastore ${datastore} --datastore-version ${version} --set ...\`.`,
  );
}

export async function detachConfiguration(io: CliIo, instanceRef: string, flags: WaitFlags): Promise<void> {
  const client = await openSession(io);
  const instance = await findInstance(client, instanceRef);
  const attached = instance.configuration?.id;
  if (attached === undefined || attached === null) {
    io.stdout.write(`${instance.name} has no configuration group attached: nothing to detach.\n`);
    return;
  }
  const group = await getConfiguration(client, attached);
  const name = group?.name ?? instance.configuration?.name ?? attached;
  const { parameters } = group === undefined ? { parameters: [] } : await groupParametersIfKnown(client, group);
  const changes = valuesDiff(group?.values ?? {}, {}, parameters, { removals: true });
  const notes = flags.json === true ? io.stderr : io.stdout;
  const after = await runInstanceAction(io, instance.id, flags, () => ({
    doing: `Detaching ${name} from ${instance.name}`,
    what: 'Configuration change',
    send: async (c) => {
      await sendConfiguration(c, instance, null, group);
      notes.write(changesText(`Detaching configuration group ${name} from ${instance.name}:`, changes));
    },
    done: (now) => (hasConfiguration(now) ? undefined : `Configuration group ${name} is detached from ${instance.name}.`),
  }));
  if (after !== undefined) io.stdout.write(restartAdvice(after, instanceRef, restartNames(changes)));
}

async function sendConfiguration(
  client: ApiClient,
  instance: InstanceView,
  configuration: string | null,
  group: ConfigurationGroupView | undefined,
): Promise<void> {
  try {
    await client.request('PUT', `/instances/${encodeURIComponent(instance.id)}`, { instance: { configuration } });
  } catch (err) {
    if (!(err instanceof ApiError) || err.hint !== undefined || err.status !== 400) throw err;
    // Trove's 400s here: the instance is busy, or the group is for another datastore version.
    const hint = /datastore/i.test(err.message)
      ? `${group?.name ?? 'The group'} is for ${group?.datastore_name ?? '?'} ${group?.datastore_version_name ?? '?'}; ` +
        `create one for ${instance.datastore?.type ?? '?'} ${instance.datastore?.version ?? '?'} with \`coffer configuration create\`.`
      : `Wait until \`coffer instance show ${instance.id}\` says ACTIVE / HEALTHY, then try again.`;
    throw new ApiError(err.status, err.message, hint);
  }
}

interface AttachedInstance {
  id: string;
  name: string;
}

export function attachedInstances(client: ApiClient, group: ConfigurationGroupView): Promise<AttachedInstance[]> {
  return listAll<AttachedInstance>(client, `${groupPath(group.id)}/instances`, 'instances');
}

/** The instances a group update reaches, as they were before it: their faults tell a failed apply. */
export async function instancesBefore(client: ApiClient, group: ConfigurationGroupView): Promise<InstanceView[]> {
  const attached = await attachedInstances(client, group);
  const views = await Promise.all(attached.map((a) => getInstance(client, a.id)));
  return views.filter((v): v is InstanceView => v !== undefined);
}

function faultKey(instance: InstanceView): string {
  return instance.fault === undefined ? '' : `${instance.fault.created ?? ''} ${instance.fault.message}`;
}

/**
 * After a group update: waits for each attached instance's task to end and says, per instance,
 * whether the new values are live or wait for a restart. An instance whose engine refused the
 * values (back on its old ones, with a new fault) makes the command fail.
 */
export async function followAttached(
  io: CliIo,
  client: ApiClient,
  before: readonly InstanceView[],
  changes: readonly ValueChange[],
  flags: { wait: boolean; timeout: number },
): Promise<void> {
  if (before.length === 0) return;
  const names = before.map((i) => i.name).join(', ');
  if (!flags.wait) {
    io.stdout.write(`The change is being applied to ${names}. Follow it with \`coffer instance show <instance>\`.\n`);
    return;
  }
  const failures: string[] = [];
  for (const instance of before) {
    const result = await waitForInstance(io, client, instance.id, { goal: 'settled', label: `Applying to ${instance.name}`, timeoutSeconds: flags.timeout });
    switch (result.outcome) {
      case 'active':
      case 'settled':
        if (faultKey(result.instance) !== faultKey(instance)) {
          failures.push(`${instance.name} (${instance.id}): ${faultText(result.instance)}`);
        } else {
          io.stdout.write(restartAdvice(result.instance, instance.id, restartNames(changes)));
        }
        break;
      case 'error':
        failures.push(`${instance.name} (${instance.id}): ${faultText(result.instance)}`);
        break;
      case 'gone':
        break;
      case 'timeout':
        failures.push(`${instance.name} (${instance.id}) is still busy after ${flags.timeout} s${result.last === undefined ? '' : ` (${stateText(result.last)})`}`);
        break;
    }
  }
  if (failures.length > 0) {
    throw new CliError(
      `The group changed, but not every instance took the new values:\n  ${failures.join('\n  ')}`,
      'An instance whose engine refused a value keeps its previous values; change the value with `coffer configuration update`, or see `coffer instance show <instance>`.',
    );
  }
}
