import type { Command } from 'commander';
import type { CliIo } from './cli-io.js';
import { runAction } from './command-runner.js';
import { adminTarget, withHints } from './instance-admin.js';
import { listAll } from './list-all.js';
import { printJson, renderTable } from './table-format.js';

// `coffer database list|create|delete <instance> ...`: the databases inside an instance.

interface DatabaseView {
  name: string;
}

export function registerDatabaseCommands(program: Command, io: CliIo): void {
  const database = program.command('database').description('Databases inside an instance');

  database
    .command('list <instance>')
    .description("List an instance's databases")
    .option('--json', 'print the API objects as JSON')
    .action((instance: string, options: { json?: boolean }) =>
      runAction(io, async () => {
        const target = await adminTarget(io, instance);
        const databases = await withHints(target, {}, () => listAll<DatabaseView>(target.client, `${target.path}/databases`, 'databases'));
        if (options.json === true) return printJson(io.stdout, databases);
        if (databases.length === 0) {
          io.stdout.write(`No databases on ${target.name}. Create one with \`coffer database create ${target.name} <name>\`.\n`);
          return;
        }
        io.stdout.write(renderTable(['Name'], databases.map((d) => [d.name])));
      }),
    );

  database
    .command('create <instance> <name...>')
    .description('Create databases in an instance')
    .option('--character-set <charset>', 'character set (encoding) of the new databases')
    .option('--collate <collation>', 'collation of the new databases')
    .action((instance: string, names: string[], options: { characterSet?: string; collate?: string }) =>
      runAction(io, async () => {
        const target = await adminTarget(io, instance);
        const databases = names.map((name) => ({
          name,
          ...(options.characterSet === undefined ? {} : { character_set: options.characterSet }),
          ...(options.collate === undefined ? {} : { collate: options.collate }),
        }));
        await withHints(target, { 400: `See the databases ${target.name} has with \`coffer database list ${target.name}\`.` }, () =>
          target.client.post(`${target.path}/databases`, { databases }),
        );
        io.stdout.write(`Created ${plural(names, 'database')} ${names.join(', ')} on ${target.name}.\n`);
      }),
    );

  database
    .command('delete <instance> <name>')
    .description('Delete a database and everything in it')
    .action((instance: string, name: string) =>
      runAction(io, async () => {
        const target = await adminTarget(io, instance);
        await withHints(target, { 404: `See the databases ${target.name} has with \`coffer database list ${target.name}\`.` }, () =>
          target.client.delete(`${target.path}/databases/${encodeURIComponent(name)}`),
        );
        io.stdout.write(`Deleted database ${name} from ${target.name}.\n`);
      }),
    );
}

function plural(items: unknown[], word: string): string {
  return items.length === 1 ? word : `${word}s`;
}
