import type { Command } from 'commander';
import type { DatastoreVersionView, DatastoreView } from './api-types.js';
import type { CliIo } from './cli-io.js';
import { runAction } from './command-runner.js';
import { openSession } from './session.js';
import { printJson, renderTable, type Cell } from './table-format.js';

export function registerDatastoreCommands(program: Command, io: CliIo): void {
  const datastore = program.command('datastore').description('Database engines and their versions');
  datastore
    .command('list')
    .description('List the datastores and versions instances can run')
    .option('--json', 'print the API objects as JSON')
    .action((options: { json?: boolean }) =>
      runAction(io, async () => {
        const client = await openSession(io);
        const datastores = await client.getMember<DatastoreView[]>('/datastores', 'datastores');
        if (options.json === true) return printJson(io.stdout, datastores);
        const head = ['Datastore', 'Version', 'Version number', 'Version ID', 'Default'];
        const rows = versionRows(datastores);
        // Only admins see inactive versions; the column is there only when one is listed.
        const anyInactive = datastores.some((ds) => (ds.versions ?? []).some(isInactive));
        io.stdout.write(anyInactive ? renderTable([...head, 'Inactive because'], rows) : renderTable(head, rows.map((r) => r.slice(0, 5))));
      }),
    );
}

/** One row per version: what `instance create --datastore ... --datastore-version ...` accepts. */
function versionRows(datastores: DatastoreView[]): Cell[][] {
  return datastores.flatMap((ds) => {
    const versions = ds.versions ?? [];
    if (versions.length === 0) return [[ds.name, '(no versions)', undefined, undefined, undefined, undefined]];
    return versions.map((v) => {
      // Admins also see inactive versions; say so, and why, rather than let them be picked.
      const inactive = isInactive(v) ? ' (inactive)' : '';
      const reason = isInactive(v) ? (v.inactive_reason ?? '') : '';
      return [ds.name, `${v.name}${inactive}`, v.version, v.id, v.id === ds.default_version ? 'yes' : '', reason];
    });
  });
}

function isInactive(version: DatastoreVersionView): boolean {
  return version.active === false || version.active === 0;
}
