import type { Command } from 'commander';
import type { ApiClient } from './api-client.js';
import type { InstanceView } from './api-types.js';
import { ApiError, CliError } from './cli-error.js';
import type { CliIo } from './cli-io.js';
import { runAction } from './command-runner.js';
import { actionPath, faultKey, runInstanceAction, withWaitOptions, type WaitFlags } from './instance-action-commands.js';
import { getInstance } from './instance-lookup.js';
import { faultText, stateText, waitForInstance } from './instance-wait.js';

// `coffer instance promote | eject`: a replication group's primary changes hands (Trove's
// promote_to_replica_source and eject_replica_source). Either action changes every member of the
// group, and the instance it is run on ends its task before the others do (a failed-over primary
// first of all), so the command follows each member until its task ended too, and names the
// members that came out of it with a new fault (one that could not follow the new primary).

/** The members of the group other than the instance acted on, as they were before the action. */
type Members = Map<string, InstanceView>;

async function snapshot(client: ApiClient, ids: readonly string[]): Promise<Members> {
  const members: Members = new Map();
  for (const id of ids) {
    const member = await getInstance(client, id);
    if (member !== undefined) members.set(id, member);
  }
  return members;
}

function nameOf(members: Members, id: string): string {
  const member = members.get(id);
  return member === undefined ? id : `${member.name} (${id})`;
}

/** Posts the action; an API refusal matching one of `hints` gets that next step. */
async function postAction(client: ApiClient, id: string, body: object, hints: ReadonlyArray<readonly [RegExp, string]>): Promise<void> {
  try {
    await client.post(actionPath(id), body);
  } catch (err) {
    const hint = err instanceof ApiError ? hints.find(([pattern]) => pattern.test(err.message))?.[1] : undefined;
    if (err instanceof ApiError && hint !== undefined) throw new ApiError(err.status, err.message, hint);
    throw err;
  }
}

/** Follows each member until its task ended, within the action's deadline; a new fault is printed as a warning. */
async function settleMembers(io: CliIo, client: ApiClient, members: Members, newPrimaryId: string, newPrimary: string, deadline: number): Promise<void> {
  for (const [id, before] of members) {
    const timeoutSeconds = Math.max(1, (deadline - Date.now()) / 1000);
    const label = id === newPrimaryId ? `${before.name} takes over` : `${before.name} follows ${newPrimary}`;
    const result = await waitForInstance(io, client, id, { goal: 'settled', label, timeoutSeconds });
    if (result.outcome === 'gone') continue;
    if (result.outcome === 'timeout') {
      throw new CliError(
        `${before.name} (${id}) is still busy after the group changed primary${result.last === undefined ? '' : ` (${stateText(result.last)})`}.`,
        `Check on it with \`coffer instance show ${id}\`, or wait longer with --timeout.`,
      );
    }
    if (faultKey(result.instance) !== faultKey(before)) {
      io.stderr.write(`Warning: ${before.name} (${id}): ${faultText(result.instance)}\n  See \`coffer instance events ${id}\`.\n`);
    }
  }
}

function busyGroup(name: string) {
  return [
    /task status was (PROMOTE|EJECT)/,
    `Its group is already changing primary: follow it with \`coffer instance events ${name}\`, then try again if it is still needed.`,
  ] as const;
}

function promote(io: CliIo, idOrName: string, flags: WaitFlags) {
  const deadline = Date.now() + flags.timeout * 1000;
  let members: Members = new Map();
  return runInstanceAction(io, idOrName, flags, (before) => {
    const { id, name } = before;
    const oldPrimaryId = before.replica_of?.id;
    return {
      // read once send() looked the group up: the old primary by its name
      get doing() {
        return `Promoting ${name}${oldPrimaryId === undefined ? '' : ` in place of ${members.get(oldPrimaryId)?.name ?? oldPrimaryId}`}`;
      },
      what: 'Promotion',
      // a new primary that could not be made synchronous keeps a fault, and is promoted all the same
      faultIsOutcome: true,
      send: async (client) => {
        if (oldPrimaryId !== undefined) {
          const siblings = (await getInstance(client, oldPrimaryId))?.replicas?.map((r) => r.id).filter((r) => r !== id) ?? [];
          members = await snapshot(client, [oldPrimaryId, ...siblings]);
        }
        await postAction(client, id, { promote_to_replica_source: {} }, [
          [/is not a replica\./, `Promote acts on a replica: \`coffer instance replication ${name}\` shows its role and its replicas.`],
          busyGroup(name),
          ...(oldPrimaryId === undefined
            ? []
            : [
                [
                  new RegExp(`Instance ${oldPrimaryId} is not currently available`),
                  `A switchover needs its primary ${oldPrimaryId} to answer. If that primary is lost, \`coffer instance eject ${oldPrimaryId}\` fails over to the replica furthest ahead (Coffer does so by itself unless failover is off).`,
                ] as const,
              ]),
          [/not currently available/, 'A switchover needs every member of the group running with no task: `coffer instance show <id>` shows the one named.'],
        ]);
      },
      done: (after) => {
        if (after.replica_of !== undefined) return undefined;
        const replicas = after.replicas?.map((r) => nameOf(members, r.id)) ?? [];
        return `Instance ${name} is its group's primary now${replicas.length === 0 ? '' : `; its replicas: ${replicas.join(', ')}`}.`;
      },
      afterwards: async (client, after) => {
        if (faultKey(after) !== faultKey(before)) io.stderr.write(`Warning: ${name} (${id}): ${faultText(after)}\n`);
        await settleMembers(io, client, members, id, name, deadline);
      },
    };
  });
}

function eject(io: CliIo, idOrName: string, flags: WaitFlags) {
  const deadline = Date.now() + flags.timeout * 1000;
  let members: Members = new Map();
  return runInstanceAction(io, idOrName, flags, (before) => {
    const { id, name } = before;
    return {
      doing: `Failing over from ${name}`,
      what: 'Failover',
      // the replaced primary keeps a fault saying so
      faultIsOutcome: true,
      send: async (client) => {
        members = await snapshot(client, before.replicas?.map((r) => r.id) ?? []);
        await postAction(client, id, { eject_replica_source: {} }, [
          [
            /cannot be ejected as it has a current heartbeat/,
            `${name} still reports to Coffer or holds its primary lease, so it is not lost. To hand its role to a replica, run \`coffer instance promote <replica>\` (a switchover, which loses no write).`,
          ],
          [/is not a replica source\./, `Eject acts on a primary that has replicas: \`coffer instance replication ${name}\` shows its role.`],
          busyGroup(name),
        ]);
      },
      done: (after) => {
        const newPrimary = after.replica_of?.id;
        if (newPrimary === undefined) return undefined;
        return (
          `${nameOf(members, newPrimary)} is the group's primary now, in place of ${name}. ` +
          `${name} stays stopped until its host is back, then rejoins as a replica (\`coffer instance events ${name}\` tells when).`
        );
      },
      afterwards: (client, after) => {
        const newPrimaryId = after.replica_of?.id ?? '';
        return settleMembers(io, client, members, newPrimaryId, members.get(newPrimaryId)?.name ?? newPrimaryId, deadline);
      },
    };
  });
}

export function registerReplicationActions(instance: Command, io: CliIo): void {
  withWaitOptions(
    instance
      .command('promote <id-or-name>')
      .description(
        "Make a replica its group's primary (a switchover): the primary stops taking writes, the replica takes over once it has all of them, and the old primary and the other replicas follow it",
      ),
  ).action((idOrName: string, flags: WaitFlags) => runAction(io, () => promote(io, idOrName, flags)));

  withWaitOptions(
    instance
      .command('eject <id-or-name>')
      .description(
        "Fail over from a lost primary (one that neither reports nor holds its lease): the replica furthest ahead becomes the group's primary; Coffer does this by itself unless failover is off",
      ),
  ).action((idOrName: string, flags: WaitFlags) => runAction(io, () => eject(io, idOrName, flags)));
}
