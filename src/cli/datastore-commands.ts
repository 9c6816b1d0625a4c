import type { Command } from 'commander';
import type { ConfigurationParameterView, DatastoreVersionView, DatastoreView, MgmtDatastoreVersionView } from './api-types.js';
import { ApiError, CliError } from './cli-error.js';
import type { CliIo } from './cli-io.js';
import { runAction } from './command-runner.js';
import { parameterHead, parameterRow } from './configuration-format.js';
import { unknownParameter } from './configuration-input.js';
import { versionParameters } from './configuration-lookup.js';
import { openSession } from './session.js';
import { printJson, renderFields, renderTable, type Cell } from './table-format.js';

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

  datastore
    .command('version-set <datastore> <version>')
    .description(
      'Administrators: take a datastore version out of service or give it back (--inactive, --active), or make it the default (--default, --no-default leaves the datastore with none)',
    )
    .option('--active', 'give the version back to what its hosts report (active where an agent can run it)')
    .option('--inactive', 'take the version out of service: no new instance runs it (those that do keep running)')
    .option('--default', 'make it the version an instance gets when none is named')
    .option('--no-default', 'leave the datastore with no default version (only when this one is the default)')
    .action((datastoreName: string, versionRef: string, options: { active?: boolean; inactive?: boolean; default?: boolean }) =>
      runAction(io, async () => {
        if (options.active === true && options.inactive === true) throw new CliError('Give --active or --inactive, not both.');
        const change = {
          ...(options.active === true ? { active: true } : options.inactive === true ? { active: false } : {}),
          ...(options.default === undefined ? {} : { default: options.default }),
        };
        if (Object.keys(change).length === 0) throw new CliError('Nothing to change.', 'Give --active, --inactive, --default or --no-default.');
        const client = await openSession(io);
        const versions = await client.getMember<MgmtDatastoreVersionView[]>('/mgmt/datastore-versions', 'versions');
        const version = versions.find((v) => v.datastore_name === datastoreName && (v.name === versionRef || v.id === versionRef));
        if (version === undefined) {
          const known = versions.filter((v) => v.datastore_name === datastoreName).map((v) => v.name);
          throw new CliError(
            `No version ${versionRef} of datastore ${datastoreName}.`,
            known.length === 0 ? 'See `coffer datastore list` for the datastores.' : `Its versions: ${known.join(', ')}.`,
          );
        }
        await client.request('PATCH', `/mgmt/datastore-versions/${encodeURIComponent(version.id)}`, change);
        const updated = await client.getMember<MgmtDatastoreVersionView>(`/mgmt/datastore-versions/${encodeURIComponent(version.id)}`, 'version');
        const state = updated.active ? 'active' : `inactive (${updated.inactive_reason ?? 'no reason given'})`;
        io.stdout.write(`${datastoreName} ${updated.name} is ${state}${updated.default ? ', and the default' : ''}.\n`);
      }),
    );

  datastore
    .command('parameters <datastore> <version> [name]')
    .description(
      'List the parameters a configuration group may set for a datastore version (type, range, whether the engine needs a restart), or show one',
    )
    .option('--json', 'print the API objects as JSON')
    .action((datastoreRef: string, version: string, name: string | undefined, options: { json?: boolean }) =>
      runAction(io, async () => {
        const client = await openSession(io);
        const set = await versionParameters(client, datastoreRef, version);
        if (name === undefined) {
          if (options.json === true) return printJson(io.stdout, set.parameters);
          if (set.parameters.length === 0) {
            io.stdout.write(`${set.label} publishes no configuration parameters: configuration groups are not supported for it.\n`);
            return;
          }
          io.stdout.write(renderTable(parameterHead, [...set.parameters].sort((a, b) => a.name.localeCompare(b.name)).map(parameterRow)));
          return;
        }
        const path = `/datastores/${encodeURIComponent(datastoreRef)}/versions/${encodeURIComponent(version)}/parameters/${encodeURIComponent(name)}`;
        let parameter: ConfigurationParameterView;
        try {
          // Trove answers this one parameter unwrapped.
          parameter = await client.get<ConfigurationParameterView>(path);
        } catch (err) {
          if (err instanceof ApiError && err.status === 404) throw unknownParameter(set, name);
          throw err;
        }
        if (options.json === true) return printJson(io.stdout, parameter);
        const row = parameterRow(parameter);
        io.stdout.write(renderFields(parameterHead.map((heading, i): [string, Cell] => [heading, row[i]])));
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
