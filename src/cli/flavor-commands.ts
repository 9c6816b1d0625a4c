import type { Command } from 'commander';
import type { ApiClient } from './api-client.js';
import { flavorId, type FlavorView } from './api-types.js';
import { CliError } from './cli-error.js';
import type { CliIo } from './cli-io.js';
import { runAction } from './command-runner.js';
import { openSession } from './session.js';
import { printJson, renderTable } from './table-format.js';

export function registerFlavorCommands(program: Command, io: CliIo): void {
  const flavor = program.command('flavor').description('Instance sizes (RAM, vCPUs)');
  flavor
    .command('list')
    .description('List the flavors an instance can be created with')
    .option('--json', 'print the API objects as JSON')
    .action((options: { json?: boolean }) =>
      runAction(io, async () => {
        const flavors = await listFlavors(await openSession(io));
        if (options.json === true) return printJson(io.stdout, flavors);
        io.stdout.write(
          renderTable(
            ['ID', 'Name', 'RAM (MB)', 'vCPUs', 'Disk (GB)'],
            flavors.map((f) => [flavorId(f), f.name, f.ram, f.vcpus, f.disk]),
          ),
        );
      }),
    );
}

export async function listFlavors(client: ApiClient): Promise<FlavorView[]> {
  return client.getMember<FlavorView[]>('/flavors', 'flavors');
}

/** A flavor by ID or, when no ID matches, by name (Trove's flavorRef wants the ID). */
export async function resolveFlavor(client: ApiClient, idOrName: string): Promise<FlavorView> {
  const flavors = await listFlavors(client);
  const byId = flavors.find((f) => flavorId(f) === idOrName || String(f.id) === idOrName);
  if (byId !== undefined) return byId;
  const byName = flavors.filter((f) => f.name === idOrName);
  const [only] = byName;
  if (only !== undefined && byName.length === 1) return only;
  if (byName.length > 1) {
    throw new CliError(
      `More than one flavor is named "${idOrName}": ${byName.map(flavorId).join(', ')}.`,
      'Use the ID instead.',
    );
  }
  const available = flavors.map((f) => `${f.name} (${flavorId(f)})`).join(', ');
  throw new CliError(
    `No flavor has the ID or name "${idOrName}".`,
    available === '' ? 'Coffer has no flavors defined.' : `Available: ${available}.`,
  );
}
