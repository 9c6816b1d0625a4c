import type { Command } from 'commander';
import type { ConfigurationGroupView, ConfigurationValues } from './api-types.js';
import { ApiError, CliError } from './cli-error.js';
import type { CliIo } from './cli-io.js';
import { runAction } from './command-runner.js';
import { attachConfiguration, attachedInstances, detachConfiguration, followAttached, instancesBefore } from './configuration-attach.js';
import { renderChanges, restartNames, valuesDiff } from './configuration-diff.js';
import { groupFields, groupListHead, groupListRow, isSecretName, maskedGroup, secretMask, valueRows, valuesHead } from './configuration-format.js';
import { givenValues } from './configuration-input.js';
import {
  findConfiguration,
  groupParameters,
  groupParametersIfKnown,
  groupPath,
  listConfigurations,
  resolveDatastoreVersion,
  versionParameters,
  type ParameterSet,
} from './configuration-lookup.js';
import { withWaitOptions, type WaitFlags } from './instance-action-commands.js';
import { collect, positiveSeconds } from './option-parsers.js';
import { openSession } from './session.js';
import { printJson, renderFields, renderTable } from './table-format.js';

// `coffer configuration ...`: Trove's configuration groups, named sets of engine settings that
// instances of one datastore version take when a group is attached to them.

const defaultTimeoutSeconds = 300;

interface ValueFlags {
  values?: string;
  set?: string[];
}

function withValueOptions(command: Command): Command {
  return command
    .option('--values <json>', 'values as a JSON object, typed as the parameter list says, e.g. \'{"max_connections": 200}\'')
    .option('--set <name=value>', 'set one parameter (repeatable); the value is read as the type the parameter takes', collect);
}

/** A 422 from the API about values: where the allowed values are listed. */
async function withValuesHint<T>(set: ParameterSet, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof ApiError && err.status === 422 && err.hint === undefined) {
      throw new ApiError(err.status, err.message, `\`${set.listCommand}\` lists the parameters, their types and ranges.`);
    }
    throw err;
  }
}

function showGroup(io: CliIo, group: ConfigurationGroupView, set: ParameterSet): void {
  io.stdout.write(renderFields(groupFields(group)));
  const values = group.values ?? {};
  io.stdout.write(Object.keys(values).length === 0 ? 'No values.\n' : renderTable(valuesHead, valueRows(values, set.parameters)));
}

export function registerConfigurationCommands(program: Command, io: CliIo): void {
  const configuration = program
    .command('configuration')
    .description('Configuration groups: engine settings (parameters) that instances of one datastore version take');

  withValueOptions(
    configuration
      .command('create <name>')
      .description('Create a configuration group for a datastore version (see `coffer datastore parameters` for what it may set)')
      .requiredOption('--datastore <type>', 'the engine, e.g. postgresql (see `coffer datastore list`)')
      .option('--datastore-version <version>', "the engine version (default: the datastore's default)"),
  )
    .option('--description <text>', 'what the group is for')
    .option('--json', 'print the API object as JSON')
    .action((name: string, flags: ValueFlags & { datastore: string; datastoreVersion?: string; description?: string; json?: boolean }) =>
      runAction(io, async () => {
        const client = await openSession(io);
        const { datastore, version } = await resolveDatastoreVersion(client, flags.datastore, flags.datastoreVersion);
        const set = await versionParameters(client, datastore.name, version.name);
        const values = givenValues(set, flags.values, flags.set);
        const body = {
          configuration: {
            name,
            values,
            datastore: { type: datastore.name, version: version.name },
            ...(flags.description === undefined ? {} : { description: flags.description }),
          },
        };
        const created = await withValuesHint(set, () => client.postMember<ConfigurationGroupView>('/configurations', 'configuration', body));
        if (flags.json === true) return printJson(io.stdout, maskedGroup(created));
        io.stdout.write(`Created configuration group ${created.name} (${created.id}) for ${set.label}.\n`);
        showGroup(io, created, set);
        io.stdout.write(`Attach it with \`coffer configuration attach <instance> ${created.name}\`.\n`);
      }),
    );

  configuration
    .command('list')
    .description('List your configuration groups')
    .option('--json', 'print the API objects as JSON')
    .action((flags: { json?: boolean }) =>
      runAction(io, async () => {
        const groups = await listConfigurations(await openSession(io));
        if (flags.json === true) return printJson(io.stdout, groups.map(maskedGroup));
        if (groups.length === 0) {
          io.stdout.write('No configuration groups. Create one with `coffer configuration create`.\n');
          return;
        }
        io.stdout.write(renderTable(groupListHead, groups.map(groupListRow)));
      }),
    );

  configuration
    .command('show <group>')
    .description('Show a configuration group (by ID or name) and its values; those of parameters named *password* are never shown')
    .option('--json', 'print the API object as JSON')
    .action((ref: string, flags: { json?: boolean }) =>
      runAction(io, async () => {
        const client = await openSession(io);
        const group = await findConfiguration(client, ref);
        if (flags.json === true) return printJson(io.stdout, maskedGroup(group));
        showGroup(io, group, await groupParametersIfKnown(client, group));
      }),
    );

  withValueOptions(
    configuration
      .command('update <group>')
      .description(
        'Change a group\'s values: --set/--values add or change the names given and keep the others, --unset removes one, ' +
          '--replace makes the given values the whole set. Prints what changes, then follows every attached instance',
      ),
  )
    .option('--unset <name>', 'remove a parameter from the group (repeatable); the engine default applies again', collect)
    .option('--replace', 'the given values replace all of the group\'s values (those not given are removed)')
    .option('--name <name>', 'rename the group')
    .option('--description <text>', "change the group's description")
    .option('--no-wait', 'return once the API accepted the change')
    .option('--timeout <seconds>', 'how long to wait for each attached instance', positiveSeconds, defaultTimeoutSeconds)
    .action((ref: string, flags: UpdateFlags) => runAction(io, () => updateConfiguration(io, ref, flags)));

  configuration
    .command('delete <group>')
    .description('Delete a configuration group; it must be detached from every instance first')
    .action((ref: string) =>
      runAction(io, async () => {
        const client = await openSession(io);
        const group = await findConfiguration(client, ref);
        try {
          await client.delete(groupPath(group.id));
        } catch (err) {
          if (!(err instanceof ApiError) || err.status !== 400 || err.hint !== undefined) throw err;
          throw new ApiError(
            err.status,
            err.message,
            `\`coffer configuration instances ${ref}\` lists them; detach it from each with \`coffer configuration detach <instance>\`.`,
          );
        }
        io.stdout.write(`Deleted configuration group ${group.name} (${group.id}).\n`);
      }),
    );

  configuration
    .command('instances <group>')
    .description('List the instances a configuration group is attached to')
    .option('--json', 'print the API objects as JSON')
    .action((ref: string, flags: { json?: boolean }) =>
      runAction(io, async () => {
        const client = await openSession(io);
        const group = await findConfiguration(client, ref);
        const instances = await attachedInstances(client, group);
        if (flags.json === true) return printJson(io.stdout, instances);
        if (instances.length === 0) {
          io.stdout.write(`No instance uses ${group.name}. Attach it with \`coffer configuration attach <instance> ${ref}\`.\n`);
          return;
        }
        io.stdout.write(renderTable(['ID', 'Name'], instances.map((i) => [i.id, i.name])));
      }),
    );

  withWaitOptions(
    configuration
      .command('attach <instance> <group>')
      .description(
        "Attach a configuration group to an instance (both by ID or name): prints what changes, waits, and says if the engine needs a restart",
      ),
  ).action((instance: string, group: string, flags: WaitFlags) => runAction(io, () => attachConfiguration(io, instance, group, flags)));

  withWaitOptions(
    configuration
      .command('detach <instance>')
      .description("Detach an instance's configuration group (engine defaults again): prints what changes, waits, and says if the engine needs a restart"),
  ).action((instance: string, flags: WaitFlags) => runAction(io, () => detachConfiguration(io, instance, flags)));
}

interface UpdateFlags extends ValueFlags {
  unset?: string[];
  replace?: boolean;
  name?: string;
  description?: string;
  wait: boolean;
  timeout: number;
}

/** `--unset` names as the group spells them; a name the group does not hold is a typo worth stopping for. */
function unsetNames(group: ConfigurationGroupView, names: readonly string[]): string[] {
  const held = Object.keys(group.values ?? {});
  return names.map((name) => {
    const found = held.find((h) => h.toLowerCase() === name.toLowerCase());
    if (found === undefined) {
      throw new CliError(
        `${group.name} does not set ${name}: nothing to unset.`,
        held.length === 0 ? `${group.name} has no values.` : `It sets ${held.sort().join(', ')}.`,
      );
    }
    return found;
  });
}

async function updateConfiguration(io: CliIo, ref: string, flags: UpdateFlags): Promise<void> {
  const unset = flags.unset ?? [];
  const asked = [flags.values, flags.set, flags.unset, flags.replace, flags.name, flags.description];
  if (asked.every((flag) => flag === undefined)) {
    throw new CliError('Nothing to update.', 'Give --set, --values, --unset, --replace, --name or --description.');
  }
  if (flags.replace === true && unset.length > 0) {
    throw new CliError('Give --unset or --replace, not both.', 'With --replace, the values given are the whole set: leave out what should go.');
  }
  const client = await openSession(io);
  const group = await findConfiguration(client, ref);
  const set = await groupParameters(client, group);
  const given = givenValues(set, flags.values, flags.set);
  const removed = new Set(unsetNames(group, unset));
  for (const name of removed) {
    if (Object.hasOwn(given, name)) throw new CliError(`${name} is both set and unset.`, 'Give it once.');
  }
  const current = group.values ?? {};
  const next: ConfigurationValues =
    flags.replace === true ? given : { ...Object.fromEntries(Object.entries(current).filter(([name]) => !removed.has(name))), ...given };
  const changes = valuesDiff(current, next, set.parameters, { given: new Set(Object.keys(given)), removals: true });
  const renamed = flags.name !== undefined && flags.name !== group.name;
  const redescribed = flags.description !== undefined && flags.description !== (group.description ?? '');
  if (changes.length === 0 && !renamed && !redescribed) {
    io.stdout.write(`Nothing changes: ${group.name} already has these values.\n`);
    return;
  }
  // Trove's PATCH adds and changes values and keeps the rest: the one request that cannot lose a
  // value. Removing one, or a new name or description, takes PUT, which replaces the whole set.
  const patch = flags.replace !== true && removed.size === 0 && flags.name === undefined && flags.description === undefined;
  if (!patch) refuseLosingSecrets(group, next, given);
  const before = await instancesBefore(client, group);
  const body = patch
    ? { configuration: { values: given } }
    : {
        configuration: {
          values: next,
          ...(flags.name === undefined ? {} : { name: flags.name }),
          ...(flags.description === undefined ? {} : { description: flags.description }),
        },
      };
  await withValuesHint(set, () => client.request(patch ? 'PATCH' : 'PUT', groupPath(group.id), body));
  const name = flags.name ?? group.name;
  const renamedText = renamed ? `, renamed from ${group.name}` : '';
  io.stdout.write(`Updated configuration group ${name} (${group.id})${renamedText}${changes.length === 0 ? '.' : ':'}\n`);
  if (changes.length === 0) return;
  io.stdout.write(renderChanges(changes));
  const restartKeys = restartNames(changes);
  if (before.length === 0 && restartKeys.length > 0) {
    io.stdout.write(`No instance uses ${name} yet; ${restartKeys.join(', ')} will take a restart once it is attached.\n`);
  }
  await followAttached(io, client, before, changes, flags);
}

/**
 * The API masks secret values as `***`, so a PUT of the values as read would store `***` as the
 * password. Such a value must be given again (or dropped) for a PUT.
 */
function refuseLosingSecrets(group: ConfigurationGroupView, next: ConfigurationValues, given: ConfigurationValues): void {
  const lost = Object.keys(next).filter((name) => isSecretName(name) && !Object.hasOwn(given, name) && next[name] === secretMask);
  if (lost.length === 0) return;
  throw new CliError(
    `${group.name} holds ${lost.join(', ')}, which the API does not show, and this change rewrites the whole group.`,
    `Give ${lost.length === 1 ? 'it' : 'them'} again with ${lost.map((n) => `--set ${n}=...`).join(' ')}, or add and change values without --unset, --replace, --name or --description.`,
  );
}
