import type { Command } from 'commander';
import { CliError } from './cli-error.js';
import type { CliIo } from './cli-io.js';
import { runAction } from './command-runner.js';
import { registerInstanceActionCommands } from './instance-action-commands.js';
import { createInstance, type CreateOptions } from './instance-create.js';
import { showInstanceEvents, type EventsOptions } from './instance-events.js';
import { showInstanceMetrics } from './instance-metrics.js';
import { listFlavors } from './flavor-commands.js';
import { instanceFields, instanceListHead, instanceListRow } from './instance-format.js';
import { caCertificateText, saveCaCertificate, tlsFields } from './instance-tls.js';
import { findInstance, listInstances } from './instance-lookup.js';
import { faultText, stateText, waitForInstance } from './instance-wait.js';
import { collect, positiveInteger, positiveSeconds, userSpec, type UserSpec } from './option-parsers.js';
import { registerReplicationActions } from './replication-actions.js';
import { registerReplicationStatus } from './replication-status.js';
import { openSession } from './session.js';
import { printJson, renderFields, renderTable } from './table-format.js';

const defaultTimeoutSeconds = 300;

export function registerInstanceCommands(program: Command, io: CliIo): void {
  const instance = program.command('instance').description('Database instances');

  instance
    .command('create <name>')
    .description('Create a database instance, empty, from a backup or as a read replica of another, and wait until it is ready')
    .option('--datastore <type>', "engine, e.g. postgresql (see `coffer datastore list`); required unless --from-backup gives the backup's")
    .option('--datastore-version <version>', "engine version (default: the datastore's default; with --from-backup, the backup's)")
    .option('--flavor <id-or-name>', 'instance size (see `coffer flavor list`); required unless --replica-of')
    .option('--size <GB>', 'volume size in GB; required unless --replica-of', positiveInteger)
    .option('--replica-of <instance>', "a read replica of this instance (ID or name): its flavor, datastore, size, databases and users are the source's")
    .option('--replica-count <n>', 'with --replica-of: this many replicas (1-3), named <name>-1 … <name>-n', positiveInteger)
    .option('--database <name>', 'create a database (repeatable)', collect)
    .option('--user <name:password>', 'create a user with access to every --database (repeatable)', collectUser)
    .option('--allow-duplicate-name', 'create it even if another of your instances has this name')
    .option('--require-tls', 'refuse clients that do not use TLS (every instance serves TLS)')
    .option('--configuration <group>', 'start with this configuration group (ID or name; see `coffer configuration list`)')
    .option('--ca-file <path>', "write the instance's CA certificate there once it is ready; the connect line verifies with it")
    .option('--from-backup <backup>', "start with this backup's data (ID or name; see `coffer backup list`)")
    .option('--from-instance <instance>', "with --restore-time: this instance's data as it was then (ID or name; `coffer instance show` gives its recoverable window)")
    .option('--restore-time <time>', 'with --from-instance or --from-backup: the data as it was at this time (ISO 8601, UTC unless it names an offset)')
    .option('--no-wait', 'return once the API accepted the request')
    .option('--timeout <seconds>', 'how long to wait for ACTIVE', positiveSeconds, defaultTimeoutSeconds)
    .option('--json', 'print the API object as JSON')
    .action((name: string, options: CreateOptions) => runAction(io, () => createInstance(io, name, options)));

  instance
    .command('list')
    .description('List your instances')
    .option('--json', 'print the API objects as JSON')
    .action((options: { json?: boolean }) =>
      runAction(io, async () => {
        const instances = await listInstances(await openSession(io));
        if (options.json === true) return printJson(io.stdout, instances);
        if (instances.length === 0) {
          io.stdout.write('No instances. Create one with `coffer instance create`.\n');
          return;
        }
        io.stdout.write(renderTable(instanceListHead, instances.map(instanceListRow)));
      }),
    );

  instance
    .command('show <id-or-name>')
    .description('Show one instance, including its fault if it failed, its TLS and the CA certificate to verify it with')
    .option('--json', 'print the API object as JSON')
    .option('--ca-file <path>', "write the instance's CA certificate there (instead of printing it); the connect line verifies with it")
    .action((idOrName: string, options: { json?: boolean; caFile?: string }) =>
      runAction(io, async () => {
        const client = await openSession(io);
        const found = await findInstance(client, idOrName);
        const caFile = options.caFile === undefined ? undefined : await saveCaCertificate(found, options.caFile);
        if (options.json === true) return printJson(io.stdout, found);
        io.stdout.write(renderFields([...instanceFields(found, await listFlavors(client)), ...tlsFields(found, caFile)]));
        io.stdout.write(caCertificateText(found, caFile));
      }),
    );

  instance
    .command('events <id-or-name>')
    .description('What happened to an instance: status changes (with the reason of a failure) and the tasks run on it, oldest first')
    .option('--limit <n>', 'how many of the newest events to show', positiveInteger, 20)
    .option('--json', 'print the API objects as JSON (newest first)')
    .action((idOrName: string, options: EventsOptions) => runAction(io, () => showInstanceEvents(io, idOrName, options)));

  instance
    .command('metrics <id-or-name>')
    .description("What the instance's engine last measured (once a minute): connections, data size, operations, cache hit ratio, a replica's lag")
    .option('--json', 'print the API object as JSON')
    .action((idOrName: string, options: { json?: boolean }) => runAction(io, () => showInstanceMetrics(io, idOrName, options)));

  instance
    .command('delete <id-or-name>')
    .description('Delete an instance and its data, and wait until it is gone')
    // --wait was needed before delete waited by default; it is still accepted.
    .option('--wait', 'wait until the instance is gone (the default)')
    .option('--no-wait', 'return once the API accepted the request')
    .option('--timeout <seconds>', 'how long to wait until the instance is gone', positiveSeconds, defaultTimeoutSeconds)
    .action((idOrName: string, options: { wait?: boolean; timeout: number }) =>
      runAction(io, () => deleteInstance(io, idOrName, options.wait !== false, options.timeout)),
    );

  registerInstanceActionCommands(instance, io);
  registerReplicationActions(instance, io);
  registerReplicationStatus(instance, io);
}

function collectUser(value: string, previous?: UserSpec[]): UserSpec[] {
  return [...(previous ?? []), userSpec(value)];
}

async function deleteInstance(io: CliIo, idOrName: string, wait: boolean, timeoutSeconds: number): Promise<void> {
  const client = await openSession(io);
  const { id, name } = await findInstance(client, idOrName);
  await client.delete(`/instances/${encodeURIComponent(id)}`);
  if (!wait) {
    io.stdout.write(`Deleting instance ${name} (${id}). Follow it with \`coffer instance show ${id}\`.\n`);
    return;
  }
  const result = await waitForInstance(io, client, id, { goal: 'gone', label: `Deleting ${name}`, timeoutSeconds });
  if (result.outcome === 'gone') {
    io.stdout.write(`Instance ${name} (${id}) is deleted.\n`);
  } else if (result.outcome === 'error') {
    throw new CliError(
      `Deleting instance ${name} (${id}) failed: ${faultText(result.instance)}`,
      `See \`coffer instance show ${id}\` for details.`,
    );
  } else {
    const last = result.outcome === 'timeout' ? result.last : result.instance;
    throw new CliError(
      `Instance ${name} (${id}) is still being deleted after ${timeoutSeconds} s` +
        `${last === undefined ? '' : ` (${stateText(last)})`}.`,
      `Check on it with \`coffer instance show ${id}\`.`,
    );
  }
}
