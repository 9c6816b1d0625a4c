import type { Command } from 'commander';
import type { CliIo } from './cli-io.js';
import { runAction } from './command-runner.js';
import { adminTarget, withHints } from './instance-admin.js';
import { readPassword } from './password-prompt.js';
import { printJson } from './table-format.js';

// `coffer root enable|disable|show <instance>`: the engine's superuser. Enabling prints its
// password (the only time anyone sees it); disabling locks it out again.

export function registerRootCommands(program: Command, io: CliIo): void {
  const root = program.command('root').description("An instance's root (superuser) account");

  root
    .command('enable <instance>')
    .description('Enable the root user with a new password and print it (generated unless --password-stdin)')
    .option('--password-stdin', 'read the password from standard input')
    .option('--json', 'print the API object as JSON')
    .action((instance: string, options: { passwordStdin?: boolean; json?: boolean }) =>
      runAction(io, async () => {
        const password = options.passwordStdin === true ? await readPassword(io, true) : undefined;
        const target = await adminTarget(io, instance);
        const user = await withHints(target, {}, () =>
          target.client.postMember<{ name: string; password: string }>(`${target.path}/root`, 'user', password === undefined ? undefined : { password }),
        );
        if (options.json === true) return printJson(io.stdout, user);
        io.stdout.write(`Root is enabled on ${target.name}.\n  user:     ${user.name}\n  password: ${user.password}\n`);
      }),
    );

  root
    .command('disable <instance>')
    .description('Lock the root user out again (its password is replaced by a random one)')
    .action((instance: string) =>
      runAction(io, async () => {
        const target = await adminTarget(io, instance);
        await withHints(target, { 404: `Nothing to disable; \`coffer root enable ${target.name}\` enables it.` }, () =>
          target.client.delete(`${target.path}/root`),
        );
        io.stdout.write(`Root is disabled on ${target.name}.\n`);
      }),
    );

  root
    .command('show <instance>')
    .description('Tell whether root was ever enabled on an instance')
    .option('--json', 'print the API object as JSON')
    .action((instance: string, options: { json?: boolean }) =>
      runAction(io, async () => {
        const target = await adminTarget(io, instance);
        const enabled = await withHints(target, {}, () => target.client.getMember<boolean>(`${target.path}/root`, 'rootEnabled'));
        if (options.json === true) return printJson(io.stdout, { rootEnabled: enabled });
        io.stdout.write(
          enabled
            ? `Root has been enabled on ${target.name} (it stays so after \`coffer root disable\`, as in Trove).\n`
            : `Root has never been enabled on ${target.name}.\n`,
        );
      }),
    );
}
