#!/usr/bin/env node
// The `coffer` command: one binary for every role (serve, api, taskmanager, conductor, agent)
// and for the client commands (login, instance ...), which talk to the API over HTTP.
import { Command, Option } from 'commander';
import { registerClientCommands } from '../cli/index.js';
import { CofferError } from '../common/index.js';
import {
  agentConfigSchema,
  apiConfigSchema,
  loadConfig,
  serveConfigSchema,
  workerConfigSchema,
} from './config.js';
import { runAgent, runApi, runConductor, runServe, runTaskmanager, type Stop } from './roles.js';

const print = (line: string) => process.stdout.write(`${line}\n`);

/** Runs a role until SIGINT/SIGTERM, then stops it cleanly (database engines keep running). */
async function runUntilSignalled(start: () => Promise<Stop>): Promise<void> {
  let stop: Stop;
  try {
    stop = await start();
  } catch (err) {
    const message = err instanceof CofferError ? err.message : err instanceof Error ? err.message : String(err);
    process.stderr.write(`coffer: ${message}\n`);
    process.exit(1);
  }
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`coffer: error while stopping after ${signal}: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

const configOption = () => new Option('--config <file>', 'JSON config file (env COFFER_CONFIG)');
const logOption = () => new Option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (env COFFER_LOG_LEVEL)');
const dbOption = () => new Option('--database-url <url>', 'state database: mysql://, mariadb://, postgres:// or sqlite: URL (env COFFER_DATABASE_URL)');
const busOption = () => new Option('--bus-url <url>', 'RabbitMQ URL, e.g. amqp://guest:guest@127.0.0.1 (env COFFER_BUS_URL)');

/** Trove's quota defaults and rate limit, for the roles that serve the API. */
function addLimitOptions(command: Command): Command {
  return command
    .option('--max-instances-per-tenant <n>', 'instances per project unless its quota says otherwise, default 10, -1 unlimited (env COFFER_MAX_INSTANCES_PER_TENANT)')
    .option('--max-volumes-per-tenant <gb>', 'total volume GB per project, default 40, -1 unlimited (env COFFER_MAX_VOLUMES_PER_TENANT)')
    .option('--max-backups-per-tenant <n>', 'backups per project, default 50, -1 unlimited (env COFFER_MAX_BACKUPS_PER_TENANT)')
    .option('--max-ram-per-tenant <mb>', 'total flavor RAM MB per project, default -1 unlimited (env COFFER_MAX_RAM_PER_TENANT)')
    .option('--rate-limit <n>', 'requests per minute per HTTP verb and project, counted in each API process, default 200, 0 off (env COFFER_RATE_LIMIT)');
}

/** Coffer's CA, which signs every instance's certificate, for the roles that run an agent. */
function addCaOptions(command: Command): Command {
  return command
    .option('--ca-cert-file <file>', "the CA certificate (PEM) that signs the instances' TLS certificates; default: Coffer's own, made in <data dir>/ca on first start (env COFFER_CA_CERT_FILE)")
    .option('--ca-key-file <file>', 'the key of --ca-cert-file (PEM); read by the agent only (env COFFER_CA_KEY_FILE)');
}

/** HTTPS for the API, for the roles that serve it. */
function addHttpsOptions(command: Command): Command {
  return command
    .option('--tls-cert-file <file>', 'serve the API over HTTPS with this certificate (PEM, chain after it); links then say https (env COFFER_TLS_CERT_FILE)')
    .option('--tls-key-file <file>', 'the key of --tls-cert-file (PEM) (env COFFER_TLS_KEY_FILE)');
}

function buildProgram(): Command {
  const program = new Command('coffer')
    .description('Coffer: database instances as a service (PostgreSQL), behind the OpenStack Trove v1.0 API')
    .showHelpAfterError('(run with --help for usage)');

  const serve = program
    .command('serve')
    .description('Run every role in one process: SQLite state, in-process bus, local compute (no other server needed)')
    .option('--host <address>', 'address to listen on (env COFFER_HOST)', undefined)
    .option('--port <port>', 'port to listen on, default 8779 (env COFFER_PORT)')
    .option('--data-dir <dir>', 'state, instances and logs, default ./.coffer (env COFFER_DATA_DIR)')
    .option('--public-url <url>', 'URL clients reach the API at (env COFFER_PUBLIC_URL)')
    .option('--engine-user <user>', 'as root: the unprivileged user that finds engine versions and fills the warm pool (each instance runs as a user of its own), default coffer-db')
    .option('--address-pool <cidr>', 'loopback range for instance addresses, default 127.77.0.0/16')
    .option('--warm-pool-size <n>', 'pre-initialised clusters kept per engine version so creates skip initdb, default 2 (0: off)')
    .option('--engine-bin-dir <engine=dir...>', 'also look for an engine\'s binaries in dir, first, e.g. mysql=/opt/mysql/bin (env COFFER_ENGINE_BIN_DIRS, comma-separated)')
    .addOption(logOption())
    .addOption(configOption());
  addCaOptions(serve);
  addHttpsOptions(serve);
  addLimitOptions(serve).action((flags: Record<string, unknown>) =>
    runUntilSignalled(() => runServe(loadConfig(serveConfigSchema, flags), print)),
  );

  const api = program
    .command('api')
    .description('Run the HTTP API (Trove v1.0 + identity) against a shared state database and bus')
    .option('--host <address>', 'address to listen on (env COFFER_HOST)')
    .option('--port <port>', 'port to listen on, default 8779 (env COFFER_PORT)')
    .option('--public-url <url>', 'URL clients reach the API at (env COFFER_PUBLIC_URL)')
    .option('--data-dir <dir>', 'where a generated admin password is kept, default ./.coffer')
    .addOption(dbOption())
    .addOption(busOption())
    .addOption(logOption())
    .addOption(configOption());
  addHttpsOptions(api);
  addLimitOptions(api).action((flags: Record<string, unknown>) =>
    runUntilSignalled(() => runApi(loadConfig(apiConfigSchema, flags), print)),
  );

  for (const [name, description, run] of [
    ['taskmanager', 'Run the taskmanager: durable create/delete workflows', runTaskmanager],
    ['conductor', 'Run the conductor: turns guest and agent reports into state', runConductor],
  ] as const) {
    program
      .command(name)
      .description(description)
      .addOption(dbOption())
      .addOption(busOption())
      .addOption(logOption())
      .addOption(configOption())
      .action((flags: Record<string, unknown>) => runUntilSignalled(() => run(loadConfig(workerConfigSchema, flags))));
  }

  const agent = program
    .command('agent')
    .description('Run the compute agent of this host: starts, supervises and re-adopts database processes')
    .option('--data-dir <dir>', 'instance directories, default ./.coffer (env COFFER_DATA_DIR)')
    .option('--agent-host <name>', 'this agent\'s host name, default the machine\'s (env COFFER_AGENT_HOST)')
    .option('--engine-user <user>', 'as root: the unprivileged user that finds engine versions and fills the warm pool (each instance runs as a user of its own), default coffer-db')
    .option('--address-pool <cidr>', 'loopback range for instance addresses, default 127.77.0.0/16')
    .option('--warm-pool-size <n>', 'pre-initialised clusters kept per engine version so creates skip initdb, default 2 (0: off)')
    .option('--engine-bin-dir <engine=dir...>', 'also look for an engine\'s binaries in dir, first, e.g. mysql=/opt/mysql/bin (env COFFER_ENGINE_BIN_DIRS, comma-separated)')
    .addOption(busOption())
    .addOption(logOption())
    .addOption(configOption());
  addCaOptions(agent).action((flags: Record<string, unknown>) => runUntilSignalled(() => runAgent(loadConfig(agentConfigSchema, flags))));

  registerClientCommands(program);
  return program;
}

await buildProgram().parseAsync(process.argv);
