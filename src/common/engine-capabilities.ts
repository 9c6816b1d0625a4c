import { z } from 'zod';

// What an engine version can do and which settings it accepts, as its guest declares them.
// Agents report both with each version; the state database stores them beside the version and
// the API reads them back to answer an unsupported operation before any message reaches a
// guest. One schema for the bus contract and the stored rows: both sides agree by construction.

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
  /** backups can follow a parent (incremental); absent in what older agents reported */
  incrementalBackup: z.boolean().default(false),
  /** restores can roll forward to a moment (`restore_time`) through the archived log; absent in what older agents reported */
  pointInTimeRecovery: z.boolean().default(false),
  replication: z.boolean(),
  configurationGroups: z.boolean(),
});
export type EngineCapabilities = z.infer<typeof engineCapabilities>;

/** What a version registered before capabilities were reported can do, as far as anyone knows. */
export const noEngineCapabilities: Readonly<EngineCapabilities> = Object.freeze({
  databases: false,
  users: false,
  userHosts: false,
  userAccess: false,
  characterSets: false,
  root: false,
  accessRules: false,
  backup: false,
  incrementalBackup: false,
  pointInTimeRecovery: false,
  replication: false,
  configurationGroups: false,
});

/** A setting a configuration group may set (Trove's validation rules), as the engine declares it. */
export const configurationParameter = z.object({
  name: z.string(),
  type: z.enum(['integer', 'string', 'boolean', 'float']),
  restartRequired: z.boolean(),
  min: z.number().optional(),
  max: z.number().optional(),
});
export type ConfigurationParameter = z.infer<typeof configurationParameter>;

/**
 * The engines whose backup objects can be imported (POST /backups with `restore_from`): those
 * whose restore needs only what the object itself says (PostgreSQL's PG_VERSION in its base
 * backup, the Redis version an RDB records), which the import reads back. MariaDB's and MySQL's
 * restores need their tool's LSNs, which Coffer keeps beside the object, not in it.
 */
export const importableBackupEngines: ReadonlySet<string> = new Set(['postgresql', 'redis']);
