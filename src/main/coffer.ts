#!/usr/bin/env node
// The `coffer` command: one binary for every role (serve, api, taskmanager, conductor, agent)
// and for the client commands (login, instance ...), which talk to the API over HTTP.
import { Command, Option } from 'commander';
import { defaultInstancePorts } from '../agent/index.js';
import { registerClientCommands } from '../cli/index.js';
import { CofferError } from '../common/index.js';
import {
  agentConfigSchema,
  apiConfigSchema,
  defaultDataDir,
  loadConfig,
  serveConfigSchema,
  workerConfigSchema,
} from './config.js';
import { runAgent, runApi, runConductor, runServe, runTaskmanager, type Stop } from './roles.js';

const print = (line: string) => process.stdout.write(`${line}\n`);

const dataDirDefaultText = defaultDataDir === '.coffer' ? './.coffer (/var/lib/coffer when run as root)' : `${defaultDataDir} (run as root; ./.coffer otherwise)`;

/**
 * Runs a role until SIGINT/SIGTERM, then stops it cleanly (database engines keep running).
 * `start` may return a note for the operator, printed once the role has stopped.
 */
async function runUntilSignalled(start: () => Promise<Stop | { stop: Stop; stoppedNote: string }>): Promise<void> {
  let stop: Stop;
  let stoppedNote: string | undefined;
  try {
    const started = await start();
    if (typeof started === 'function') stop = started;
    else ({ stop, stoppedNote } = started);
  } catch (err) {
    const message = err instanceof CofferError ? err.message : err instanceof Error ? err.message : String(err);
    process.stderr.write(`coffer: ${message}\n`);
    process.exit(1);
  }
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    if (stoppedNote !== undefined) print(`\nStopping Coffer (${signal}) ...`);
    stop().then(
      () => {
        if (stoppedNote !== undefined) print(stoppedNote);
        process.exit(0);
      },
      (err: unknown) => {
        process.stderr.write(`coffer: error while stopping after ${signal}: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/**
 * What a stopped `serve` or `agent` leaves behind: its engines, on purpose (restarting the control
 * plane never stops a database), and how to take them back.
 */
function enginesKeepRunningNote(role: 'serve' | 'agent', dataDir: string): string {
  return (
    'Coffer stopped. The database engines of its instances keep running and accept clients.\n' +
    `To manage them again, start \`coffer ${role} --data-dir ${dataDir}\`` +
    (role === 'serve' ? ` (or \`npm start -- --data-dir ${dataDir}\`)` : '') +
    ': it takes them back as they are.\n' +
    'To stop an engine for good, delete its instance (`coffer instance delete <name>`) while Coffer runs.'
  );
}

const configOption = () => new Option('--config <file>', 'JSON config file (env COFFER_CONFIG)');
const logOption = () => new Option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (env COFFER_LOG_LEVEL)');
const dbOption = () => new Option('--database-url <url>', 'state database: mysql://, mariadb://, postgres:// or sqlite: URL (env COFFER_DATABASE_URL)');
const busOption = () =>
  new Option('--bus-url <url>', 'RabbitMQ URL with a user and vhost of this deployment\'s own, e.g. amqp://coffer:<password>@127.0.0.1/coffer (env COFFER_BUS_URL)');
const metricsOption = () =>
  new Option(
    '--metrics-address <host:port>',
    'serve /metrics (Prometheus), /healthz and /readyz for the operator on this address, e.g. 127.0.0.1:9180; default none (env COFFER_METRICS_ADDRESS)',
  );
const busKeyOption = () =>
  new Option(
    '--bus-key-file <file>',
    'key that signs every bus message, the same on every role; mode 0600 (make one: head -c 32 /dev/urandom | base64 > bus.key; chmod 600 bus.key) (env COFFER_BUS_KEY_FILE)',
  );

/** Trove's quota defaults and rate limit, for the roles that serve the API. */
function addLimitOptions(command: Command): Command {
  return command
    .option('--max-instances-per-tenant <n>', 'instances per project unless its quota says otherwise, default 10, -1 unlimited (env COFFER_MAX_INSTANCES_PER_TENANT)')
    .option('--max-volumes-per-tenant <gb>', 'total volume GB per project, default 40, -1 unlimited (env COFFER_MAX_VOLUMES_PER_TENANT)')
    .option('--max-backups-per-tenant <n>', 'backups per project, default 50, -1 unlimited (env COFFER_MAX_BACKUPS_PER_TENANT)')
    .option('--max-ram-per-tenant <mb>', 'total flavor RAM MB per project, default -1 unlimited (env COFFER_MAX_RAM_PER_TENANT)')
    .option('--max-volume-size <gb>', 'largest volume one instance may have, default 10 (env COFFER_MAX_VOLUME_SIZE)')
    .option('--rate-limit <n>', 'requests per minute per HTTP verb and project, counted in each API process, default 200, 0 off (env COFFER_RATE_LIMIT)')
    .option('--login-lockout-attempts <n>', 'failed logins in a row that lock a user, default 6, 0 off (env COFFER_LOGIN_LOCKOUT_ATTEMPTS)')
    .option('--login-lockout-seconds <s>', 'how long a locked user stays locked, default 1800 (env COFFER_LOGIN_LOCKOUT_SECONDS)')
    .option('--login-address-attempts <n>', 'failed logins from one source address before it is refused, default 30, 0 off (env COFFER_LOGIN_ADDRESS_ATTEMPTS)')
    .option('--login-address-seconds <s>', 'how long a refused address stays refused, default 300 (env COFFER_LOGIN_ADDRESS_SECONDS)')
    .option('--password-min-length <n>', 'shortest password a user may choose, default 10 (env COFFER_PASSWORD_MIN_LENGTH)')
    .option('--password-min-classes <n>', 'character classes (lower case, upper case, digits, others) a chosen password needs, default 2 (env COFFER_PASSWORD_MIN_CLASSES)')
    .option('--password-regex <regex>', 'a chosen password must also match this, as Keystone\'s password_regex (env COFFER_PASSWORD_REGEX)')
    .option('--password-regex-description <text>', 'what --password-regex asks for, in words, for the refusal message (env COFFER_PASSWORD_REGEX_DESCRIPTION)');
}

/** An external Keystone in place of the built-in identity, for the roles that serve the API. */
function addKeystoneOptions(command: Command): Command {
  return command
    .option('--keystone-url <url>', 'use this Keystone instead of the built-in identity, e.g. http://keystone:5000 (env COFFER_KEYSTONE_URL)')
    .option('--keystone-user <name>', 'Coffer\'s service user in Keystone (env COFFER_KEYSTONE_USER); its password: env COFFER_KEYSTONE_PASSWORD or COFFER_KEYSTONE_PASSWORD_FILE')
    .option('--keystone-password-file <file>', 'file holding the service user\'s password (env COFFER_KEYSTONE_PASSWORD_FILE)')
    .option('--keystone-project <name>', 'the service user\'s project, default service (env COFFER_KEYSTONE_PROJECT)')
    .option('--keystone-user-domain <id>', 'the service user\'s domain id, default default (env COFFER_KEYSTONE_USER_DOMAIN)')
    .option('--keystone-project-domain <id>', 'the project\'s domain id, default default (env COFFER_KEYSTONE_PROJECT_DOMAIN)')
    .option('--keystone-region <region>', 'region of Keystone\'s identity endpoint and of Coffer\'s catalog entry, default RegionOne (env COFFER_KEYSTONE_REGION)')
    .option('--keystone-interface <interface>', 'public|internal|admin: which of Keystone\'s catalog endpoints Coffer calls, default internal (env COFFER_KEYSTONE_INTERFACE)')
    .option('--keystone-token-cache-time <seconds>', 'how long a validated token is trusted without asking Keystone, so also how long a revoked one may still work, default 300, 0 off (env COFFER_KEYSTONE_TOKEN_CACHE_TIME)')
    .option('--keystone-token-cache-size <n>', 'tokens kept in that cache at most, default 10000 (env COFFER_KEYSTONE_TOKEN_CACHE_SIZE)')
    .option('--keystone-register-endpoint <yes|no>', 'register the database service and its endpoints in Keystone\'s catalog at start (needs the admin role), default yes (env COFFER_KEYSTONE_REGISTER_ENDPOINT)');
}

/** Coffer's CA, which signs every instance's certificate, for the roles that run an agent. */
function addCaOptions(command: Command): Command {
  return command
    .option('--ca-cert-file <file>', "the CA certificate (PEM) that signs the instances' TLS certificates; default: Coffer's own, made in <data dir>/ca on first start (env COFFER_CA_CERT_FILE)")
    .option('--ca-key-file <file>', 'the key of --ca-cert-file (PEM); read by the agent only (env COFFER_CA_KEY_FILE)');
}

/**
 * Where backups are stored (every role but the conductor), the master key that wraps projects'
 * keys (the roles that take and restore backups) and the default container (the roles that name one).
 */
function addBackupOptions(command: Command, parts: { key: boolean; container: boolean }): Command {
  command.option(
    '--backup-storage <json>',
    'where backups are stored: {"driver":"local","dir":"/abs/dir"}, {"driver":"swift","authUrl":…,"user":…,"keyFile":…} or {"driver":"s3","endpoint":…,"region":…,"accessKeyId":…,"secretAccessKeyFile":…} (env COFFER_BACKUP_STORAGE)',
  );
  if (parts.key) {
    command.option('--backup-master-key-file <file>', 'the key (32 bytes, mode 0600) that wraps each project\'s backup key; the same file on every taskmanager and agent (env COFFER_BACKUP_MASTER_KEY_FILE)');
  }
  if (parts.container) {
    command.option('--backup-container <name>', 'the container of backups whose request and strategies name none, default database_backups (env COFFER_BACKUP_CONTAINER)');
  }
  return command;
}

/** Trove's usage notifications, for the roles that run the taskmanager. */
function addNotificationOptions(command: Command): Command {
  return command
    .option('--notification-url <amqp-url>', "send Trove's usage notifications (trove.instance.create, .delete, .modify_flavor, .modify_volume) to this broker: exchange trove, routing key notifications.info; default: none sent (env COFFER_NOTIFICATION_URL, or COFFER_NOTIFICATION_URL_FILE)")
    .option('--notification-region <region>', "the notifications' region, default RegionOne (env COFFER_NOTIFICATION_REGION)");
}

/**
 * Where projects' webhooks may point, for the roles that check it (the API at registration, the
 * taskmanager before each attempt). serve has --address-pool already; the others learn the
 * instances' range (and the taskmanager the API's URL) to refuse them.
 */
function addWebhookOptions(command: Command, parts: { addressPool: boolean; publicUrl: boolean }): Command {
  command.option(
    '--webhook-allowed-cidrs <cidrs>',
    "comma-separated ranges projects' webhooks may reach, e.g. 10.20.0.0/16,192.0.2.0/24; default: any address but loopback and link-local. Coffer's own API, bus, state database and metrics addresses and the instances' address pool are refused either way (env COFFER_WEBHOOK_ALLOWED_CIDRS)",
  );
  if (parts.addressPool) command.option('--address-pool <cidr>', "the agents' instance address range, which webhooks may not reach, default 127.77.0.0/16 (env COFFER_ADDRESS_POOL)");
  if (parts.publicUrl) command.option('--public-url <url>', "the API's URL, which webhooks may not reach (env COFFER_PUBLIC_URL)");
  return command;
}

/** HTTPS for the API, for the roles that serve it. */
function addHttpsOptions(command: Command): Command {
  return command
    .option('--tls-cert-file <file>', 'serve the API over HTTPS with this certificate (PEM, chain after it); links then say https (env COFFER_TLS_CERT_FILE)')
    .option('--tls-key-file <file>', 'the key of --tls-cert-file (PEM) (env COFFER_TLS_KEY_FILE)');
}

function buildProgram(): Command {
  const program = new Command('coffer')
    .description('Coffer: database instances as a service (PostgreSQL, MariaDB, MySQL, Redis), behind the OpenStack Trove v1.0 API')
    .showHelpAfterError('(run with --help for usage)');

  const serve = program
    .command('serve')
    .description('Run every role in one process: SQLite state, in-process bus, local compute (no other server needed)')
    .option('--host <address>', 'address to listen on (env COFFER_HOST)', undefined)
    .option('--port <port>', 'port to listen on, default 8779 (env COFFER_PORT)')
    .option('--data-dir <dir>', `state, instances and logs, default ${dataDirDefaultText} (env COFFER_DATA_DIR)`)
    .option('--public-url <url>', 'URL clients reach the API at (env COFFER_PUBLIC_URL)')
    .option('--engine-user <user>', 'as root: the unprivileged user that finds engine versions and fills the warm pool (each instance runs as a user of its own), default coffer-db')
    .option('--address-pool <cidr>', 'loopback range for instance addresses, default 127.77.0.0/16 (env COFFER_ADDRESS_POOL)')
    .option('--host-address <ip>', "this host's IPv4 address: every instance listens on it with ports of its own from --instance-ports, instead of on a loopback address of its own with the engine's standard port (env COFFER_HOST_ADDRESS)")
    .option('--instance-ports <from-to>', `the instances' ports with --host-address, default ${defaultInstancePorts} (env COFFER_INSTANCE_PORTS)`)
    .option('--warm-pool-size <n>', 'pre-initialised clusters kept per engine version so creates skip initdb, and as root as many instance OS users made ahead; default 10 (a burst of ten creates) or 4 per core where more, at most 1 per GiB of memory and 1 per GiB of free disk, from 2 to 16 (0: off)')
    .option('--engine-bin-dir <engine=dir...>', 'also look for an engine\'s binaries in dir, first, e.g. mysql=/opt/mysql/bin (env COFFER_ENGINE_BIN_DIRS, comma-separated)')
    .addOption(metricsOption())
    .addOption(logOption())
    .addOption(configOption());
  addCaOptions(serve);
  addHttpsOptions(serve);
  // serve's defaults: <data dir>/backups and <data dir>/backup-master.key, made on first start
  addBackupOptions(serve, { key: true, container: true });
  addNotificationOptions(serve);
  addWebhookOptions(serve, { addressPool: false, publicUrl: false });
  addKeystoneOptions(addLimitOptions(serve)).action((flags: Record<string, unknown>) =>
    runUntilSignalled(async () => {
      const config = loadConfig(serveConfigSchema, flags);
      return { stop: await runServe(config, print), stoppedNote: enginesKeepRunningNote('serve', config.dataDir) };
    }),
  );

  const api = program
    .command('api')
    .description('Run the HTTP API (Trove v1.0 + identity) against a shared state database and bus')
    .option('--host <address>', 'address to listen on (env COFFER_HOST)')
    .option('--port <port>', 'port to listen on, default 8779 (env COFFER_PORT)')
    .option('--public-url <url>', 'URL clients reach the API at (env COFFER_PUBLIC_URL)')
    .option('--data-dir <dir>', 'where the generated admin password is kept (the file admin-password, nothing else), default ./.coffer, /var/lib/coffer as root (env COFFER_DATA_DIR)')
    .option('--api-workers <n>', "API processes sharing the port, as Trove's api_workers, e.g. one per core; each counts its own rate limits and serves its metrics on --metrics-address's port + its index; default 1 (env COFFER_API_WORKERS)")
    .addOption(dbOption())
    .addOption(busOption())
    .addOption(busKeyOption())
    .addOption(metricsOption())
    .addOption(logOption())
    .addOption(configOption());
  addHttpsOptions(api);
  addWebhookOptions(api, { addressPool: true, publicUrl: false });
  addBackupOptions(api, { key: false, container: true });
  addKeystoneOptions(addLimitOptions(api)).action((flags: Record<string, unknown>) =>
    runUntilSignalled(() => runApi(loadConfig(apiConfigSchema, flags), print)),
  );

  for (const [name, description, run] of [
    ['taskmanager', "Run the taskmanager: durable workflows (create, delete, resize, configuration, backups), backup schedules and projects' webhooks", runTaskmanager],
    ['conductor', 'Run the conductor: turns guest and agent reports into state', runConductor],
  ] as const) {
    const worker = program
      .command(name)
      .description(description)
      .addOption(dbOption())
      .addOption(busOption())
      .addOption(busKeyOption())
      .addOption(metricsOption())
      .addOption(logOption())
      .addOption(configOption());
    if (name === 'taskmanager') {
      // backup schedules start their backups here, with the API's container and quota
      addBackupOptions(worker, { key: true, container: true });
      worker.option('--max-backups-per-tenant <n>', 'backups per project, counted when a backup schedule runs: give the API\'s value, default 50, -1 unlimited (env COFFER_MAX_BACKUPS_PER_TENANT)');
      addNotificationOptions(worker);
      addWebhookOptions(worker, { addressPool: true, publicUrl: true });
    }
    worker.action((flags: Record<string, unknown>) => runUntilSignalled(() => run(loadConfig(workerConfigSchema, flags))));
  }

  const agent = program
    .command('agent')
    .description('Run the compute agent of this host: starts, supervises and re-adopts database processes')
    .option('--data-dir <dir>', `instance directories, default ${dataDirDefaultText} (env COFFER_DATA_DIR)`)
    .option('--agent-host <name>', 'this agent\'s host name, default the machine\'s (env COFFER_AGENT_HOST)')
    .option('--engine-user <user>', 'as root: the unprivileged user that finds engine versions and fills the warm pool (each instance runs as a user of its own), default coffer-db')
    .option('--address-pool <cidr>', 'loopback range for instance addresses, default 127.77.0.0/16 (env COFFER_ADDRESS_POOL)')
    .option('--host-address <ip>', "this host's IPv4 address: every instance listens on it with ports of its own from --instance-ports, instead of on a loopback address of its own with the engine's standard port (env COFFER_HOST_ADDRESS)")
    .option('--instance-ports <from-to>', `the instances' ports with --host-address, default ${defaultInstancePorts} (env COFFER_INSTANCE_PORTS)`)
    .option('--warm-pool-size <n>', 'pre-initialised clusters kept per engine version so creates skip initdb, and as root as many instance OS users made ahead; default 10 (a burst of ten creates) or 4 per core where more, at most 1 per GiB of memory and 1 per GiB of free disk, from 2 to 16 (0: off)')
    .option('--engine-bin-dir <engine=dir...>', 'also look for an engine\'s binaries in dir, first, e.g. mysql=/opt/mysql/bin (env COFFER_ENGINE_BIN_DIRS, comma-separated)')
    .addOption(busOption())
    .addOption(busKeyOption())
    .addOption(metricsOption())
    .addOption(logOption())
    .addOption(configOption());
  addBackupOptions(addCaOptions(agent), { key: true, container: false })
    .action((flags: Record<string, unknown>) =>
      runUntilSignalled(async () => {
        const config = loadConfig(agentConfigSchema, flags);
        return { stop: await runAgent(config), stoppedNote: enginesKeepRunningNote('agent', config.dataDir) };
      }),
    );

  registerClientCommands(program);
  return program;
}

await buildProgram().parseAsync(process.argv);
