import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { buildApiServer, seedFlavors } from '../api/index.js';
import { startAgent } from '../agent/index.js';
import { connectTransport, InProcessTransport } from '../bus/index.js';
import type { Transport } from '../bus/index.js';
import { CofferError, createLogger, type Logger } from '../common/index.js';
import { startConductor } from '../conductor/index.js';
import { openStateStore, type StateStore } from '../db/index.js';
import { startTaskmanager } from '../taskmanager/index.js';
import { bootstrapAdmin } from './admin-password.js';
import { secureDataDir } from './data-dir.js';
import type { AgentConfig, ApiConfig, ServeConfig, WorkerConfig } from './config.js';

// Each function wires one role (or, for serve, all of them) from a validated config and returns
// a stop function. Stopping a role never stops the database engines: they outlive the agent.

export type Stop = () => Promise<void>;

/** Two files named together or not at all: a certificate without its key (or the reverse) is a mistake. */
function filePair(cert: string | undefined, key: string | undefined, names: [string, string]): { certFile: string; keyFile: string } | undefined {
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) {
    throw new CofferError('BadRequest', `${names[0]} and ${names[1]} go together: give both or neither.`);
  }
  return { certFile: resolve(cert), keyFile: resolve(key) };
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

async function listenApi(
  store: StateStore,
  transport: Transport,
  logger: Logger,
  config: ApiConfig | ServeConfig,
) {
  const https = httpsMaterial(config);
  const publicUrl = config.publicUrl ?? `${https === undefined ? 'http' : 'https'}://${config.host}:${config.port}`;
  const app = await buildApiServer({
    ...(https === undefined ? {} : { https }),
    store,
    transport,
    logger,
    publicUrl,
    quotaDefaults: {
      instances: config.maxInstancesPerTenant,
      ram: config.maxRamPerTenant,
      backups: config.maxBackupsPerTenant,
      volumes: config.maxVolumesPerTenant,
    },
    rateLimitPerMinute: config.rateLimit,
  });
  await seedFlavors(store);
  await app.listen({ host: config.host, port: config.port });
  return { app, publicUrl };
}

export async function runServe(config: ServeConfig, print: (line: string) => void): Promise<Stop> {
  await secureDataDir(config.dataDir, { serve: true });
  const logger = createLogger({ name: 'coffer', level: config.logLevel, file: join(config.dataDir, 'coffer.log') });
  const store = await openStateStore(`sqlite:${join(config.dataDir, 'coffer.sqlite')}`, { logger });
  const transport = new InProcessTransport();
  const conductor = await startConductor({ store, transport, logger: logger.child({ role: 'conductor' }) });
  const agent = await startAgent({
    host: 'local',
    dataDir: config.dataDir,
    transport,
    logger: logger.child({ role: 'agent' }),
    engineUser: config.engineUser,
    addressPool: config.addressPool,
    warmPoolSize: config.warmPoolSize,
    binaries: config.engineBinDir,
    ca: operatorCa(config),
  });
  const taskmanager = await startTaskmanager({ store, transport, logger: logger.child({ role: 'taskmanager' }) });
  await bootstrapAdmin(store, config.dataDir, config.adminPassword, print);
  const { app, publicUrl } = await listenApi(store, transport, logger.child({ role: 'api' }), config);
  print(`Coffer is serving the Trove API on ${publicUrl} (identity: ${publicUrl}/identity/v3)`);
  print(`Data and logs: ${config.dataDir}`);
  print(`Next: ./bin/coffer login --url ${publicUrl} --user admin --project admin`);
  return async () => {
    await app.close();
    await taskmanager.stop();
    await agent.stop();
    await conductor.stop();
    await transport.close();
    await store.close();
  };
}

export async function runApi(config: ApiConfig, print: (line: string) => void): Promise<Stop> {
  const logger = createLogger({ name: 'coffer-api', level: config.logLevel });
  const store = await openStateStore(config.databaseUrl, { logger });
  const transport = await connectTransport(config.busUrl, { logger });
  await bootstrapAdmin(store, config.dataDir, config.adminPassword, print);
  const { app, publicUrl } = await listenApi(store, transport, logger, config);
  logger.info({ publicUrl }, 'api listening');
  return async () => {
    await app.close();
    await transport.close();
    await store.close();
  };
}

/** A worker role: state database + bus, nothing listening. */
async function runWorker(
  name: 'taskmanager' | 'conductor',
  config: WorkerConfig,
  startRole: (deps: { store: StateStore; transport: Transport; logger: Logger }) => Promise<{ stop: Stop }>,
): Promise<Stop> {
  const logger = createLogger({ name: `coffer-${name}`, level: config.logLevel });
  const store = await openStateStore(config.databaseUrl, { logger });
  const transport = await connectTransport(config.busUrl, { logger });
  const role = await startRole({ store, transport, logger });
  logger.info(`${name} running`);
  return async () => {
    await role.stop();
    await transport.close();
    await store.close();
  };
}

export const runTaskmanager = (config: WorkerConfig): Promise<Stop> => runWorker('taskmanager', config, startTaskmanager);
export const runConductor = (config: WorkerConfig): Promise<Stop> => runWorker('conductor', config, startConductor);

export async function runAgent(config: AgentConfig): Promise<Stop> {
  await secureDataDir(config.dataDir, { serve: false });
  const logger = createLogger({ name: 'coffer-agent', level: config.logLevel });
  const transport = await connectTransport(config.busUrl, { logger });
  const agent = await startAgent({
    host: config.agentHost ?? hostname(),
    dataDir: config.dataDir,
    transport,
    logger,
    engineUser: config.engineUser,
    addressPool: config.addressPool,
    warmPoolSize: config.warmPoolSize,
    binaries: config.engineBinDir,
    ca: operatorCa(config),
  });
  logger.info({ host: agent.host }, 'agent running');
  return async () => {
    await agent.stop();
    await transport.close();
  };
}
