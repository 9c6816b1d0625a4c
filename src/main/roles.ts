import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { buildApiServer, connectKeystone, serviceApiStatus, scheduledBackupStarter, scheduledVerificationStarter, seedFlavors, type ExternalIdentity } from '../api/index.js';
import { startAgent } from '../agent/index.js';
import { BusKey, connectTransport, ObservedTransport, OsloNotifier } from '../bus/index.js';
import type { Transport } from '../bus/index.js';
import type { BackupStorage } from '../backup/index.js';
import { CofferError, createLogger, redactUrl, type Logger } from '../common/index.js';
import { startConductor } from '../conductor/index.js';
import { openStateStore, type StateStore } from '../db/index.js';
import { CofferMetrics, parseListenAddress, roleReadiness, startMetricsListener, type MetricsListener, type Readiness } from '../metrics/index.js';
import { startTaskmanager } from '../taskmanager/index.js';
import { bootstrapAdmin } from './admin-password.js';
import { announceApiListening, apiWorkerIndex, runApiWorkers } from './api-workers.js';
import { apiBackupStorage, roleBackups, serveBackups, type RoleBackups } from './backup-setup.js';
import { readBusKeyFile } from './bus-key-file.js';
import { startupWarnings } from './startup-warnings.js';
import { webhookGuard } from './webhook-guard.js';
import { secureDataDir } from './data-dir.js';
import { keystoneOptionsOf, type AgentConfig, type ApiConfig, type ServeConfig, type WorkerConfig } from './config.js';

// Each function wires one role (or, for serve, all of them) from a validated config and returns
// a stop function. Stopping a role never stops the database engines: they outlive the agent.

export type Stop = () => Promise<void>;

/** Webhooks name a status as the API shows it (RUNNING as ACTIVE). */
const apiStatusName = (status: string): string => (serviceApiStatus as Record<string, string>)[status] ?? status;

/** Two files named together or not at all: a certificate without its key (or the reverse) is a mistake. */
function filePair(cert: string | undefined, key: string | undefined, names: [string, string]): { certFile: string; keyFile: string } | undefined {
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) {
    throw new CofferError('BadRequest', `${names[0]} and ${names[1]} go together: give both or neither.`);
  }
  return { certFile: resolve(cert), keyFile: resolve(key) };
}

/** Trove's usage notifications, when the config names a broker for them. */
function usageNotifications(config: WorkerConfig | ServeConfig, logger: Logger) {
  if (config.notificationUrl === undefined) return undefined;
  logger.info({ broker: redactUrl(config.notificationUrl) }, "Trove's usage notifications go to this broker (exchange trove, routing key notifications.info)");
  const publisher = new OsloNotifier({ url: config.notificationUrl, publisherId: `taskmanager.${hostname()}`, logger: logger.child({ role: 'notifications' }) });
  return { publisher, region: config.notificationRegion };
}

/** The operator's CA for the instances' certificates, when given; else the agent makes its own. */
function operatorCa(config: AgentConfig | ServeConfig) {
  return filePair(config.caCertFile, config.caKeyFile, ['--ca-cert-file', '--ca-key-file']);
}

/** The API's certificate and key (PEM), read once at start, when it serves HTTPS. */
function httpsMaterial(config: ApiConfig | ServeConfig): { cert: string; key: string } | undefined {
  const files = filePair(config.tlsCertFile, config.tlsKeyFile, ['--tls-cert-file', '--tls-key-file']);
  if (files === undefined) return undefined;
  const read = (path: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new CofferError('BadRequest', `Cannot read ${path} for HTTPS: ${(err as Error).message}`);
    }
  };
  return { cert: read(files.certFile), key: read(files.keyFile) };
}

/** The operator's /metrics, /healthz and /readyz, when --metrics-address names where. */
async function metricsListener(
  address: string | undefined,
  metrics: CofferMetrics,
  readiness: Readiness,
  logger: Logger,
  /** an API worker's index (api-workers.ts): its listener takes the port that many above the address's */
  portOffset = 0,
): Promise<MetricsListener | undefined> {
  if (address === undefined) return undefined;
  const parsed = parseListenAddress(address);
  const port = parsed.port === 0 ? 0 : parsed.port + portOffset;
  return startMetricsListener({ address: { ...parsed, port }, metrics, readiness, logger });
}

async function listenApi(
  store: StateStore,
  transport: Transport,
  logger: Logger,
  config: ApiConfig | ServeConfig,
  backupStorage: BackupStorage | undefined,
  observability: { metrics: CofferMetrics; readiness: Readiness },
) {
  const https = httpsMaterial(config);
  const publicUrl = config.publicUrl ?? `${https === undefined ? 'http' : 'https'}://${config.host}:${config.port}`;
  const keystone = keystoneOptionsOf(config);
  const externalIdentity: ExternalIdentity | undefined =
    keystone === undefined ? undefined : await connectKeystone(keystone, publicUrl, logger.child({ component: 'keystone' }));
  const region = keystone?.region;
  const app = await buildApiServer({
    ...(https === undefined ? {} : { https }),
    store,
    transport,
    logger,
    publicUrl,
    ...(externalIdentity === undefined ? {} : { externalIdentity }),
    ...(region === undefined ? {} : { region }),
    quotaDefaults: {
      instances: config.maxInstancesPerTenant,
      ram: config.maxRamPerTenant,
      backups: config.maxBackupsPerTenant,
      volumes: config.maxVolumesPerTenant,
    },
    rateLimitPerMinute: config.rateLimit,
    ...(backupStorage === undefined ? {} : { backupStorage }),
    defaultBackupContainer: config.backupContainer,
    maxVolumeSizeGb: config.maxVolumeSize,
    loginLimits: {
      lockoutAttempts: config.loginLockoutAttempts,
      lockoutSeconds: config.loginLockoutSeconds,
      addressAttempts: config.loginAddressAttempts,
      addressSeconds: config.loginAddressSeconds,
    },
    passwordPolicy: {
      minLength: config.passwordMinLength,
      minClasses: config.passwordMinClasses,
      regex: config.passwordRegex,
      regexDescription: config.passwordRegexDescription,
    },
    readiness: observability.readiness,
    requestObserver: observability.metrics,
    webhookGuard: webhookGuard(config),
  });
  await seedFlavors(store);
  await app.listen({ host: config.host, port: config.port });
  return { app, publicUrl, keystoneUrl: externalIdentity?.url };
}

/** The built-in identity's admin; an external Keystone has its own users. */
async function bootstrapBuiltInAdmin(store: StateStore, config: ApiConfig | ServeConfig, print: (line: string) => void): Promise<void> {
  if (config.keystoneUrl !== undefined) return;
  await bootstrapAdmin(store, config.dataDir, config.adminPassword, print);
}

export async function runServe(config: ServeConfig, print: (line: string) => void): Promise<Stop> {
  await secureDataDir(config.dataDir, { serve: true });
  const logger = createLogger({ name: 'coffer', level: config.logLevel, file: join(config.dataDir, 'coffer.log') });
  const store = await openStateStore(`sqlite:${join(config.dataDir, 'coffer.sqlite')}`, { logger });
  // One registry for every role of the process.
  const metrics = new CofferMetrics();
  // The in-process bus never leaves this process: a key of its own, kept in memory, signs it
  // exactly as a deployment's bus is signed.
  const transport = new ObservedTransport(await connectTransport('memory:', { key: BusKey.generate(), logger }), metrics);
  const readiness = roleReadiness({ stateDatabase: store, bus: transport }, logger);
  const backups = await serveBackups(config, config.dataDir, logger);
  const conductor = await startConductor({ store, transport, logger: logger.child({ role: 'conductor' }) });
  metrics.watchHeartbeats(() => conductor.heartbeats());
  const agent = await startAgent({
    host: 'local',
    dataDir: config.dataDir,
    transport,
    logger: logger.child({ role: 'agent' }),
    engineUser: config.engineUser,
    addressPool: config.addressPool,
    ...(config.hostAddress === undefined ? {} : { hostAddress: config.hostAddress }),
    instancePorts: config.instancePorts,
    warmPoolSize: config.warmPoolSize,
    binaries: config.engineBinDir,
    ca: operatorCa(config),
    backups,
  });
  const notifications = usageNotifications(config, logger);
  metrics.watchWarmPool(agent.host, () => agent.warmPoolSizes());
  metrics.watchAdoption(agent.host, () => agent.adopting().length);
  const taskmanager = await startTaskmanager({
    store,
    transport,
    logger: logger.child({ role: 'taskmanager' }),
    taskObserver: metrics,
    backups,
    ...(notifications === undefined ? {} : { notifications }),
    webhooks: { guard: webhookGuard(config), statusName: apiStatusName },
    backupSchedules: {
      startBackup: scheduledBackupStarter({ store, transport, logger, backupStorage: backups.storage, defaultBackupContainer: config.backupContainer, maxBackupsPerTenant: config.maxBackupsPerTenant }),
      startVerification: scheduledVerificationStarter({ store, transport, logger, backupStorage: backups.storage }),
    },
  });
  await bootstrapBuiltInAdmin(store, config, print);
  const { app, publicUrl, keystoneUrl } = await listenApi(store, transport, logger.child({ role: 'api' }), config, backups.storage, { metrics, readiness });
  const operator = await metricsListener(config.metricsAddress, metrics, readiness, logger);
  print(`Coffer is serving the Trove API on ${publicUrl} (identity: ${keystoneUrl ?? `${publicUrl}/identity`}/v3)`);
  if (operator !== undefined) print(`Metrics for Prometheus: ${operator.url}/metrics`);
  print(`Data and logs: ${config.dataDir}`);
  if (keystoneUrl === undefined) print(`Next: ./bin/coffer login --url ${publicUrl} --user admin --project admin`);
  return async () => {
    await operator?.close();
    await app.close();
    await taskmanager.stop();
    await notifications?.publisher.close();
    await agent.stop();
    await conductor.stop();
    await transport.close();
    await store.close();
    await backups.storage.close();
  };
}

interface DistributedBusConfig {
  busUrl: string;
  busKeyFile: string;
  databaseUrl?: string;
}

/**
 * Reads a distributed role's bus key and names the set-up's open doors, before the role opens
 * anything: a role without a usable key stops before it touches the state database or the bus.
 */
async function prepareBus(config: DistributedBusConfig, logger: Logger, metrics: CofferMetrics): Promise<() => Promise<Transport>> {
  const key = await readBusKeyFile(config.busKeyFile);
  for (const warning of startupWarnings(config)) logger.warn(warning);
  return async () => {
    const transport = await connectTransport(config.busUrl, { key, logger });
    logger.info({ busKeyId: key.id }, 'bus messages are signed; every role of this deployment must show the same busKeyId');
    return new ObservedTransport(transport, metrics);
  };
}

export async function runApi(config: ApiConfig, print: (line: string) => void): Promise<Stop> {
  const logger = createLogger({ name: 'coffer-api', level: config.logLevel });
  const worker = apiWorkerIndex();
  // --api-workers: this process only starts and stops the workers, which serve (api-workers.ts)
  if (config.apiWorkers > 1 && worker === undefined) return runApiWorkers(config.apiWorkers, logger);
  const metrics = new CofferMetrics();
  const openBus = await prepareBus(config, logger, metrics);
  const store = await openStateStore(config.databaseUrl, { logger });
  const transport = await openBus();
  const readiness = roleReadiness({ stateDatabase: store, bus: transport }, logger);
  await bootstrapBuiltInAdmin(store, config, print);
  const backupStorage = apiBackupStorage(config);
  const { app, publicUrl, keystoneUrl } = await listenApi(store, transport, logger, config, backupStorage, { metrics, readiness });
  // each worker counts its own requests: worker k serves its metrics on the address's port + k
  const operator = await metricsListener(config.metricsAddress, metrics, readiness, logger, worker ?? 0);
  logger.info({ publicUrl, keystoneUrl, ...(worker === undefined ? {} : { worker }) }, 'api listening');
  announceApiListening();
  return async () => {
    await operator?.close();
    await app.close();
    await backupStorage?.close();
    await transport.close();
    await store.close();
  };
}

interface WorkerDeps {
  store: StateStore;
  transport: Transport;
  logger: Logger;
  backups?: RoleBackups;
  metrics: CofferMetrics;
}

/** A worker role: state database + bus, nothing listening. */
async function runWorker(name: 'taskmanager' | 'conductor', config: WorkerConfig, startRole: (deps: WorkerDeps) => Promise<{ stop: Stop }>): Promise<Stop> {
  const logger = createLogger({ name: `coffer-${name}`, level: config.logLevel });
  const metrics = new CofferMetrics();
  const openBus = await prepareBus(config, logger, metrics);
  const backups = name === 'taskmanager' ? await roleBackups(config, logger) : undefined;
  const store = await openStateStore(config.databaseUrl, { logger });
  const transport = await openBus();
  const role = await startRole({ store, transport, logger, metrics, ...(backups === undefined ? {} : { backups }) });
  const operator = await metricsListener(config.metricsAddress, metrics, roleReadiness({ stateDatabase: store, bus: transport }, logger), logger);
  logger.info(`${name} running`);
  return async () => {
    await operator?.close();
    await role.stop();
    await transport.close();
    await store.close();
    await backups?.storage.close();
  };
}

export const runTaskmanager = (config: WorkerConfig): Promise<Stop> =>
  runWorker('taskmanager', config, async (deps) => {
    const notifications = usageNotifications(config, deps.logger);
    const taskmanager = await startTaskmanager({
      ...deps,
      ...(notifications === undefined ? {} : { notifications }),
      webhooks: { guard: webhookGuard(config), statusName: apiStatusName },
      taskObserver: deps.metrics,
      backupSchedules: {
        startBackup: scheduledBackupStarter({
          ...deps,
          backupStorage: deps.backups?.storage,
          defaultBackupContainer: config.backupContainer,
          maxBackupsPerTenant: config.maxBackupsPerTenant,
        }),
        startVerification: scheduledVerificationStarter({ ...deps, backupStorage: deps.backups?.storage }),
      },
    });
    return {
      stop: async () => {
        await taskmanager.stop();
        await notifications?.publisher.close();
      },
    };
  });
export const runConductor = (config: WorkerConfig): Promise<Stop> =>
  runWorker('conductor', config, async (deps) => {
    const conductor = await startConductor(deps);
    deps.metrics.watchHeartbeats(() => conductor.heartbeats());
    return conductor;
  });

export async function runAgent(config: AgentConfig): Promise<Stop> {
  const logger = createLogger({ name: 'coffer-agent', level: config.logLevel });
  const metrics = new CofferMetrics();
  const openBus = await prepareBus(config, logger, metrics);
  await secureDataDir(config.dataDir, { serve: false });
  const backups = await roleBackups(config, logger);
  const transport = await openBus();
  const agent = await startAgent({
    host: config.agentHost ?? hostname(),
    dataDir: config.dataDir,
    transport,
    logger,
    engineUser: config.engineUser,
    addressPool: config.addressPool,
    ...(config.hostAddress === undefined ? {} : { hostAddress: config.hostAddress }),
    instancePorts: config.instancePorts,
    warmPoolSize: config.warmPoolSize,
    binaries: config.engineBinDir,
    ca: operatorCa(config),
    ...(backups === undefined ? {} : { backups }),
  });
  metrics.watchWarmPool(agent.host, () => agent.warmPoolSizes());
  metrics.watchAdoption(agent.host, () => agent.adopting().length);
  // The agent keeps no state database: it is ready when its bus answers.
  const readiness = roleReadiness({ bus: transport }, logger);
  const operator = await metricsListener(config.metricsAddress, metrics, readiness, logger);
  logger.info({ host: agent.host }, 'agent running');
  return async () => {
    await operator?.close();
    await agent.stop();
    await transport.close();
    await backups?.storage.close();
  };
}
