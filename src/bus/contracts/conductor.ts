import { z } from 'zod';
import { cast, defineService } from '../contract.js';

export const guestServiceStatus = z.enum([
  'BUILDING',
  'HEALTHY',
  'RUNNING',
  'SHUTDOWN',
  'CRASHED',
  'FAILED',
  'RESTARTING',
  'UNKNOWN',
]);
export type GuestServiceStatus = z.infer<typeof guestServiceStatus>;

/**
 * What an engine can do, as its guest implements it. Reported by agents with each version and
 * stored with the datastore version, so that the API answers an unsupported operation with
 * Trove's error before any message reaches a guest.
 */
export const engineCapabilities = z.object({
  /** databases can be created with the instance and listed, created and deleted after */
  databases: z.boolean(),
  /** users can be created with the instance and listed, shown, updated and deleted after */
  users: z.boolean(),
  /** users have host patterns (`name@host`); without them every user's host is `%` */
  userHosts: z.boolean(),
  /** users can be granted access to databases (needs `databases` and `users`) */
  userAccess: z.boolean(),
  /** databases take a character set and a collation */
  characterSets: z.boolean(),
  /** root enable/disable; false also where the host cannot keep a tenant's superuser contained */
  root: z.boolean(),
  /** `access.allowed_cidrs` / `is_public` enforced by the engine's own access rules */
  accessRules: z.boolean(),
  backup: z.boolean(),
  replication: z.boolean(),
  configurationGroups: z.boolean(),
});
export type EngineCapabilities = z.infer<typeof engineCapabilities>;

/** A setting a configuration group may set (Trove's validation rules), as the engine declares it. */
export const configurationParameter = z.object({
  name: z.string(),
  type: z.enum(['integer', 'string', 'boolean', 'float']),
  restartRequired: z.boolean(),
  min: z.number().optional(),
  max: z.number().optional(),
});
export type ConfigurationParameter = z.infer<typeof configurationParameter>;

export const engineVersionReport = z.object({
  /** datastore name, e.g. "postgresql" */
  datastore: z.string(),
  /** engine module that runs it, e.g. "postgresql" */
  manager: z.string(),
  /** version name users pick, e.g. "15" */
  name: z.string(),
  /** full engine version, e.g. "15.19" */
  version: z.string(),
  active: z.boolean(),
  /** why the version cannot run here, when inactive */
  inactiveReason: z.string().nullable(),
  capabilities: engineCapabilities,
  parameters: z.array(configurationParameter),
});
export type EngineVersionReport = z.infer<typeof engineVersionReport>;

/** How an engine version is named where agents are matched to instances: `<manager>/<version name>`. */
export function engineVersionKey(manager: string, versionName: string): string {
  return `${manager}/${versionName}`;
}

// Topic `conductor`, competing consumers: the only path from guests to the state database.
export const conductorContract = defineService('conductor', '1.0', {
  heartbeat: cast(
    z.object({
      instanceId: z.string(),
      status: guestServiceStatus,
      /** bytes used in the instance's volume, when known */
      volumeUsedBytes: z.number().int().nonnegative().optional(),
      /** what went wrong, with FAILED or CRASHED: becomes the instance's fault message */
      message: z.string().max(1000).optional(),
    }),
  ),
  /**
   * An agent announces itself (so the taskmanager can place instances on it) and the engine
   * versions its host can run (registered as datastore versions; missing binaries as inactive).
   */
  agentHeartbeat: cast(z.object({ host: z.string(), engines: z.array(engineVersionReport) })),
});

export const conductorTopic = 'conductor';
