import type { ApiClient } from './api-client.js';
import { flavorId, type InstanceView } from './api-types.js';
import { CliError } from './cli-error.js';
import type { CliIo } from './cli-io.js';
import { findConfiguration } from './configuration-lookup.js';
import { connectionInfo } from './connection-info.js';
import { resolveFlavor } from './flavor-commands.js';
import { findInstance, listInstances } from './instance-lookup.js';
import type { UserSpec } from './option-parsers.js';
import { openSession } from './session.js';
import { printJson } from './table-format.js';
import { saveCaCertificate } from './instance-tls.js';
import { faultText, stateText, waitForInstance } from './instance-wait.js';
import { createTarget, withRestoreHints, type CreateTarget, type RestoreFlags } from './instance-restore.js';

export interface CreateOptions extends RestoreFlags {
  /** required unless replicaOf */
  flavor?: string;
  size?: number;
  /** an instance's ID or name: the new one is its read replica */
  replicaOf?: string;
  replicaCount?: number;
  database?: string[];
  user?: UserSpec[];
  allowDuplicateName?: boolean;
  requireTls?: boolean;
  /** a configuration group's ID or name */
  configuration?: string;
  caFile?: string;
  wait: boolean;
  json?: boolean;
  timeout: number;
}

export async function createInstance(io: CliIo, name: string, options: CreateOptions): Promise<void> {
  const client = await openSession(io);
  if (options.replicaOf !== undefined) return createReplica(io, client, name, { ...options, replicaOf: options.replicaOf });
  if (options.replicaCount !== undefined) throw new CliError('--replica-count needs --replica-of: the instance to make replicas of.');
  if (options.flavor === undefined || options.size === undefined) {
    throw new CliError(`Give ${options.flavor === undefined ? '--flavor' : '--size'} (see \`coffer flavor list\`), or --replica-of to make a read replica of an instance.`);
  }
  const target = await createTarget(client, options);
  if (options.allowDuplicateName !== true) await refuseDuplicateName(client, name);
  const flavor = await resolveFlavor(client, options.flavor);
  const configuration = options.configuration === undefined ? undefined : (await findConfiguration(client, options.configuration)).id;
  const body = createBody(name, flavorId(flavor), options.size, options, target, configuration);
  const created = await withRestoreHints(target, () => client.postMember<InstanceView>('/instances', 'instance', body));
  await finishCreate(io, client, created, name, options, target.backup === undefined ? `Creating ${name}` : `Restoring ${target.backup.name} into ${name}`);
}

/** What a replica takes from its source may not be given (the API would refuse it, in Trove's words). */
const notWithReplica: ReadonlyArray<[keyof CreateOptions, string]> = [
  ['flavor', '--flavor'],
  ['size', '--size'],
  ['datastore', '--datastore'],
  ['datastoreVersion', '--datastore-version'],
  ['database', '--database'],
  ['user', '--user'],
  ['fromBackup', '--from-backup'],
  ['fromInstance', '--from-instance'],
  ['restoreTime', '--restore-time'],
];

/** A read replica (or several) of an instance: the source's flavor, datastore, size, databases and users. */
async function createReplica(io: CliIo, client: ApiClient, name: string, options: CreateOptions & { replicaOf: string }): Promise<void> {
  const given = notWithReplica.filter(([key]) => options[key] !== undefined).map(([, flag]) => flag);
  if (given.length > 0) {
    throw new CliError(`${given.join(', ')} cannot be given with --replica-of: a replica takes its source's.`);
  }
  const source = await findInstance(client, options.replicaOf);
  const count = options.replicaCount ?? 1;
  const names = count === 1 ? [name] : Array.from({ length: count }, (_, index) => `${name}-${index + 1}`);
  if (options.allowDuplicateName !== true) for (const each of names) await refuseDuplicateName(client, each);
  const configuration = options.configuration === undefined ? undefined : (await findConfiguration(client, options.configuration)).id;
  const body = {
    instance: {
      name,
      replica_of: source.id,
      ...(options.replicaCount === undefined ? {} : { replica_count: options.replicaCount }),
      ...(options.requireTls === true ? { tls: { required: true } } : {}),
      ...(configuration === undefined ? {} : { configuration }),
    },
  };
  const created = await client.postMember<InstanceView>('/instances', 'instance', body);
  // the API answers with the last replica; the others build beside it
  if (count > 1 && options.wait) io.stderr.write(`Creating ${names.join(', ')} as replicas of ${source.name}.\n`);
  await finishCreate(io, client, created, created.name, options, `Creating replica ${created.name} of ${source.name}`);
}

async function finishCreate(io: CliIo, client: ApiClient, created: InstanceView, name: string, options: CreateOptions, label: string): Promise<void> {
  if (!options.wait) {
    if (options.json === true) return printJson(io.stdout, created);
    io.stdout.write(
      `Creating instance ${created.name} (${created.id}): ${stateText(created)}.\n` +
        `Follow it with \`coffer instance show ${created.id}\`.\n`,
    );
    return;
  }
  const instance = await waitUntilActive(io, client, created, label, options.timeout);
  const caFile = options.caFile === undefined ? undefined : await saveCaCertificate(instance, options.caFile);
  if (options.json === true) return printJson(io.stdout, instance);
  io.stdout.write(connectionText(instance, options, caFile));
  // Trove returns a generated root password only in the create answer; it cannot be read again.
  if (created.password !== undefined) io.stdout.write(`Root password (shown only now): ${created.password}\n`);
}

/**
 * Trove (and so the API) accepts two instances of one name, but every command that takes a name
 * then has to ask which one is meant: the CLI refuses unless told it is wanted.
 */
async function refuseDuplicateName(client: ApiClient, name: string): Promise<void> {
  const same = (await listInstances(client)).filter((instance) => instance.name === name);
  if (same.length === 0) return;
  throw new CliError(
    `An instance named "${name}" already exists (${same.map((i) => i.id).join(', ')}).`,
    'Choose another name, or give --allow-duplicate-name (commands then need the ID instead of the name).',
  );
}

function createBody(name: string, flavorRef: string, size: number, options: CreateOptions, target: CreateTarget, configuration: string | undefined): unknown {
  const databases = options.database ?? [];
  const users = options.user ?? [];
  return {
    instance: {
      name,
      flavorRef,
      volume: { size },
      datastore: target.datastore,
      ...(target.restorePoint === undefined ? {} : { restorePoint: target.restorePoint }),
      ...(databases.length === 0 ? {} : { databases: databases.map((db) => ({ name: db })) }),
      ...(options.requireTls === true ? { tls: { required: true } } : {}),
      ...(configuration === undefined ? {} : { configuration }),
      ...(users.length === 0
        ? {}
        : {
            users: users.map((u) => ({
              name: u.name,
              password: u.password,
              databases: databases.map((db) => ({ name: db })),
            })),
          }),
    },
  };
}

async function waitUntilActive(
  io: CliIo,
  client: ApiClient,
  created: InstanceView,
  label: string,
  timeoutSeconds: number,
): Promise<InstanceView> {
  const { id, name } = created;
  const result = await waitForInstance(io, client, id, { goal: 'active', label, timeoutSeconds });
  const showHint = `See \`coffer instance show ${id}\` for details.`;
  switch (result.outcome) {
    case 'active':
    case 'settled':
      io.stderr.write(
        `Instance ${name} (${id}) is ${stateText(result.instance)} after ${result.seconds} s.\n`,
      );
      return result.instance;
    case 'error':
      throw new CliError(
        `Instance ${name} (${id}) failed: ${faultText(result.instance)}`,
        showHint,
      );
    case 'gone':
      throw new CliError(`Instance ${name} (${id}) disappeared while building.`, 'It was probably deleted.');
    case 'timeout':
      throw new CliError(
        `Instance ${name} (${id}) is still building after ${timeoutSeconds} s` +
          `${result.last === undefined ? '' : ` (${stateText(result.last)})`}.`,
        `Check on it with \`coffer instance show ${id}\`, or wait longer with --timeout.`,
      );
  }
}

function connectionText(instance: InstanceView, options: CreateOptions, caFile: string | undefined): string {
  const user = options.user?.[0]?.name;
  const database = options.database?.[0];
  const info = connectionInfo(instance, user, database, caFile);
  if (info === undefined) {
    const { id } = instance;
    return `Instance ${instance.name} (${id}) has no address yet: see \`coffer instance show ${id}\`.\n`;
  }
  const lines = [`Connect to ${instance.name}:`, `  host: ${info.host}`];
  if (info.port !== undefined) lines.push(`  port: ${info.port}`);
  if (info.command !== undefined) lines.push(`  ${info.command.split(' ')[0]}: ${info.command}`);
  if (info.url !== undefined) lines.push(`  url:  ${info.url}`);
  if (user === undefined) lines.push('  (no --user was given: connect as a user you create)');
  if (info.tls === true) {
    lines.push(
      caFile === undefined
        ? `  (over TLS: save the CA certificate with \`coffer instance show ${instance.id} --ca-file <path>\`)`
        : `  (over TLS, verified with the CA certificate in ${caFile})`,
    );
  }
  return `${lines.join('\n')}\n`;
}
