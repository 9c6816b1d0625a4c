import type { ApiClient } from './api-client.js';
import { flavorId, type InstanceView } from './api-types.js';
import { CliError } from './cli-error.js';
import type { CliIo } from './cli-io.js';
import { findConfiguration } from './configuration-lookup.js';
import { connectionInfo } from './connection-info.js';
import { resolveFlavor } from './flavor-commands.js';
import { listInstances } from './instance-lookup.js';
import type { UserSpec } from './option-parsers.js';
import { openSession } from './session.js';
import { printJson } from './table-format.js';
import { saveCaCertificate } from './instance-tls.js';
import { faultText, stateText, waitForInstance } from './instance-wait.js';
import { createTarget, withRestoreHints, type CreateTarget, type RestoreFlags } from './instance-restore.js';

export interface CreateOptions extends RestoreFlags {
  flavor: string;
  size: number;
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
  const target = await createTarget(client, options);
  if (options.allowDuplicateName !== true) await refuseDuplicateName(client, name);
  const flavor = await resolveFlavor(client, options.flavor);
  const configuration = options.configuration === undefined ? undefined : (await findConfiguration(client, options.configuration)).id;
  const body = createBody(name, flavorId(flavor), options, target, configuration);
  const created = await withRestoreHints(target, () => client.postMember<InstanceView>('/instances', 'instance', body));
  if (!options.wait) {
    if (options.json === true) return printJson(io.stdout, created);
    io.stdout.write(
      `Creating instance ${created.name} (${created.id}): ${stateText(created)}.\n` +
        `Follow it with \`coffer instance show ${created.id}\`.\n`,
    );
    return;
  }
  const label = target.backup === undefined ? `Creating ${name}` : `Restoring ${target.backup.name} into ${name}`;
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

function createBody(name: string, flavorRef: string, options: CreateOptions, target: CreateTarget, configuration: string | undefined): unknown {
  const databases = options.database ?? [];
  const users = options.user ?? [];
  return {
    instance: {
      name,
      flavorRef,
      volume: { size: options.size },
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
