import type { Command } from 'commander';
import type { ApiClient } from './api-client.js';
import type { BackupStrategyView } from './api-types.js';
import type { CliIo } from './cli-io.js';
import { runAction } from './command-runner.js';
import { findInstance, listInstances } from './instance-lookup.js';
import { containerName } from './option-parsers.js';
import { openSession } from './session.js';
import { printJson, renderTable } from './table-format.js';

// `coffer backup strategy ...`: Trove's backup strategies, which container a project's backups
// go to, or one instance's (an instance's wins over its project's; without either, the
// deployment's default). A backup stays in the container it was stored in.

const strategyPath = '/backup_strategies';

function listStrategies(client: ApiClient): Promise<BackupStrategyView[]> {
  return client.getMember<BackupStrategyView[]>(strategyPath, 'backup_strategies');
}

/** What a strategy applies to: the project (instance_id '') or one instance. */
interface Scope {
  instanceId: string;
  /** `this project's backups`, `backups of mypg` */
  text: string;
}

async function scopeOf(client: ApiClient, instance: string | undefined): Promise<Scope> {
  if (instance === undefined) return { instanceId: '', text: "this project's backups" };
  const found = await findInstance(client, instance);
  return { instanceId: found.id, text: `backups of ${found.name}` };
}

export function registerBackupStrategyCommands(backup: Command, io: CliIo): void {
  const strategy = backup
    .command('strategy')
    .description("Which storage container backups go to: the project's, or one instance's (which wins over the project's)");

  strategy
    .command('set')
    .description("Send later backups of the project (or of one instance) to this container; backups already taken stay where they are")
    .argument('<container>', 'the container name: letters, digits, "_", "." and "-"', containerName)
    .option('--instance <instance>', 'for this instance only (ID or name)')
    .option('--json', 'print the API object as JSON')
    .action((container: string, flags: { instance?: string; json?: boolean }) =>
      runAction(io, async () => {
        const client = await openSession(io);
        const scope = await scopeOf(client, flags.instance);
        const body = { backup_strategy: { swift_container: container, ...(scope.instanceId === '' ? {} : { instance_id: scope.instanceId }) } };
        const set = await client.postMember<BackupStrategyView>(strategyPath, 'backup_strategy', body);
        if (flags.json === true) return printJson(io.stdout, set);
        const except = scope.instanceId === '' ? ' (except instances with a container of their own)' : '';
        io.stdout.write(`From now on ${scope.text} go to container ${set.swift_container}${except}.\n`);
      }),
    );

  strategy
    .command('list')
    .description("Show the project's and its instances' backup containers")
    .option('--json', 'print the API objects as JSON')
    .action((flags: { json?: boolean }) =>
      runAction(io, async () => {
        const client = await openSession(io);
        const strategies = await listStrategies(client);
        if (flags.json === true) return printJson(io.stdout, strategies);
        if (strategies.length === 0) {
          io.stdout.write("No backup strategies: backups go to the deployment's default container. Set one with `coffer backup strategy set <container>`.\n");
          return;
        }
        const names = new Map((await listInstances(client)).map((i) => [i.id, i.name]));
        const rows = strategies
          .sort((a, b) => a.instance_id.localeCompare(b.instance_id))
          .map((s) => [s.instance_id === '' ? 'the project' : appliesTo(s.instance_id, names), s.swift_container, s.backend]);
        io.stdout.write(renderTable(['Applies to', 'Container', 'Backend'], rows));
      }),
    );

  strategy
    .command('clear')
    .description("Forget the project's (or one instance's) container: backups go to the next one that applies again")
    .option('--instance <instance>', 'for this instance only (ID or name)')
    .action((flags: { instance?: string }) =>
      runAction(io, async () => {
        const client = await openSession(io);
        const scope = await scopeOf(client, flags.instance);
        const strategies = await listStrategies(client);
        if (!strategies.some((s) => s.instance_id === scope.instanceId)) {
          io.stdout.write(`No container was set for ${scope.text}: nothing to clear.\n`);
          return;
        }
        const query = scope.instanceId === '' ? '' : `?instance_id=${encodeURIComponent(scope.instanceId)}`;
        await client.delete(`${strategyPath}${query}`);
        io.stdout.write(`${capitalised(scope.text)} go to ${fallback(strategies, scope)} again.\n`);
      }),
    );
}

function appliesTo(instanceId: string, names: ReadonlyMap<string, string>): string {
  const name = names.get(instanceId);
  return name === undefined ? `instance ${instanceId}` : `instance ${name} (${instanceId})`;
}

/** Where the scope's backups go once its strategy is gone. */
function fallback(strategies: readonly BackupStrategyView[], scope: Scope): string {
  const project = strategies.find((s) => s.instance_id === '');
  return scope.instanceId !== '' && project !== undefined
    ? `the project's container ${project.swift_container}`
    : "the deployment's default container";
}

function capitalised(text: string): string {
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}`;
}
