import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { CofferError } from '../common/index.js';
import { engineNames } from '../guest/index.js';

// One validated configuration per role. Values come, strongest first, from command-line flags,
// the environment (COFFER_*), a JSON config file (--config or COFFER_CONFIG), then defaults.
// This is the only module that reads the environment; roles get a frozen object.

// Run as root, engines run as an unprivileged user that must reach the instance directories;
// a clone under /root is out of its reach, so root gets the usual system location instead.
const defaultDataDir = process.getuid?.() === 0 ? '/var/lib/coffer' : '.coffer';

const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info');
const port = z.coerce.number().int().min(1).max(65535);
const loopbackOrAny = z.string().min(1);

/** pre-initialised clusters an agent keeps per engine version, so that a create skips initdb */
const warmPoolSize = z.coerce.number().int().min(0).max(50).default(2);

/**
 * Extra directories searched first for an engine's binaries, per engine: `mysql=/opt/mysql/bin`
 * (repeatable flag, or comma-separated in the environment) or `"engineBinDir": {"mysql": ["/opt/mysql/bin"]}` in
 * the config file. How a MySQL server, which Debian does not ship, is made available.
 */
const engineBinDir = z
  .preprocess((value, ctx) => {
    if (typeof value === 'string') value = value.split(',');
    if (!Array.isArray(value)) return value;
    const dirs: Record<string, string[]> = {};
    for (const entry of value) {
      const [engine, dir] = String(entry).split(/=(.*)/s, 2).map((part) => part.trim());
      if (!engine || !dir) {
        ctx.addIssue({ code: 'custom', message: `"${String(entry)}" is not <engine>=<directory>, e.g. mysql=/opt/mysql/bin` });
        return value;
      }
      (dirs[engine] ??= []).push(dir);
    }
    return dirs;
  }, z.partialRecord(z.enum(engineNames), z.array(z.string().min(1))))
  .default({});

/** Trove's per-project quota defaults (max_*_per_tenant; -1 unlimited) and its rate limit (0: off). */
const quotaLimit = z.coerce.number().int().min(-1);
const apiLimits = {
  maxInstancesPerTenant: quotaLimit.default(10),
  maxRamPerTenant: quotaLimit.default(-1),
  maxVolumesPerTenant: quotaLimit.default(40),
  maxBackupsPerTenant: quotaLimit.default(50),
  /** requests per minute, per verb and project, counted in each API process's memory */
  rateLimit: z.coerce.number().int().min(0).default(200),
};

/** PEM files: the CA that signs the instances' certificates (agent), the API's own certificate (api) */
const pemFile = z.string().min(1).optional();
const caFiles = { caCertFile: pemFile, caKeyFile: pemFile };
const httpsFiles = { tlsCertFile: pemFile, tlsKeyFile: pemFile };

const databaseUrl = z
  .string({ error: 'a state database URL is required: --database-url or COFFER_DATABASE_URL (e.g. mysql://root@127.0.0.1/coffer)' })
  .regex(/^(sqlite|mysql|mariadb|postgres|postgresql):/, 'the state database URL must start with sqlite:, mysql://, mariadb:// or postgres://');
const busUrl = z
  .string({ error: 'a bus URL is required: --bus-url or COFFER_BUS_URL (e.g. amqp://guest:guest@127.0.0.1)' })
  .regex(/^amqps?:\/\//, 'the bus URL must be an amqp:// or amqps:// URL');

export const serveConfigSchema = z.object({
  host: loopbackOrAny.default('127.0.0.1'),
  port: port.default(8779),
  dataDir: z.string().default(defaultDataDir),
  publicUrl: z.string().url().optional(),
  adminPassword: z.string().min(8).optional(),
  engineUser: z.string().default('coffer-db'),
  addressPool: z.string().default('127.77.0.0/16'),
  warmPoolSize,
  engineBinDir,
  ...caFiles,
  ...httpsFiles,
  ...apiLimits,
  logLevel,
});

export const apiConfigSchema = z.object({
  host: loopbackOrAny.default('127.0.0.1'),
  port: port.default(8779),
  publicUrl: z.string().url().optional(),
  databaseUrl,
  busUrl,
  /** where a generated admin password is kept (mode 0600) */
  dataDir: z.string().default(defaultDataDir),
  adminPassword: z.string().min(8).optional(),
  ...httpsFiles,
  ...apiLimits,
  logLevel,
});

export const workerConfigSchema = z.object({ databaseUrl, busUrl, logLevel });

export const agentConfigSchema = z.object({
  busUrl,
  dataDir: z.string().default(defaultDataDir),
  agentHost: z.string().regex(/^[A-Za-z0-9._-]+$/).optional(),
  engineUser: z.string().default('coffer-db'),
  addressPool: z.string().default('127.77.0.0/16'),
  warmPoolSize,
  engineBinDir,
  ...caFiles,
  logLevel,
});

export type ServeConfig = Readonly<z.output<typeof serveConfigSchema>>;
export type ApiConfig = Readonly<z.output<typeof apiConfigSchema>>;
export type WorkerConfig = Readonly<z.output<typeof workerConfigSchema>>;
export type AgentConfig = Readonly<z.output<typeof agentConfigSchema>>;

const envNames: Record<string, string> = {
  host: 'COFFER_HOST',
  port: 'COFFER_PORT',
  dataDir: 'COFFER_DATA_DIR',
  publicUrl: 'COFFER_PUBLIC_URL',
  databaseUrl: 'COFFER_DATABASE_URL',
  busUrl: 'COFFER_BUS_URL',
  adminPassword: 'COFFER_ADMIN_PASSWORD',
  engineUser: 'COFFER_ENGINE_USER',
  addressPool: 'COFFER_ADDRESS_POOL',
  agentHost: 'COFFER_AGENT_HOST',
  warmPoolSize: 'COFFER_WARM_POOL_SIZE',
  engineBinDir: 'COFFER_ENGINE_BIN_DIRS',
  maxInstancesPerTenant: 'COFFER_MAX_INSTANCES_PER_TENANT',
  maxRamPerTenant: 'COFFER_MAX_RAM_PER_TENANT',
  maxVolumesPerTenant: 'COFFER_MAX_VOLUMES_PER_TENANT',
  maxBackupsPerTenant: 'COFFER_MAX_BACKUPS_PER_TENANT',
  rateLimit: 'COFFER_RATE_LIMIT',
  caCertFile: 'COFFER_CA_CERT_FILE',
  caKeyFile: 'COFFER_CA_KEY_FILE',
  tlsCertFile: 'COFFER_TLS_CERT_FILE',
  tlsKeyFile: 'COFFER_TLS_KEY_FILE',
  logLevel: 'COFFER_LOG_LEVEL',
};

/** Secrets may also come from a file named by <ENV>_FILE, so they stay out of the process list. */
function fromEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, name] of Object.entries(envNames)) {
    const direct = env[name];
    const file = env[`${name}_FILE`];
    if (direct !== undefined && direct !== '') out[key] = direct;
    else if (file !== undefined && file !== '') out[key] = readFileSync(file, 'utf8').trim();
  }
  return out;
}

function fromFile(path: string | undefined): Record<string, unknown> {
  if (path === undefined) return {};
  try {
    const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as Record<string, unknown>;
  } catch (err) {
    throw new CofferError('BadRequest', `Cannot read config file ${path}: ${(err as Error).message}`);
  }
}

export function loadConfig<S extends z.ZodType>(
  schema: S,
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): Readonly<z.output<S>> {
  const definedFlags = Object.fromEntries(Object.entries(flags).filter(([k, v]) => v !== undefined && k !== 'config'));
  const file = fromFile((flags['config'] as string | undefined) ?? env['COFFER_CONFIG']);
  const merged = { ...file, ...fromEnv(env), ...definedFlags };
  const result = schema.safeParse(merged);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`).join('; ');
    throw new CofferError('BadRequest', `Invalid configuration: ${problems}`);
  }
  const config = result.data as Record<string, unknown>;
  if (typeof config['dataDir'] === 'string') config['dataDir'] = resolve(config['dataDir']);
  return Object.freeze(config) as Readonly<z.output<S>>;
}
