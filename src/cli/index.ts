/**
 * The client half of the `coffer` command: login/logout, instances, flavors and datastores,
 * configuration groups, backups, and the databases, users and root account inside an instance.
 * It talks to Coffer's HTTP API (Keystone v3 tokens + Trove v1.0) like any other client, so it
 * imports no role's internals; the role commands (serve, api, ...) live in src/main.
 */
import type { Command } from 'commander';
import { processIo, type CliIo } from './cli-io.js';
import { registerBackupCommands } from './backup-commands.js';
import { registerConfigurationCommands } from './configuration-commands.js';
import { registerDatabaseCommands } from './database-commands.js';
import { registerDatastoreCommands } from './datastore-commands.js';
import { registerFlavorCommands } from './flavor-commands.js';
import { registerInstanceCommands } from './instance-commands.js';
import { registerLogsCommand } from './instance-logs.js';
import { registerLoginCommands } from './login-commands.js';
import { registerRootCommands } from './root-commands.js';
import { registerUserCommands } from './user-commands.js';
import { registerWebhookCommands } from './webhook-commands.js';

export type { CliIo, OutputStream } from './cli-io.js';

/**
 * Adds `login`, `logout`, `instance create|list|show|events|delete|restart|stop|start|resize|...`,
 * a replication group's `instance detach|promote|eject|replication`, `flavor list`,
 * `datastore list|parameters`, `configuration create|list|show|update|delete|attach|detach|instances`,
 * `backup create|list|show|delete` and `backup strategy set|list|clear`,
 * `database list|create|delete`, `user list|create|show|delete|grant|revoke`,
 * `root enable|disable|show`, `webhook create|list|show|delete|deliveries` and `logs`.
 * The actions are async: run the program with `parseAsync`. `io` defaults to the real process.
 */
export function registerClientCommands(program: Command, io: CliIo = processIo()): void {
  registerLoginCommands(program, io);
  registerInstanceCommands(program, io);
  registerFlavorCommands(program, io);
  registerDatastoreCommands(program, io);
  registerConfigurationCommands(program, io);
  registerBackupCommands(program, io);
  registerDatabaseCommands(program, io);
  registerUserCommands(program, io);
  registerRootCommands(program, io);
  registerWebhookCommands(program, io);
  registerLogsCommand(program, io);
}
