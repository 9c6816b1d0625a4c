import type { Command } from 'commander';
import { newPassword } from '../common/index.js';
import type { CliIo } from './cli-io.js';
import { runAction } from './command-runner.js';
import { adminTarget, hasUserHosts, userPath, withHints, type AdminTarget } from './instance-admin.js';
import { listAll } from './list-all.js';
import { collect } from './option-parsers.js';
import { readPassword } from './password-prompt.js';
import { printJson, renderFields, renderTable } from './table-format.js';

// `coffer user list|create|show|delete|grant|revoke <instance> ...`: the users of an instance
// and the databases they may use. Passwords never come from arguments (they would show in `ps`
// and shell history): --password-stdin, or a generated one printed once.

interface UserView {
  name: string;
  host: string;
  databases: { name: string }[];
}

interface HostOption {
  host?: string;
}

const hostOption = ['--host <host>', "the user's host pattern, where the engine has them (default %)"] as const;

function databaseNames(user: UserView): string {
  return user.databases.map((d) => d.name).join(', ');
}

function userLabel(name: string, host: string | undefined): string {
  return host === undefined || host === '%' ? name : `${name}@${host}`;
}

function listHint(target: AdminTarget): string {
  const hostNote = hasUserHosts(target) ? ' (a user with a host needs --host)' : '';
  return `See the users of ${target.name} with \`coffer user list ${target.name}\`${hostNote}.`;
}

export function registerUserCommands(program: Command, io: CliIo): void {
  const user = program.command('user').description('Users of an instance and their access to databases');

  user
    .command('list <instance>')
    .description("List an instance's users and the databases each may use")
    .option('--json', 'print the API objects as JSON')
    .action((instance: string, options: { json?: boolean }) =>
      runAction(io, async () => {
        const target = await adminTarget(io, instance);
        const users = await withHints(target, {}, () => listAll<UserView>(target.client, `${target.path}/users`, 'users'));
        if (options.json === true) return printJson(io.stdout, users);
        if (users.length === 0) {
          io.stdout.write(`No users on ${target.name}. Create one with \`coffer user create ${target.name} <name>\`.\n`);
          return;
        }
        io.stdout.write(renderTable(['Name', 'Host', 'Databases'], users.map((u) => [u.name, u.host, databaseNames(u)])));
      }),
    );

  user
    .command('create <instance> <name>')
    .description('Create a user; without --password-stdin a strong password is generated and printed once')
    .option(...hostOption)
    .option('--database <name>', 'give the user access to this database (repeatable)', collect)
    .option('--password-stdin', 'read the password from standard input')
    .action((instance: string, name: string, options: HostOption & { database?: string[]; passwordStdin?: boolean }) =>
      runAction(io, async () => {
        const given = options.passwordStdin === true ? await readPassword(io, true) : undefined;
        const password = given ?? newPassword();
        const target = await adminTarget(io, instance);
        const body = {
          users: [
            {
              name,
              password,
              ...(options.host === undefined ? {} : { host: options.host }),
              ...(options.database === undefined ? {} : { databases: options.database.map((d) => ({ name: d })) }),
            },
          ],
        };
        await withHints(target, { 400: listHint(target) }, () => target.client.post(`${target.path}/users`, body));
        io.stdout.write(`Created user ${userLabel(name, options.host)} on ${target.name}.\n`);
        if (given === undefined) io.stdout.write(`Password: ${password}\n(shown only now: keep it somewhere safe)\n`);
      }),
    );

  user
    .command('show <instance> <name>')
    .description('Show a user and the databases it may use')
    .option(...hostOption)
    .option('--json', 'print the API object as JSON')
    .action((instance: string, name: string, options: HostOption & { json?: boolean }) =>
      runAction(io, async () => {
        const target = await adminTarget(io, instance);
        const found = await withHints(target, { 404: listHint(target) }, () =>
          target.client.getMember<UserView>(userPath(target, name, options.host), 'user'),
        );
        if (options.json === true) return printJson(io.stdout, found);
        io.stdout.write(renderFields([['name', found.name], ['host', found.host], ['databases', databaseNames(found)]]));
      }),
    );

  user
    .command('delete <instance> <name>')
    .description('Delete a user')
    .option(...hostOption)
    .action((instance: string, name: string, options: HostOption) =>
      runAction(io, async () => {
        const target = await adminTarget(io, instance);
        await withHints(target, { 404: listHint(target) }, () => target.client.delete(userPath(target, name, options.host)));
        io.stdout.write(`Deleted user ${userLabel(name, options.host)} from ${target.name}.\n`);
      }),
    );

  user
    .command('grant <instance> <name> <database...>')
    .description('Give a user access to databases')
    .option(...hostOption)
    .action((instance: string, name: string, databases: string[], options: HostOption) =>
      runAction(io, async () => {
        const target = await adminTarget(io, instance);
        const body = { databases: databases.map((d) => ({ name: d })) };
        await withHints(target, { 404: `${listHint(target)} \`coffer database list ${target.name}\` shows its databases.` }, () =>
          target.client.request('PUT', `${userPath(target, name, options.host)}/databases`, body),
        );
        io.stdout.write(`Granted ${userLabel(name, options.host)} access to ${databases.join(', ')} on ${target.name}.\n`);
      }),
    );

  user
    .command('revoke <instance> <name> <database>')
    .description("Take a database from a user's access")
    .option(...hostOption)
    .action((instance: string, name: string, database: string, options: HostOption) =>
      runAction(io, async () => {
        const target = await adminTarget(io, instance);
        const path = `${userPath(target, name, options.host)}/databases/${encodeURIComponent(database)}`;
        await withHints(target, { 404: `\`coffer user show ${target.name} ${name}\` shows which databases the user has.` }, () =>
          target.client.delete(path),
        );
        io.stdout.write(`Revoked ${userLabel(name, options.host)}'s access to ${database} on ${target.name}.\n`);
      }),
    );
}
