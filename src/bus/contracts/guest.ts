import { z } from 'zod';
import { configurationValue, configurationValues } from '../../common/index.js';
import { call, cast, defineService } from '../contract.js';

export const databaseSpec = z.object({
  name: z.string(),
  characterSet: z.string().optional(),
  collate: z.string().optional(),
});
export type DatabaseSpec = z.infer<typeof databaseSpec>;

export const userSpec = z.object({
  name: z.string(),
  password: z.string(),
  host: z.string().optional(),
  databases: z.array(z.object({ name: z.string() })).default([]),
});
export type UserSpec = z.infer<typeof userSpec>;

/** A user as the engine knows it: `host` is `%` on engines without host patterns. */
export const userRef = z.object({ name: z.string(), host: z.string() });
export type UserRef = z.infer<typeof userRef>;

export const userInfo = userRef.extend({ databases: z.array(z.object({ name: z.string() })) });
export type UserInfo = z.infer<typeof userInfo>;

export const userChanges = z.object({
  name: z.string().optional(),
  password: z.string().optional(),
  host: z.string().optional(),
});
export type UserChanges = z.infer<typeof userChanges>;

/**
 * Who may connect, and how: Trove's `access`, plus Coffer's `requireTls` (plaintext clients
 * refused). No CIDRs: the host's default client ranges.
 */
export const accessSpec = z
  .object({ isPublic: z.boolean().optional(), allowedCidrs: z.array(z.string()).optional(), requireTls: z.boolean().optional() })
  .nullable();
export type AccessSpec = z.infer<typeof accessSpec>;

/**
 * The version of the instance's desired state a change carries (the state DB's desired
 * generation); the guest records the highest it applied successfully and answers it, so the API
 * can tell whether a change is live. Optional: a caller that does not track it sends none.
 */
const generation = z.number().int().nonnegative().optional();
/** what a change answers: the generation the guest has applied, after this change when it carried one */
const applied = z.object({ generation });

/**
 * Where one backup object lives and how to read it back: the storage container and object name,
 * the SHA-256 recorded when it was stored (checked while it is read), and the project's data key
 * wrapped under the hosts' master key (only a host holding that key can unwrap it).
 */
export const backupObjectRef = z.object({
  backupId: z.string(),
  container: z.string(),
  objectName: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  wrappedKey: z.string(),
});
export type BackupObjectRef = z.infer<typeof backupObjectRef>;

export const backupKind = z.enum(['full', 'incremental']);
export const backupFacts = z.record(z.string(), z.string());

/** One backup of a restore chain: the full backup first, then each incremental in order. */
export const restoreLinkSpec = backupObjectRef.extend({ kind: backupKind, facts: backupFacts });
export type RestoreLinkSpec = z.infer<typeof restoreLinkSpec>;

export const createBackupInput = z.object({
  /** where to store it; the object appears only once it is whole */
  target: backupObjectRef.omit({ sha256: true }),
  kind: backupKind,
  /** the facts of the parent, for an incremental */
  parentFacts: backupFacts.optional(),
  /** the project id the wrapped key is bound to */
  projectId: z.string(),
  /**
   * since 1.5, full backups of engines with point-in-time recovery: from this backup on, the
   * guest stores the engine's archived log under `prefix` in `container` (sealed with the same
   * project key), so the backup can be rolled forward to any moment after it
   */
  walArchive: z.object({ container: z.string(), prefix: z.string() }).optional(),
});
export type CreateBackupInput = z.infer<typeof createBackupInput>;

/**
 * What a primary's guest hands a new replica's (addReplica): where to stream from, the
 * replication role and its password (made for this replica alone), its slot, and the primary's
 * administrative password, which the replica's copy of the cluster keeps until it is detached.
 */
export const replicationGrant = z.object({
  address: z.string(),
  port: z.number().int().positive(),
  user: z.string(),
  password: z.string(),
  slot: z.string(),
  adminPassword: z.string(),
});
export type ReplicationGrantSpec = z.infer<typeof replicationGrant>;

/** How far a replica trails its primary: bytes of WAL not replayed, and seconds. */
const replicaLag = z.object({
  replicaId: z.string(),
  connected: z.boolean(),
  lagBytes: z.number().nonnegative().optional(),
  lagSeconds: z.number().nonnegative().optional(),
});

/** since 1.9, `position`: where the engine's log stands (engine.ts ReplicationStatus) */
const position = z.number().nonnegative();

export const replicationStatus = z.discriminatedUnion('role', [
  z.object({ role: z.literal('standalone') }),
  z.object({ role: z.literal('source'), replicas: z.array(replicaLag), position: position.optional() }),
  z.object({
    role: z.literal('replica'),
    source: z.object({ address: z.string(), port: z.number().int() }),
    streaming: z.boolean(),
    lagBytes: z.number().nonnegative().optional(),
    lagSeconds: z.number().nonnegative().optional(),
    position: position.optional(),
  }),
]);
export type ReplicationStatusSpec = z.infer<typeof replicationStatus>;

export const prepareInput = z.object({
  memoryMb: z.number().int().positive(),
  databases: z.array(databaseSpec).default([]),
  users: z.array(userSpec).default([]),
  /** superuser password for the engine's own administration; generated by the taskmanager */
  adminPassword: z.string(),
  access: accessSpec.default(null),
  /** the configuration group's values, checked against the engine's parameters; rendered from the first start */
  overrides: configurationValues.default({}),
  generation,
  /** since 1.4: the data comes from these backups (the full one first) instead of a new cluster */
  restore: z
    .object({
      projectId: z.string(),
      chain: z.array(restoreLinkSpec).min(1),
      /**
       * since 1.5: roll the restored data forward through the source's archived log (stored under
       * `prefix` in `container`, sealed with the chain's project key) to `time` (ISO 8601), or
       * without a time to where the chain's last incremental backup ends (an engine whose
       * incrementals are its log, PostgreSQL's)
       */
      pointInTime: z
        .object({ time: z.string().datetime({ offset: true }).optional(), container: z.string(), prefix: z.string(), wrappedKey: z.string() })
        .optional(),
    })
    .optional(),
  /**
   * since 1.8: the instance is a replica of this primary (databases and users come from it);
   * since 1.10 `restore` beside it is the primary's backup, which the replica starts from where
   * its engine can (it copies the primary otherwise)
   */
  replicaOf: replicationGrant.optional(),
});
export type PrepareInput = z.infer<typeof prepareInput>;

/** Trove's guest log statuses (its enum names with `_` as a space) */
export const guestLogStatuses = ['Disabled', 'Enabled', 'Unavailable', 'Ready', 'Published', 'Partial', 'Rotated', 'Restart Required'] as const;

/**
 * One of the engine's logs as its guest sees it (guest-logs.ts): `published` the bytes stored
 * since the last discard, `pending` those written since the last publish, `stored` whether any
 * object of it is in the storage now.
 */
export const guestLogState = z.object({
  name: z.string(),
  type: z.enum(['USER', 'SYS']),
  status: z.enum(guestLogStatuses),
  published: z.number().int().nonnegative(),
  pending: z.number().int().nonnegative(),
  stored: z.boolean(),
});
export type GuestLogState = z.infer<typeof guestLogState>;

export const guestLogActionInput = z.object({
  name: z.string(),
  enable: z.boolean().optional(),
  disable: z.boolean().optional(),
  publish: z.boolean().optional(),
  discard: z.boolean().optional(),
  /** the storage container log objects go to (the deployment's) */
  container: z.string(),
});
export type GuestLogActionInput = z.infer<typeof guestLogActionInput>;

const low = 15_000;
const high = 180_000;
const none = z.object({});

/**
 * What the engine's own check of its data found: counts (databases, tables, indexes, keys and
 * `errors`, each by the engine's own measure) and, when it found errors, the first of its
 * messages. A check that cannot run at all (the engine down, its tool missing) fails instead.
 */
export const dataCheckResult = z.object({
  checks: z.record(z.string(), z.number().int().nonnegative()),
  problems: z.array(z.string()),
});
export type DataCheckResult = z.infer<typeof dataCheckResult>;

/** Where the guest's data check stands: it runs for hours on a large instance, so callers poll. */
export const dataCheckState = z.discriminatedUnion('state', [
  z.object({ state: z.literal('running') }),
  z.object({ state: z.literal('done'), result: dataCheckResult }),
  z.object({ state: z.literal('failed'), message: z.string() }),
]);
export type DataCheckState = z.infer<typeof dataCheckState>;

// Topic `guest.<instance id>`: one guest per instance, hosted by its agent. Database, user and
// root calls are answered only by engines whose capabilities declare them; the API checks the
// capabilities first, and a guest asked anyway answers OperationNotSupported.
// 1.2: configuration groups (prepare's overrides, applyConfiguration, getConfiguration)
// 1.3: the desired state's generation (prepare, resize, updateAccess, applyConfiguration)
// 1.4: backups (createBackup, prepare's restore)
// 1.5: point in time (createBackup's walArchive, prepare's restore.pointInTime)
// 1.6: checkData (backup verification)
// 1.7: resizeVolume (the guest holds the engine to its volume size)
// 1.8: replication (prepare's replicaOf, addReplica, removeReplica, detachReplica, getReplicationStatus)
// 1.9: switchover and failover (fenceSource, followSource, setSynchronous, positions in getReplicationStatus);
//      guest logs (guestLogs, guestLogAction)
// 1.10: replicas from a backup (prepare's restore beside replicaOf is the primary's backup to start from; addReplica's fromBackup)
export const guestContract = defineService('guest', '1.10', {
  /** initialise, configure and start the engine, then create databases and users; heartbeats report progress */
  prepare: cast(prepareInput),
  restart: call(none, none, high),
  stopDb: call(none, none, low),
  startDb: call(none, none, high),
  getFilesystemStats: call(none, z.object({ totalBytes: z.number(), usedBytes: z.number() }), low),
  /**
   * The instance's volume has a new size: the guest holds the engine to it from now on (and its
   * host records it), measures the volume against it at once and lifts the read-only mode of a
   * volume that was full. Answers the usage then.
   */
  resizeVolume: call(z.object({ sizeGb: z.number().positive() }), z.object({ totalBytes: z.number(), usedBytes: z.number() }), high),
  /** renders the engine's configuration for a new flavor's RAM and restarts it */
  resize: call(z.object({ memoryMb: z.number().int().positive(), generation }), applied, high),
  /** rewrites the engine's access rules (pg_hba, user host patterns) on the running instance */
  updateAccess: call(z.object({ access: accessSpec, generation }), applied, high),

  listDatabases: call(none, z.object({ databases: z.array(databaseSpec) }), low),
  /** DatabaseAlreadyExists when one exists; none is created then */
  createDatabases: call(z.object({ databases: z.array(databaseSpec) }), none, high),
  /** DatabaseNotFound when absent */
  deleteDatabase: call(z.object({ name: z.string() }), none, high),

  /** every user a tenant may see (the guest's own and the root user are hidden) */
  listUsers: call(none, z.object({ users: z.array(userInfo) }), low),
  /** UserAlreadyExists when one exists; none is created then */
  createUsers: call(z.object({ users: z.array(userSpec) }), none, high),
  /** UserNotFound when absent */
  deleteUser: call(z.object({ user: userRef }), none, high),
  /** rename, new password and/or new host; UserNotFound, or UserAlreadyExists for the new name@host */
  updateUser: call(z.object({ user: userRef, changes: userChanges }), none, high),
  grantAccess: call(z.object({ user: userRef, databases: z.array(z.string()) }), none, high),
  /** DatabaseNotFound when the user has no access to it */
  revokeAccess: call(z.object({ user: userRef, database: z.string() }), none, high),

  /** gives the engine's root user `password` (creating it where needed); answers its name */
  enableRoot: call(z.object({ password: z.string() }), z.object({ name: z.string() }), high),
  /** locks root out again (a random password, or the user removed) */
  disableRoot: call(none, none, high),

  /**
   * Makes `overrides` the instance's configuration-group values, replacing the previous ones
   * (an empty object detaches): rendered into the engine's configuration, applied live where
   * the engine can; `pendingRestart` names what runs with its old value until a restart. A value
   * the engine rejects leaves it serving on the previous values and fails with EngineError naming
   * the parameter. OperationNotSupported without capability `configurationGroups`.
   */
  applyConfiguration: call(
    z.object({ overrides: configurationValues, generation }),
    z.object({ pendingRestart: z.array(z.string()), generation }),
    high,
  ),
  /** the configuration the engine runs with as rendered: Coffer's own settings and the overrides */
  getConfiguration: call(none, z.object({ values: z.record(z.string(), configurationValue) }), low),

  /** a new server certificate from the host's CA, served by the running engine without a restart */
  rotateCertificate: call(none, none, high),

  /**
   * Takes a backup of the running engine and stores it (compressed, sealed with the project's
   * key), reporting BUILDING, progress and then COMPLETED or FAILED to the conductor
   * (updateBackup). The engine keeps serving. OperationNotSupported without capability `backup`.
   */
  createBackup: cast(createBackupInput, { since: '1.4' }),

  /**
   * The engine's own consistency check over all of the instance's data (PostgreSQL's amcheck,
   * MariaDB's CHECK TABLE, Redis's SCAN and RDB check), as the guest's own user. The first call
   * starts it and answers `running`; later calls answer `running` until it ends, then what it
   * counted (`done`) or why it could not run (`failed`), for as long as the guest runs. The
   * check runs beside the other operations (no delivery is held for hours), and a guest that
   * restarted starts it again. OperationNotSupported without capability `backup` (a backup
   * verification checks the instance its backup was restored into).
   */
  checkData: call(none, dataCheckState, low),

  /**
   * On a primary: a replication role, a slot and an access rule for the replica `replicaId`
   * whose engine listens on `address`; answers what the replica's prepare needs (a new password
   * each call). OperationNotSupported without capability `replication`; BadRequest on a replica.
   */
  addReplica: call(
    z.object({
      replicaId: z.string(),
      address: z.string(),
      /** since 1.10: the replica starts from this instance's backup (prepare's restore), not from nothing */
      fromBackup: z.boolean().optional(),
    }),
    replicationGrant,
    high,
  ),
  /** On a primary: drops the replica's slot, role and access rule; a no-op for one it does not know. */
  removeReplica: call(z.object({ replicaId: z.string() }), none, high),
  /** On a replica: promotes it to a standalone, writable primary; a no-op on one that is not a replica. */
  detachReplica: call(none, none, high),
  /** the instance's role in replication and the lag of each replica (on a primary) or its own (on a replica) */
  getReplicationStatus: call(none, replicationStatus, low),
  /**
   * On a source being replaced: its engine stops taking writes and stays stopped (held down, as a
   * stopped instance, until followSource); answers the last position it wrote once its connected
   * replicas were sent all of it. BadRequest on a replica.
   */
  fenceSource: call(none, z.object({ position }), high),
  /**
   * Makes the instance a replica of the new source `grant` names (made for it by that source's
   * addReplica): a replica re-points, a former source rejoins (its unreplicated writes undone
   * where the engine can; Conflict where it cannot, the engine left stopped). Its engine runs
   * again afterwards, read-only.
   */
  followSource: call(z.object({ grant: replicationGrant }), none, high),
  /** On a source: whether commits wait for one replica to hold them (engine.ts setSynchronous). */
  setSynchronous: call(z.object({ synchronous: z.boolean() }), none, high),

  /** since 1.9: the engine's logs (Trove's guest_log_list) */
  guestLogs: call(none, z.object({ logs: z.array(guestLogState) }), high),
  /**
   * since 1.9 (Trove's guest_log_action): turns a tenant's log on or off, stores what it gained
   * since the last publish under `<instance id>/<manager>-<log>/` in `container`, or removes what
   * was stored; answers the log after. BadRequest for a log the engine lacks, for turning a SYS log
   * on or off, for enable with disable; NotImplemented on a host without a backup storage.
   */
  guestLogAction: call(guestLogActionInput, z.object({ log: guestLogState }), high),
});

export function guestTopic(instanceId: string): string {
  return `guest.${instanceId}`;
}
