import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';
import { CofferError, parseCidrList } from '../common/index.js';
import { busKeyHowTo } from '../bus/index.js';
import type { ExternalKeystoneOptions } from '../api/index.js';
import { defaultInstancePorts } from '../agent/index.js';
import { engineNames } from '../guest/index.js';
import { backupStorageConfigSchema } from '../backup/index.js';
import { parseListenAddress } from '../metrics/index.js';

// One validated configuration per role. Values come, strongest first, from command-line flags,
// the environment (COFFER_*), a JSON config file (--config or COFFER_CONFIG), then defaults.
// This is the only module that reads the environment; roles get a frozen object.

// Run as root, engines run as an unprivileged user that must reach the instance directories;
// a clone under /root is out of its reach, so root gets the usual system location instead.
export const defaultDataDir = process.getuid?.() === 0 ? '/var/lib/coffer' : '.coffer';

const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info');
const port = z.coerce.number().int().min(1).max(65535);
const loopbackOrAny = z.string().min(1);

/**
 * pre-initialised clusters an agent keeps per engine version, so that a create skips initdb;
 * left out, the agent sizes it from the host (defaultWarmPoolSize in the agent)
 */
const warmPoolSize = z.coerce.number().int().min(0).max(50).optional();

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
  /** the largest volume one instance may ask for, in GB (Trove's max_accepted_volume_size) */
  maxVolumeSize: z.coerce.number().int().min(1).default(10),
  /** requests per minute, per verb and project, counted in each API process's memory */
  rateLimit: z.coerce.number().int().min(0).default(200),
  /** Keystone's lockout_failure_attempts / lockout_duration, and the same per source address (0: off) */
  loginLockoutAttempts: z.coerce.number().int().min(0).default(6),
  loginLockoutSeconds: z.coerce.number().int().min(1).default(1800),
  loginAddressAttempts: z.coerce.number().int().min(0).default(30),
  loginAddressSeconds: z.coerce.number().int().min(1).default(300),
  /** the least a password a user chooses must be (0 and 0: any); plus Keystone's password_regex */
  passwordMinLength: z.coerce.number().int().min(0).max(128).default(10),
  passwordMinClasses: z.coerce.number().int().min(0).max(4).default(2),
  passwordRegex: z
    .string()
    .refine((value) => {
      try {
        new RegExp(value, 'u');
        return true;
      } catch {
        return false;
      }
    }, 'not a valid regular expression')
    .optional(),
  passwordRegexDescription: z.string().optional(),
};

/**
 * An external Keystone in place of the built-in identity (serve and api). Unset keystoneUrl
 * keeps the built-in one. The service user's password may come from a file
 * (--keystone-password-file or COFFER_KEYSTONE_PASSWORD_FILE), never from a flag.
 */
const yesNo = z.preprocess((value) => {
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  return ['true', 'yes', '1', 'on'].includes(v) ? true : ['false', 'no', '0', 'off'].includes(v) ? false : value;
}, z.boolean());
const keystoneSettings = {
  keystoneUrl: z.string().url().optional(),
  keystoneUser: z.string().min(1).optional(),
  keystonePassword: z.string().min(1).optional(),
  keystonePasswordFile: z.string().min(1).optional(),
  keystoneUserDomain: z.string().min(1).default('default'),
  keystoneProject: z.string().min(1).default('service'),
  keystoneProjectDomain: z.string().min(1).default('default'),
  keystoneRegion: z.string().min(1).default('RegionOne'),
  keystoneInterface: z.enum(['public', 'internal', 'admin']).default('internal'),
  /** seconds a validated (or refused) token is taken on trust: keystonemiddleware's token_cache_time */
  keystoneTokenCacheTime: z.coerce.number().int().min(0).default(300),
  keystoneTokenCacheSize: z.coerce.number().int().min(1).default(10_000),
  keystoneRegisterEndpoint: yesNo.default(true),
};

/** Names what an external Keystone still lacks; the built-in identity needs none of it. */
function requireKeystoneCredentials(config: { keystoneUrl?: string | undefined; keystoneUser?: string | undefined; keystonePassword?: string | undefined; keystonePasswordFile?: string | undefined }, ctx: z.RefinementCtx): void {
  if (config.keystoneUrl === undefined) return;
  if (config.keystoneUser === undefined) {
    ctx.addIssue({ code: 'custom', path: ['keystoneUser'], message: 'with --keystone-url, Coffer\'s service user is required: --keystone-user or COFFER_KEYSTONE_USER' });
  }
  if (config.keystonePassword === undefined && config.keystonePasswordFile === undefined) {
    ctx.addIssue({ code: 'custom', path: ['keystonePassword'], message: 'with --keystone-url, the service user\'s password is required: COFFER_KEYSTONE_PASSWORD(_FILE) or --keystone-password-file' });
  }
}

/** PEM files: the CA that signs the instances' certificates (agent), the API's own certificate (api) */
const pemFile = z.string().min(1).optional();
const caFiles = { caCertFile: pemFile, caKeyFile: pemFile };
const httpsFiles = { tlsCertFile: pemFile, tlsKeyFile: pemFile };

/**
 * Where a role serves /metrics, /healthz and /readyz for the operator (host:port); unset: nowhere
 * (the API and serve still answer /healthz and /readyz on their own port, never /metrics).
 */
const metricsAddress = z
  .string()
  .refine((value) => {
    try {
      parseListenAddress(value);
      return true;
    } catch {
      return false;
    }
  }, 'not host:port, e.g. 127.0.0.1:9180 ([::1]:9180 for IPv6)')
  .optional();

const databaseUrl = z
  .string({ error: 'a state database URL is required: --database-url or COFFER_DATABASE_URL (e.g. mysql://root@127.0.0.1/coffer)' })
  .regex(/^(sqlite|mysql|mariadb|postgres|postgresql):/, 'the state database URL must start with sqlite:, mysql://, mariadb:// or postgres://');
const busUrl = z
  .string({ error: 'a bus URL is required: --bus-url or COFFER_BUS_URL (e.g. amqp://coffer:<password>@127.0.0.1/coffer)' })
  .regex(/^amqps?:\/\//, 'the bus URL must be an amqp:// or amqps:// URL');
/** the key every bus message is signed with, the same file on every role of a deployment */
const busKeyFile = z
  .string({ error: `a bus key file is required: --bus-key-file or COFFER_BUS_KEY_FILE; make one with: ${busKeyHowTo}` })
  .min(1);

/**
 * Where backups are stored: `{"driver":"local","dir":"/abs"}`, `{"driver":"swift",...}` or
 * `{"driver":"s3",...}` (src/backup/storage-config.ts), as JSON in --backup-storage or
 * COFFER_BACKUP_STORAGE, or as an object in the config file. Secrets may sit in files it names.
 */
const backupStorage = z
  .preprocess((value, ctx) => {
    if (typeof value !== 'string') return value;
    try {
      return JSON.parse(value) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not JSON: give e.g. {"driver":"local","dir":"/var/lib/coffer/backups"}' });
      return value;
    }
  }, backupStorageConfigSchema)
  .optional();
/** the file holding the master key that wraps each project's backup key: the same on every taskmanager and agent */
const backupMasterKeyFile = z.string().min(1).optional();
const backupSettings = {
  backupStorage,
  /** the container of a backup whose request and strategies name none (Trove's backup_swift_container) */
  backupContainer: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/).default('database_backups'),
};

/** Trove's usage notifications (trove.instance.create, …), to a broker the operator's consumers read; off without a URL */
const notificationSettings = {
  notificationUrl: z.string().regex(/^amqps?:\/\//, 'the notification URL must be an amqp:// or amqps:// URL').optional(),
  /** the payloads' `region` */
  notificationRegion: z.string().min(1).default('RegionOne'),
};

/**
 * Where projects' webhooks may point (comma-separated CIDRs); unset: anywhere but loopback and
 * link-local. Coffer's own endpoints and the instances' address pool are refused either way.
 */
const webhookAllowedCidrs = z
  .preprocess((value, ctx) => {
    if (typeof value !== 'string' && !Array.isArray(value)) return value;
    try {
      return parseCidrList(value as string | string[]);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return value;
    }
  }, z.array(z.string()))
  .optional();
/** the instances' address range: the agents' --address-pool, which webhooks may not reach */
const addressPool = z.string().default('127.77.0.0/16');
/**
 * The agent's instance addressing (serve, agent): without a host address each instance gets a
 * loopback address of its own from --address-pool and the engine's standard port; with one,
 * every instance listens on that address with ports of its own from --instance-ports.
 */
const instanceAddressing = {
  hostAddress: z
    .string()
    .refine((value) => isIPv4(value) && value !== '0.0.0.0', "give one IPv4 address of this host, e.g. 192.0.2.10")
    .optional(),
  instancePorts: z
    .string()
    .regex(/^\d{1,5}-\d{1,5}$/, 'use from-to, e.g. 30000-32767')
    .default(defaultInstancePorts),
};

export const serveConfigSchema = z.object({
  host: loopbackOrAny.default('127.0.0.1'),
  port: port.default(8779),
  dataDir: z.string().default(defaultDataDir),
  publicUrl: z.string().url().optional(),
  adminPassword: z.string().min(8).optional(),
  engineUser: z.string().default('coffer-db'),
  addressPool,
  ...instanceAddressing,
  warmPoolSize,
  engineBinDir,
  ...caFiles,
  ...httpsFiles,
  webhookAllowedCidrs,
  ...apiLimits,
  ...keystoneSettings,
  ...backupSettings,
  backupMasterKeyFile,
  ...notificationSettings,
  metricsAddress,
  logLevel,
}).superRefine(requireKeystoneCredentials);

export const apiConfigSchema = z.object({
  host: loopbackOrAny.default('127.0.0.1'),
  port: port.default(8779),
  publicUrl: z.string().url().optional(),
  databaseUrl,
  busUrl,
  busKeyFile,
  /** where a generated admin password is kept (mode 0600) */
  dataDir: z.string().default(defaultDataDir),
  adminPassword: z.string().min(8).optional(),
  ...httpsFiles,
  webhookAllowedCidrs,
  addressPool,
  ...apiLimits,
  ...keystoneSettings,
  ...backupSettings,
  metricsAddress,
  logLevel,
  /** API processes sharing the port (Trove's api_workers); 1: this process serves alone */
  apiWorkers: z.coerce.number().int().min(1).max(64).default(1),
}).superRefine(requireKeystoneCredentials);

/** the taskmanager and the conductor; only the taskmanager reads the backup settings */
export const workerConfigSchema = z.object({
  databaseUrl,
  busUrl,
  busKeyFile,
  ...backupSettings,
  backupMasterKeyFile,
  /** what a backup schedule's run counts against, as the API's quota check does */
  maxBackupsPerTenant: apiLimits.maxBackupsPerTenant,
  ...notificationSettings,
  webhookAllowedCidrs,
  addressPool,
  /** the API's URL (taskmanager): webhooks may not point at it */
  publicUrl: z.string().url().optional(),
  metricsAddress,
  logLevel,
});

export const agentConfigSchema = z.object({
  busUrl,
  busKeyFile,
  dataDir: z.string().default(defaultDataDir),
  agentHost: z.string().regex(/^[A-Za-z0-9._-]+$/).optional(),
  engineUser: z.string().default('coffer-db'),
  addressPool: z.string().default('127.77.0.0/16'),
  ...instanceAddressing,
  warmPoolSize,
  engineBinDir,
  ...caFiles,
  backupStorage,
  backupMasterKeyFile,
  metricsAddress,
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
  busKeyFile: 'COFFER_BUS_KEY_FILE',
  adminPassword: 'COFFER_ADMIN_PASSWORD',
  engineUser: 'COFFER_ENGINE_USER',
  addressPool: 'COFFER_ADDRESS_POOL',
  hostAddress: 'COFFER_HOST_ADDRESS',
  instancePorts: 'COFFER_INSTANCE_PORTS',
  agentHost: 'COFFER_AGENT_HOST',
  warmPoolSize: 'COFFER_WARM_POOL_SIZE',
  engineBinDir: 'COFFER_ENGINE_BIN_DIRS',
  maxInstancesPerTenant: 'COFFER_MAX_INSTANCES_PER_TENANT',
  maxRamPerTenant: 'COFFER_MAX_RAM_PER_TENANT',
  maxVolumesPerTenant: 'COFFER_MAX_VOLUMES_PER_TENANT',
  maxBackupsPerTenant: 'COFFER_MAX_BACKUPS_PER_TENANT',
  maxVolumeSize: 'COFFER_MAX_VOLUME_SIZE',
  rateLimit: 'COFFER_RATE_LIMIT',
  keystoneUrl: 'COFFER_KEYSTONE_URL',
  keystoneUser: 'COFFER_KEYSTONE_USER',
  keystonePassword: 'COFFER_KEYSTONE_PASSWORD',
  keystoneUserDomain: 'COFFER_KEYSTONE_USER_DOMAIN',
  keystoneProject: 'COFFER_KEYSTONE_PROJECT',
  keystoneProjectDomain: 'COFFER_KEYSTONE_PROJECT_DOMAIN',
  keystoneRegion: 'COFFER_KEYSTONE_REGION',
  keystoneInterface: 'COFFER_KEYSTONE_INTERFACE',
  keystoneTokenCacheTime: 'COFFER_KEYSTONE_TOKEN_CACHE_TIME',
  keystoneTokenCacheSize: 'COFFER_KEYSTONE_TOKEN_CACHE_SIZE',
  keystoneRegisterEndpoint: 'COFFER_KEYSTONE_REGISTER_ENDPOINT',
  loginLockoutAttempts: 'COFFER_LOGIN_LOCKOUT_ATTEMPTS',
  loginLockoutSeconds: 'COFFER_LOGIN_LOCKOUT_SECONDS',
  loginAddressAttempts: 'COFFER_LOGIN_ADDRESS_ATTEMPTS',
  loginAddressSeconds: 'COFFER_LOGIN_ADDRESS_SECONDS',
  passwordMinLength: 'COFFER_PASSWORD_MIN_LENGTH',
  passwordMinClasses: 'COFFER_PASSWORD_MIN_CLASSES',
  passwordRegex: 'COFFER_PASSWORD_REGEX',
  passwordRegexDescription: 'COFFER_PASSWORD_REGEX_DESCRIPTION',
  caCertFile: 'COFFER_CA_CERT_FILE',
  caKeyFile: 'COFFER_CA_KEY_FILE',
  tlsCertFile: 'COFFER_TLS_CERT_FILE',
  tlsKeyFile: 'COFFER_TLS_KEY_FILE',
  backupStorage: 'COFFER_BACKUP_STORAGE',
  backupMasterKeyFile: 'COFFER_BACKUP_MASTER_KEY_FILE',
  backupContainer: 'COFFER_BACKUP_CONTAINER',
  notificationUrl: 'COFFER_NOTIFICATION_URL',
  notificationRegion: 'COFFER_NOTIFICATION_REGION',
  metricsAddress: 'COFFER_METRICS_ADDRESS',
  webhookAllowedCidrs: 'COFFER_WEBHOOK_ALLOWED_CIDRS',
  logLevel: 'COFFER_LOG_LEVEL',
  apiWorkers: 'COFFER_API_WORKERS',
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

/** The external Keystone settings of a serve or api config, or undefined for the built-in identity. */
export function keystoneOptionsOf(config: ServeConfig | ApiConfig): ExternalKeystoneOptions | undefined {
  if (config.keystoneUrl === undefined || config.keystoneUser === undefined) return undefined;
  const passwordFile = config.keystonePasswordFile;
  const password =
    config.keystonePassword ?? (passwordFile === undefined ? undefined : readSecretFile(passwordFile, 'the Keystone password file'));
  if (password === undefined) return undefined;
  return {
    url: config.keystoneUrl,
    username: config.keystoneUser,
    password,
    userDomainId: config.keystoneUserDomain,
    projectName: config.keystoneProject,
    projectDomainId: config.keystoneProjectDomain,
    region: config.keystoneRegion,
    interface: config.keystoneInterface,
    cacheSeconds: config.keystoneTokenCacheTime,
    cacheSize: config.keystoneTokenCacheSize,
    registerEndpoint: config.keystoneRegisterEndpoint,
  };
}

function readSecretFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new CofferError('BadRequest', `Cannot read ${what} ${path}: ${(err as Error).message}`);
  }
}
