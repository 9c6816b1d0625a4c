import { InvalidArgumentError, type Command } from 'commander';
import type { ApiClient } from './api-client.js';
import { flavorId, type InstanceView } from './api-types.js';
import { CliError } from './cli-error.js';
import type { CliIo } from './cli-io.js';
import { runAction } from './command-runner.js';
import { loopbackLockoutWarning } from './access-warning.js';
import { resolveFlavor } from './flavor-commands.js';
import { findInstance } from './instance-lookup.js';
import { faultText, stateText, waitForInstance } from './instance-wait.js';
import { collect, positiveInteger, positiveSeconds } from './option-parsers.js';
import { openSession } from './session.js';
import { printJson } from './table-format.js';

// The instance actions (Trove's POST /instances/{id}/action, Coffer's stop and start, and PUT
// /instances/{id}): each sends its request, then follows the instance until its task ends,
// showing progress as create does.

const defaultTimeoutSeconds = 300;

export interface WaitFlags {
  wait: boolean;
  timeout: number;
  json?: boolean;
}

interface ActionSpec {
  /** progress label and messages: "Restarting mypg" */
  doing: string;
  /** what failed, in an error: "Restart" */
  what: string;
  send(client: ApiClient, instance: InstanceView): Promise<void>;
  /** the line printed once the task ended well; undefined when the instance shows the action failed */
  done(instance: InstanceView): string | undefined;
  /**
   * The action leaves a fault on the instance when it succeeds too (a failover's "replaced by"):
   * done() alone says whether it worked, instead of any new fault meaning it failed.
   */
  faultIsOutcome?: boolean;
  /** runs once the instance's task ended well, before its line is printed (the rest of a replication group settling) */
  afterwards?(client: ApiClient, instance: InstanceView): Promise<void>;
}

interface TlsFlags {
  requireTls?: boolean;
  allowPlaintext?: boolean;
}

/** Coffer's `tls.required`: one attribute of its own, as Trove's update takes one besides the name. */
async function updateTls(
  io: CliIo,
  idOrName: string,
  flags: WaitFlags & TlsFlags & UpdateFlags,
) {
  if (flags.requireTls === true && flags.allowPlaintext === true) throw new CliError('Give --require-tls or --allow-plaintext, not both.');
  if (flags.allowedCidr !== undefined || flags.public === true || flags.private === true) {
    throw new CliError('TLS and the access rules change one at a time.', 'Run `coffer instance update` once for each.');
  }
  const required = flags.requireTls === true;
  await runInstanceAction(io, idOrName, flags, ({ id, name }) => ({
    doing: required ? `Requiring TLS on ${name}` : `Allowing plaintext clients on ${name}`,
    what: 'TLS update',
    send: async (client) => {
      const rename = flags.name === undefined ? {} : { name: flags.name };
      await client.request('PUT', `/instances/${encodeURIComponent(id)}`, { instance: { ...rename, tls: { required } } });
    },
    done: (after) =>
      after.tls?.required === required
        ? `Instance ${after.name} ${required ? 'refuses clients without TLS' : 'accepts clients with or without TLS'}.`
        : undefined,
  }));
}

export function withWaitOptions(command: Command): Command {
  return command
    .option('--no-wait', 'return once the API accepted the request')
    .option('--timeout <seconds>', 'how long to wait for the action to end', positiveSeconds, defaultTimeoutSeconds)
    .option('--json', 'print the API object as JSON once the action ended');
}

export function actionPath(id: string): string {
  return `/instances/${encodeURIComponent(id)}/action`;
}

export function faultKey(instance: InstanceView): string {
  return instance.fault === undefined ? '' : `${instance.fault.created ?? ''} ${instance.fault.message}`;
}

/**
 * Sends the action and follows the instance until its task ends. Answers the instance as it ended
 * when the CLI printed its line, undefined when it printed nothing more to add to (--no-wait, --json).
 */
export async function runInstanceAction(
  io: CliIo,
  idOrName: string,
  flags: WaitFlags,
  spec: (instance: InstanceView) => ActionSpec,
): Promise<InstanceView | undefined> {
  const client = await openSession(io);
  const before = await findInstance(client, idOrName);
  const { id, name } = before;
  const action = spec(before);
  await action.send(client, before);
  if (!flags.wait) {
    io.stdout.write(`${action.doing} (${id}). Follow it with \`coffer instance show ${id}\`.\n`);
    return undefined;
  }
  const result = await waitForInstance(io, client, id, { goal: 'settled', label: action.doing, timeoutSeconds: flags.timeout });
  const showHint = `See \`coffer instance show ${id}\` for details.`;
  switch (result.outcome) {
    case 'active':
    case 'settled': {
      // Actions that fail without an error status (a restart, a resize) leave a new fault.
      const line = action.faultIsOutcome === true || faultKey(result.instance) === faultKey(before) ? action.done(result.instance) : undefined;
      if (line === undefined) throw new CliError(`${action.what} of ${name} (${id}) failed: ${faultText(result.instance)}`, showHint);
      await action.afterwards?.(client, result.instance);
      if (flags.json === true) {
        printJson(io.stdout, result.instance);
        return undefined;
      }
      io.stdout.write(`${line} (${stateText(result.instance)}, ${result.seconds} s)\n`);
      return result.instance;
    }
    case 'error':
      throw new CliError(`${action.what} of ${name} (${id}) failed: ${faultText(result.instance)}`, showHint);
    case 'gone':
      throw new CliError(`Instance ${name} (${id}) disappeared during the ${action.what.toLowerCase()}.`, 'It was probably deleted.');
    case 'timeout':
      throw new CliError(
        `${action.doing} is still going after ${flags.timeout} s${result.last === undefined ? '' : ` (${stateText(result.last)})`}.`,
        `Check on it with \`coffer instance show ${id}\`, or wait longer with --timeout.`,
      );
  }
}

/** `--allowed-cidr` alone (commander's `true`) clears the list. */
function cidr(value: string, previous?: string[] | true): string[] {
  if (!/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(value)) throw new InvalidArgumentError('Expected a CIDR such as 10.0.0.0/8.');
  return collect(value, previous === true ? [] : previous);
}

export function registerInstanceActionCommands(instance: Command, io: CliIo): void {
  withWaitOptions(instance.command('restart <id-or-name>').description('Restart the database engine of an instance')).action(
    (idOrName: string, flags: WaitFlags) =>
      runAction(io, () =>
        runInstanceAction(io, idOrName, flags, ({ id, name }) => ({
          doing: `Restarting ${name}`,
          what: 'Restart',
          send: (client) => client.post(actionPath(id), { restart: {} }),
          done: () => `Instance ${name} restarted.`,
        })),
      ),
  );

  // Coffer's stop and start: the instance keeps its data, address and quota while stopped
  withWaitOptions(
    instance
      .command('stop <id-or-name>')
      .description('Stop the database engine of an instance until `instance start`: it keeps its data, address and quota, and uses no memory'),
  ).action((idOrName: string, flags: WaitFlags) =>
    runAction(io, () =>
      runInstanceAction(io, idOrName, flags, ({ id, name }) => ({
        doing: `Stopping ${name}`,
        what: 'Stop',
        send: (client) => client.post(actionPath(id), { stop: {} }),
        done: (after) => (after.status === 'SHUTOFF' ? `Instance ${name} stopped; \`coffer instance start ${name}\` starts it again.` : undefined),
      })),
    ),
  );

  withWaitOptions(
    instance.command('detach <id-or-name>').description('Make a read replica a standalone, writable instance of its own (its source keeps nothing for it)'),
  ).action((idOrName: string, flags: WaitFlags) =>
    runAction(io, () =>
      runInstanceAction(io, idOrName, flags, ({ id, name, replica_of }) => ({
        doing: `Detaching ${name}${replica_of === undefined ? '' : ` from ${replica_of.id}`}`,
        what: 'Detach',
        send: async (client) => {
          await client.request('PUT', `/instances/${encodeURIComponent(id)}`, { instance: { replica_of: null } });
        },
        done: (after) => (after.replica_of === undefined ? `Instance ${name} is a standalone instance now.` : undefined),
      })),
    ),
  );

  withWaitOptions(instance.command('start <id-or-name>').description('Start a stopped instance again, on the data it had')).action(
    (idOrName: string, flags: WaitFlags) =>
      runAction(io, () =>
        runInstanceAction(io, idOrName, flags, ({ id, name }) => ({
          doing: `Starting ${name}`,
          what: 'Start',
          send: (client) => client.post(actionPath(id), { start: {} }),
          done: (after) => (after.status === 'ACTIVE' ? `Instance ${name} started.` : undefined),
        })),
      ),
  );

  withWaitOptions(
    instance.command('resize <id-or-name> <flavor>').description('Give an instance another flavor (RAM, vCPUs); the engine restarts'),
  ).action((idOrName: string, flavorRef: string, flags: WaitFlags) =>
    runAction(io, async () => {
      let target = '';
      let targetText = '';
      await runInstanceAction(io, idOrName, flags, ({ id, name }) => ({
        doing: `Resizing ${name}`,
        what: 'Resize',
        send: async (client) => {
          const flavor = await resolveFlavor(client, flavorRef);
          target = flavorId(flavor);
          targetText = `${flavor.name} (${target})`;
          await client.post(actionPath(id), { resize: { flavorRef: target } });
        },
        done: (after) => (after.flavor?.id === target ? `Instance ${name} now has flavor ${targetText}.` : undefined),
      }));
    }),
  );

  withWaitOptions(
    instance
      .command('upgrade')
      .description('Move an instance to a newer version of its datastore, keeping its data (a full backup is taken first where backups are configured)')
      .argument('<id-or-name>')
      .argument('<version>', 'a version name, e.g. 16 (`coffer datastore list` lists them)'),
  ).action((idOrName: string, version: string, flags: WaitFlags) =>
    runAction(io, () =>
      runInstanceAction(io, idOrName, flags, ({ id, name, datastore }) => ({
        doing: `Upgrading ${name} from ${datastore?.version ?? 'its version'} to ${version}`,
        what: 'Upgrade',
        send: async (client) => {
          await client.request('PATCH', `/instances/${encodeURIComponent(id)}`, { instance: { datastore_version: version } });
        },
        done: (after) => (after.datastore?.version === version ? `Instance ${name} now runs ${after.datastore.type ?? 'version'} ${version}.` : undefined),
      })),
    ),
  );

  withWaitOptions(
    instance
      .command('resize-volume')
      .description("Grow an instance's volume (a full one, BLOCKED, takes writes again)")
      .argument('<id-or-name>')
      .argument('<GB>', 'the new size, larger than the current one', positiveInteger),
  ).action((idOrName: string, sizeGb: number, flags: WaitFlags) =>
    runAction(io, () =>
      runInstanceAction(io, idOrName, flags, ({ id, name }) => ({
        doing: `Resizing the volume of ${name}`,
        what: 'Volume resize',
        send: (client) => client.post(actionPath(id), { resize: { volume: { size: sizeGb } } }),
        done: (after) => (after.volume?.size === sizeGb ? `Instance ${name} now has a ${sizeGb} GB volume.` : undefined),
      })),
    ),
  );

  withWaitOptions(
    instance
      .command('update <id-or-name>')
      .description('Rename an instance and/or change which clients may connect to it')
      .option('--name <name>', 'the new name')
      .option(
        '--allowed-cidr [cidr]',
        'let clients from this address range connect (repeatable; replaces the current list); without a range, clear the list (the default ranges again)',
        cidr,
      )
      .option('--public', 'mark the instance public')
      .option('--private', 'mark the instance private')
      .option('--require-tls', 'refuse clients that do not use TLS')
      .option('--allow-plaintext', 'accept clients without TLS again'),
  ).action((idOrName: string, flags: WaitFlags & UpdateFlags & TlsFlags) =>
    runAction(io, () =>
      flags.requireTls === true || flags.allowPlaintext === true ? updateTls(io, idOrName, flags) : updateInstance(io, idOrName, flags),
    ),
  );

  instance
    .command('reset-status <id-or-name>')
    .description('Clear a stuck or failed task (admin; the owner with --force-delete); the status is known again at the next heartbeat')
    .option('--force-delete', "reset as the instance's owner, to delete it afterwards")
    .option('--json', 'print the API object as JSON')
    .action((idOrName: string, flags: { forceDelete?: boolean; json?: boolean }) =>
      runAction(io, async () => {
        const client = await openSession(io);
        const { id, name } = await findInstance(client, idOrName);
        await client.post(actionPath(id), { reset_status: flags.forceDelete === true ? { force_delete: true } : {} });
        const after = await findInstance(client, id);
        if (flags.json === true) return printJson(io.stdout, after);
        io.stdout.write(`Instance ${name} (${id}) was reset: ${stateText(after)} until its next heartbeat.\n`);
      }),
    );
}

interface UpdateFlags {
  name?: string;
  allowedCidr?: string[] | true;
  public?: boolean;
  private?: boolean;
}

async function updateInstance(io: CliIo, idOrName: string, flags: WaitFlags & UpdateFlags): Promise<void> {
  if (flags.public === true && flags.private === true) throw new CliError('Give --public or --private, not both.');
  const isPublic = flags.public === true ? true : flags.private === true ? false : undefined;
  const cidrs = flags.allowedCidr === true ? [] : flags.allowedCidr;
  const access =
    cidrs === undefined && isPublic === undefined
      ? undefined
      : { ...(isPublic === undefined ? {} : { is_public: isPublic }), ...(cidrs === undefined ? {} : { allowed_cidrs: cidrs }) };
  if (flags.name === undefined && access === undefined) {
    throw new CliError('Nothing to update.', 'Give --name, --allowed-cidr, --public, --private, --require-tls or --allow-plaintext.');
  }
  const body = { instance: { ...(flags.name === undefined ? {} : { name: flags.name }), ...(access === undefined ? {} : { access }) } };
  if (access === undefined) {
    // A rename is done when the API answers: no task to follow.
    const client = await openSession(io);
    const { id, name } = await findInstance(client, idOrName);
    await client.request('PUT', `/instances/${encodeURIComponent(id)}`, body);
    io.stdout.write(`Instance ${name} (${id}) is now named ${flags.name}.\n`);
    return;
  }
  await runInstanceAction(io, idOrName, flags, (before) => ({
    doing: `Updating the access rules of ${before.name}`,
    what: 'Access update',
    send: async (client) => {
      const warning = cidrs === undefined ? undefined : loopbackLockoutWarning(before, cidrs);
      if (warning !== undefined) io.stderr.write(warning);
      await client.request('PUT', `/instances/${encodeURIComponent(before.id)}`, body);
    },
    done: (after) => {
      const allowed = after.access?.allowed_cidrs ?? [];
      return `Instance ${after.name} accepts clients from ${allowed.length > 0 ? allowed.join(', ') : "the host's default ranges"}.`;
    },
  }));
}
