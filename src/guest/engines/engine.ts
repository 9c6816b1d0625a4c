import type { EngineMetrics } from '../../common/index.js';
import type {
  AccessSpec,
  DataCheckResult,
  DatabaseSpec,
  EngineCapabilities,
  EngineVersionReport,
  PrepareInput,
  UserChanges,
  UserInfo,
  UserRef,
  UserSpec,
} from '../../bus/index.js';
import type { ConfigurationParameter, ConfigurationValue, ConfigurationValues, Logger } from '../../common/index.js';
import type { Readable, Writable } from 'node:stream';
import type { ProcessRunner } from '../process-runner.js';
import type { EngineModules } from './engine-modules.js';

// What every datastore engine implements, and the capability modules it is made of. Each engine
// folder has the same file roles: `lifecycle.ts` (prepare, start, stop, health, process id,
// resize, access, TLS: the part every engine has), `config.ts` (rendering its configuration
// files), one file per capability module it has: `databases.ts`, `users.ts`, `root.ts`,
// `configuration.ts`, `backup.ts`, `replication.ts`, and `engine.ts`, which assembles
// them into the engine's factory. Beside them: `admin.ts` (the guest's administrative
// connection, which the modules share), `binaries.ts` (finding the engine's versions),
// `parameters.ts` (what a configuration group may set), `tls.ts`, and the engine's own helpers.
// mysql/ and mariadb/ are flavors of mysql-family/, whose modules they share.
// What an engine supports follows from which modules it declares (engine-modules.ts): the
// reported capabilities and the driver's admin objects both come from the same record, so an
// engine without a `databases` module can neither report `databases` nor have
// `driver.databases`, and callers answer an unsupported operation up front instead of failing
// at run time (Trove's 85-method base class is what we avoid).

export type { EngineCapabilities };

/** One runnable version of an engine on this host. */
export interface EngineBinary {
  /** the version name users pick, e.g. "15" */
  versionName: string;
  /** the full engine version, e.g. "15.20" */
  version: string;
  binDir: string;
}

export interface EngineDiscovery {
  /** what the agent announces: found versions active, missing ones inactive with the fix */
  reports: EngineVersionReport[];
  /** the binaries to run, one per version name */
  binaries: EngineBinary[];
}

/** An instance's server certificate, its private key and the CA certificate that signed it, in PEM. */
export interface TlsMaterial {
  certificate: string;
  privateKey: string;
  caCertificate: string;
}

/** Where and how one instance lives. */
export interface InstancePlacement {
  instanceId: string;
  /** the instance's directory (its volume): data, configuration, socket, logs */
  dir: string;
  address: string;
  port: number;
}

/**
 * The host's stock of clusters initialised ahead of time for the instance's engine version
 * (see `WarmStart`).
 */
export interface WarmSource {
  /**
   * Moves one complete cluster directory, atomically, to `dest` (a path that does not exist, in
   * the instance's directory) and resolves true; resolves false when none is ready or it cannot
   * be moved there, and the engine initialises its own as it would without a pool.
   */
  take(dest: string): Promise<boolean>;
}

/**
 * What an engine does ahead of time so that a create skips its slowest step. Each cluster is
 * made on its own (no copies of one template): every instance keeps identifiers of its own.
 */
export interface WarmStart {
  /**
   * Fills `dir`, an empty directory the host made and owns, with one cluster, durable on disk
   * when this resolves. Runs at low CPU priority; `signal` aborts it.
   */
  make(dir: string, binary: EngineBinary, runner: ProcessRunner, signal: AbortSignal): Promise<void>;
  /** stops whatever an interrupted `make` may have left running in `dir`, before the host removes it */
  discard(dir: string): Promise<void>;
}

export interface EngineContext {
  placement: InstancePlacement;
  /** undefined when this host lacks the instance's version: the engine can be watched and stopped, not started */
  binary: EngineBinary | undefined;
  runner: ProcessRunner;
  logger: Logger;
  /** client address ranges allowed when the prepare request names none */
  defaultClientCidrs: readonly string[];
  /** clusters the host initialised ahead of time; absent: the engine initialises its own */
  warm?: WarmSource;
  /**
   * the flavor's memory as the host recorded it: what an instance prepared before the engine
   * saved its spec (see engine-spec-file.ts) renders with until its next prepare or resize
   */
  memoryMb?: number;
  /**
   * the host ships archived log files (it has a backup storage): engines with point-in-time
   * recovery archive their log into their spool from the first start
   */
  archiveLog?: boolean;
}

/** healthy: accepts queries; running: the process is up but does not answer; stopped: no process */
export type EngineHealth = 'healthy' | 'running' | 'stopped';

/**
 * The phases of a prepare, each announced as it begins: a new instance's data directory is made
 * (`initialising`), taken from the host's warm pool (`taking a prepared cluster`) or filled from
 * a backup chain (`restoring`), the engine starts, then the requested databases and users are
 * made (users only, where the engine has no databases).
 */
export type PrepareStep =
  | 'initialising'
  | 'taking a prepared cluster'
  | 'restoring'
  | 'starting'
  | 'creating databases and users'
  | 'creating users';

/** told each phase of a prepare as it begins; must not throw or wait */
export type PrepareProgress = (step: PrepareStep) => void;

export interface PrepareTimings {
  initMs: number;
  startMs: number;
  setupMs: number;
}

/** A replica's: and where its first copy came from (none for a prepare resumed after it). */
export interface ReplicaTimings extends PrepareTimings {
  copiedFrom?: 'backup' | 'source';
}

/**
 * The primary's latest backup, which a new replica may start from instead of copying the primary
 * (engines that cannot, or a seed that fails, copy it): its restore chain, and the primary's
 * archived log for the catch-up where it has one.
 */
export interface ReplicaSeed {
  chain: readonly RestoreLink[];
  log?: PointInTimeSource;
}

/** Databases after create. Names come from API users: every statement quotes them. */
export interface DatabaseAdmin {
  /** the tenant's databases; the engine's own (system, templates, the guest's) are left out */
  list(): Promise<DatabaseSpec[]>;
  /** all or nothing: DatabaseAlreadyExists (and nothing created) when one exists */
  create(databases: DatabaseSpec[]): Promise<void>;
  /** DatabaseNotFound when absent */
  delete(name: string): Promise<void>;
}

/** Users after create; `host` is `%` on engines without host patterns. */
export interface UserAdmin {
  /** the tenant's users; the guest's own and root are left out */
  list(): Promise<UserInfo[]>;
  /** all or nothing: UserAlreadyExists (and nothing created) when one exists */
  create(users: UserSpec[]): Promise<void>;
  /** UserNotFound when absent */
  delete(user: UserRef): Promise<void>;
  /** UserNotFound; UserAlreadyExists when the new name@host is taken */
  update(user: UserRef, changes: UserChanges): Promise<void>;
  /** present when users can be given databases (capability `userAccess`) */
  readonly access?: UserAccessAdmin;
}

/** Which databases a user may use (capability `userAccess`). */
export interface UserAccessAdmin {
  grant(user: UserRef, databases: string[]): Promise<void>;
  /** DatabaseNotFound when the user has no access to it */
  revoke(user: UserRef, database: string): Promise<void>;
}

/** What applying a configuration group's values did. */
export interface ConfigurationOutcome {
  /** parameters whose new value takes effect only at the next restart; the engine runs the old one meanwhile */
  pendingRestart: string[];
}

/**
 * Configuration-group values (capability `configurationGroups`). The engine renders its whole
 * configuration from the flavor's memory, the access rules and these overrides together, so a
 * resize or an access update keeps them, and a resize recomputes only what follows from memory
 * and no override sets.
 */
export interface ConfigurationAdmin {
  /** the settings a group may set, with Trove's rules; nothing else is ever rendered from a group */
  readonly parameters: readonly ConfigurationParameter[];
  /**
   * Makes `overrides` the instance's values, replacing the previous ones ({} detaches). Dynamic
   * parameters are applied to the running engine (and survive a restart); restart-only ones are
   * written and named in `pendingRestart`. A name or value outside `parameters`' rules is refused
   * before anything changes (UnprocessableEntity, see validateConfigurationValues). A value the engine rejects restores the previous files and live values,
   * the engine keeps serving, and this throws EngineError naming the parameter and the engine's reason.
   */
  apply(overrides: ConfigurationValues): Promise<ConfigurationOutcome>;
  /** the effective configuration as rendered (Coffer's own settings with the overrides), for `GET /instances/{id}/configuration` */
  effective(): Promise<Record<string, ConfigurationValue>>;
}

export interface RootAdmin {
  /** gives root `password`, creating the user where needed; resolves root's user name */
  enable(password: string): Promise<string>;
  /** locks root out (random password or user removed); a no-op when never enabled */
  disable(): Promise<void>;
}

/** A backup is a full copy of the instance's data, or the changes since its parent. */
export type BackupKind = 'full' | 'incremental';

/**
 * What an engine records about a backup it took, as strings (a MariaDB backup's `to-lsn`, a
 * PostgreSQL backup's WAL positions): stored with the backup, given back to the engine as the
 * parent of an incremental and with each link of a restore chain.
 */
export type BackupFacts = Record<string, string>;

export interface BackupRequest {
  parent?: BackupFacts;
  signal: AbortSignal;
  output?: Writable;
}

/** A backup being taken: the engine tool's output, and what it learnt once it ended. */
export interface BackupRun {
  /** read it to the end; destroying it aborts the backup and kills the tool */
  readonly stream: Readable;
  /**
   * The tool writes into the request's `output` itself: `stream` carries none of its output
   * and ends once the tool exited (destroying it still kills the tool).
   */
  readonly wroteToOutput?: boolean;
  /**
   * Resolves once the tool exited successfully after `stream` ended, with the facts to record;
   * rejects (EngineError with the tool's reason) when it failed or was aborted. A backup whose
   * `finished` rejected must never be reported complete.
   */
  readonly finished: Promise<BackupFacts>;
}

/** One backup of a restore chain, opened when the restore reaches it. */
export interface RestoreLink {
  kind: BackupKind;
  facts: BackupFacts;
  /** the engine tool's output as it was taken (decoded, checksum-checked while read) */
  open(): Promise<Readable>;
  /**
   * The same output written into `stdin`, a restoring process's input; resolves once all of it
   * is there and fails as the stream of `open` would. Optional: a link that has it writes
   * without passing the output through the guest (restore-input.ts picks it).
   */
  writeTo?(stdin: Writable): Promise<void>;
}

/**
 * Capability `backup`. Backups are taken from the running engine, which keeps serving;
 * restores fill a new instance's data directory during its prepare (EngineLifecycle.prepare's
 * `restore`), never an existing instance's.
 */
export interface BackupAdmin {
  /** whether `start` takes a `parent` (incremental backups) */
  readonly incremental: boolean;
  /**
   * Starts a backup of the running engine: full, or with `parent` (the facts of the backup it
   * follows) the changes since that one. `signal` aborts it (the tool is killed, `finished` rejects).
   * With `output` (the compressor's stdin, a child's pipe), an engine that does not watch its
   * tool's output may start the tool writing into it directly (and says so: `wroteToOutput`).
   */
  start(request: BackupRequest): Promise<BackupRun>;
  /**
   * Runs the engine's own consistency check over all of the instance's data, read-only, and
   * answers what it counted: how a backup verification tells a restored backup is sound. Errors
   * the check found are in the answer (`checks.errors`, `problems`); a check that could not run
   * (the engine stopped, a tool missing) rejects with EngineError. `signal` aborts it.
   */
  checkData(signal: AbortSignal): Promise<DataCheckResult>;
  /** present where the engine archives its write-ahead log for point-in-time recovery */
  readonly walArchive?: WalArchive;
}

/**
 * An engine's log archiving as the guest's shipper (wal-shipper.ts) sees it: the engine copies
 * each finished log file into a spool of its own (as its OS user), and the shipper stores each
 * one, sealed like a backup, before it removes it. Names are the engine's (e.g. PostgreSQL's WAL
 * segment and timeline history file names); nothing is read through a path the engine's user
 * could point elsewhere.
 */
export interface WalArchive {
  /** the finished files waiting in the spool, in the order they must be stored */
  pending(): Promise<string[]>;
  /** what is recorded with the stored file, e.g. `last-commit` (ISO time of its last commit) */
  inspect(name: string): Promise<Record<string, string>>;
  /** the file's bytes, read as the engine's OS user */
  read(name: string, signal: AbortSignal): Readable;
  /** removes a stored file from the spool */
  remove(name: string): Promise<void>;
  /** whether storing this file moves how far the archive reaches (a log file, not a history or label beside it) */
  advances(name: string): boolean;
  /**
   * How far the archive reaches once `lastFile` is stored: every change committed before the
   * returned time is in a stored file. Undefined when the engine cannot tell now (not running).
   */
  archivedThrough(lastFile: string): Promise<Date | undefined>;
}

/** An archived log file as a point-in-time restore sees it. */
export interface ArchivedLogFile {
  name: string;
  /** what the shipper recorded with it (WalArchive.inspect) */
  facts: Record<string, string>;
}

/** Where a point-in-time restore finds the source's archived log, and the moment to stop at. */
export interface PointInTimeSource {
  /** the moment to stop at; undefined: where the chain's last incremental backup ends */
  target?: Date;
  /** every archived file of the source, by name */
  list(): Promise<ArchivedLogFile[]>;
  /** a file's bytes (decoded, checksum-checked while read) */
  open(name: string): Promise<Readable>;
}

/**
 * What a primary hands one replica (ReplicationAdmin.addReplica): where to stream from, as which
 * role, through which slot. `password` is the replication role's, made for this replica alone;
 * `adminPassword` is the primary's administrative password, which the replica's copy of the
 * cluster keeps (a standby cannot change it) and its guest logs in with until it is detached.
 */
export interface ReplicationGrant {
  address: string;
  port: number;
  user: string;
  password: string;
  slot: string;
  adminPassword: string;
}

/** How far one replica trails its primary; undefined where the engine cannot tell now. */
export interface ReplicaLag {
  replicaId: string;
  /** streaming: connected to its slot; otherwise the slot waits for it */
  connected: boolean;
  /** WAL the primary wrote that the replica has not replayed */
  lagBytes?: number;
  /** the time the replica's replay trails (PostgreSQL's replay_lag) */
  lagSeconds?: number;
}

/**
 * An instance's place in replication, as its engine reports it. `position` is where the engine's
 * log stands, in the engine's own monotonic measure (PostgreSQL: the WAL LSN as a number;
 * MariaDB: the sequence number of the last GTID in domain 0; Redis: the replication offset): on a
 * source what it wrote, on a replica what it received and keeps durably (what a promotion
 * applies). Failover promotes the replica with the highest; a replica whose position reaches a
 * fenced source's has every write of it.
 */
export type ReplicationStatus =
  | { role: 'standalone' }
  | { role: 'source'; replicas: ReplicaLag[]; position?: number }
  | { role: 'replica'; source: { address: string; port: number }; streaming: boolean; lagBytes?: number; lagSeconds?: number; position?: number };

/**
 * Capability `replication`. A primary gives each replica a role and a slot of its own
 * (`addReplica`, idempotent per replica id, a new password each call); a replica is built by
 * `prepareReplica` instead of `prepare`, streams from its primary, refuses writes (the engine's
 * own read-only standby) and stays a replica across restarts (the role is part of the engine's
 * saved spec). `detach` makes a replica a standalone primary; its primary then drops what it
 * kept for it with `removeReplica`.
 */
export interface ReplicationAdmin {
  /** `fromBackup`: the replica starts from this instance's backup (ReplicaSeed), so the instance's log need not go back to its creation */
  addReplica(replica: { id: string; address: string; fromBackup?: boolean }): Promise<ReplicationGrant>;
  /** drops the replica's slot, role and access rule; a no-op for one it does not know */
  removeReplica(replicaId: string): Promise<void>;
  /**
   * Fills a new instance's data directory from its primary (a base backup streaming the WAL it
   * needs, through the replica's slot) and starts it as a read-only standby. `input`'s databases
   * and users must be empty: they come from the primary. Resumes a partial run. With a `seed`,
   * an engine that can starts from the primary's backup and catches up from the primary, and
   * copies the primary when that fails.
   */
  prepareReplica(input: PrepareInput, grant: ReplicationGrant, progress?: PrepareProgress, seed?: ReplicaSeed): Promise<ReplicaTimings>;
  /** promotes a replica to a standalone, writable primary with an administrative password of its own; a no-op on one that is not a replica */
  detach(): Promise<void>;
  status(): Promise<ReplicationStatus>;
  /**
   * On a source, at a switchover: it takes no write from now on. The engine is stopped (a stop
   * that first lets every connected replica receive all it wrote) and the answer is the last
   * position it wrote (see ReplicationStatus). It stays stopped until `follow` makes it a replica
   * (the guest holds it down meanwhile). Idempotent: a fenced, stopped source answers its position again.
   */
  fence(): Promise<{ position: number }>;
  /**
   * Makes this instance a replica of the source `grant` names (made for it by the new source's
   * `addReplica`), its data kept: a replica re-points to the new source; a former source (fenced,
   * or stopped by its host's death) rejoins, undoing what it wrote that the new source never
   * received where the engine can (PostgreSQL: pg_rewind; Redis: a full resynchronisation);
   * where it cannot (MariaDB with transactions the new source lacks) it throws CofferError
   * 'Conflict' saying so and stays stopped. What a former source kept for its own replicas (slots,
   * roles, access rules) is dropped. Started afterwards, streaming, read-only. Idempotent.
   */
  follow(grant: ReplicationGrant): Promise<void>;
  /**
   * On a source: whether a commit waits until at least one replica holds it durably (PostgreSQL
   * `synchronous_standby_names = 'ANY 1 (…)'`; MariaDB semi-synchronous replication with
   * AFTER_SYNC; Redis `min-replicas-to-write 1`, which bounds but cannot rule out loss). Part of
   * the saved spec: a restart keeps it. With no replica connected, synchronous commits wait.
   */
  setSynchronous(synchronous: boolean): Promise<void>;
}

/**
 * The logs a tenant turns on and off (Trove's USER logs): saved in the engine spec, so that a
 * restart, resize or configuration change keeps them; applied to the running engine at once.
 */
export interface LogControl {
  readonly userLogs: readonly string[];
  /** the user logs that are on, as saved */
  enabled(): Promise<ReadonlySet<string>>;
  /** turns `name` (one of userLogs) on or off, live and in the saved spec */
  setEnabled(name: string, on: boolean): Promise<void>;
}

/**
 * The part of a driver every engine has: the engine process and its files. Every method is
 * idempotent.
 */
export interface EngineLifecycle {
  /**
   * initialise, configure, start and create the requested databases and users; resumes a partial
   * run. With `restore` (engines with a backup module only) the data directory is filled from the
   * chain (the full backup first, then each incremental in order) instead of initialised, and the
   * guest's own administrative account gets `input.adminPassword`; a failed restore leaves no data
   * directory a later prepare would take for a finished one. With `pointInTime` (engines whose
   * backup module has `pointInTime`) the restored data is rolled forward through the archived
   * log to `pointInTime.target`.
   */
  prepare(input: PrepareInput, progress?: PrepareProgress, restore?: readonly RestoreLink[], pointInTime?: PointInTimeSource): Promise<PrepareTimings>;
  /**
   * The part of a fresh prepare (no restore, no source) that needs no certificate: the guest runs
   * it beside the certificate's installation, then `prepare` with the same input, which finds it
   * done. Refuses what `prepare` refuses before it changes anything. Absent: all of it is `prepare`'s.
   */
  prepareFiles?(input: PrepareInput): Promise<void>;
  /** start (or adopt the already running process) and wait until it accepts queries */
  start(): Promise<void>;
  /** stop quickly; forcibly after a timeout */
  stop(): Promise<void>;
  /** asks the engine a query over a connection kept between checks (kept-probe.ts) */
  health(): Promise<EngineHealth>;
  /**
   * Whether no client of the tenant's used the engine between the last two health checks, where
   * the driver can tell (Redis); the guest asks an idle engine less often and watches its pid
   * between (guest.ts). Absent: every check asks the engine.
   */
  idle?(): boolean;
  /** what the engine says of its load and size now, over the health check's connection; undefined when it does not answer */
  metrics(): Promise<EngineMetrics | undefined>;
  /** closes what the driver keeps open between calls (the health check's connection); the engine keeps running */
  release(): void;
  /** the pid of the running server process, if any */
  processId(): Promise<number | undefined>;
  /** renders the configuration for a flavor with `memoryMb` of RAM, keeping the overrides, and restarts the engine with it (applies it live where the engine can); leaves the engine running */
  resize(memoryMb: number): Promise<void>;
  /**
   * applies `access` to the engine's own rules on the running engine: client ranges (see
   * capability `accessRules`) and whether plaintext clients are refused (`requireTls`, every engine)
   */
  updateAccess(access: AccessSpec): Promise<void>;
  /**
   * Writes the instance's certificate and key (the key readable by the engine's user alone). A
   * running engine serves them to new connections without a restart; from then on the engine
   * serves TLS, also after a resize or restart. Before the first install it serves plaintext only,
   * and refuses `requireTls`.
   */
  installTls(material: TlsMaterial): Promise<void>;
  /** the engine's log files by log name (e.g. `general`), absolute paths inside the instance directory */
  logFiles(): Record<string, string>;
  /** absent: the engine has no log a tenant turns on or off (each of its logFiles is a SYS log) */
  readonly logs?: LogControl;
  /**
   * Puts the running engine in (or out of) the read-only mode a full volume calls for: tenants'
   * writes are refused with the engine's own error while reads go on. Idempotent; a restart may
   * drop the mode (the guest asks again while the volume is full).
   */
  refuseWrites(refused: boolean): Promise<void>;
}

/**
 * Drives the engine of one instance: its lifecycle and the admin object of each capability
 * module it has. Made only by `assembleDriver` (engine-modules.ts), from the same modules the
 * capabilities derive from.
 */
export interface EngineDriver extends EngineLifecycle {
  /** present exactly when the engine has a `databases` module (capability `databases`) */
  readonly databases?: DatabaseAdmin;
  /** present exactly when the engine has a `users` module (capability `users`) */
  readonly users?: UserAdmin;
  /** present exactly when the engine has a `root` module (a host may still report `root` false) */
  readonly root?: RootAdmin;
  /** present exactly when the engine has a `configuration` module (capability `configurationGroups`) */
  readonly configuration?: ConfigurationAdmin;
  /** present exactly when the engine has a `backup` module (capability `backup`) */
  readonly backup?: BackupAdmin;
  /** present exactly when the engine has a `replication` module (capability `replication`) */
  readonly replication?: ReplicationAdmin;
}

export interface EngineFactory {
  readonly manager: string;
  /** what the engine's modules imply (capabilitiesOf): what its discovery reports */
  readonly capabilities: EngineCapabilities;
  /** the modules the engine is made of: the one source of its capabilities and its driver's admin objects */
  readonly modules: EngineModules<EngineLifecycle>;
  /**
   * Whether the engine's root can run programs or touch files as the engine's OS user (a
   * PostgreSQL superuser's COPY … PROGRAM, MariaDB's FILE): such a root is offered only on hosts
   * that give each instance an OS user of its own.
   */
  readonly rootReachesOsUser: boolean;
  readonly standardPort: number;
  /** the port TLS clients connect to on an instance listening on `port` */
  tlsPort(port: number): number;
  /** finds the versions this host can run; `extraBinDirs` are searched first */
  discover(extraBinDirs: readonly string[], runner: ProcessRunner): Promise<EngineDiscovery>;
  /** throws a CofferError when an instance cannot live in `dir` (e.g. a socket path too long) */
  checkInstanceDir(dir: string): void;
  create(context: EngineContext): EngineDriver;
  /** absent: the engine has nothing to prepare ahead of time */
  readonly warm?: WarmStart;
  /**
   * Moves a stopped instance's data from one version's binaries to another's; on failure the
   * data is left as `from` runs it. Absent: the engine starts on a newer version's binaries
   * as it is (its files are read by later versions).
   */
  readonly upgrade?: (context: UpgradeContext) => Promise<UpgradeOutcome>;
}

export interface UpgradeContext {
  placement: InstancePlacement;
  from: EngineBinary;
  to: EngineBinary;
  /** every version of the engine this host has: a tool one lacks may come from another */
  installed: readonly EngineBinary[];
  runner: ProcessRunner;
  logger: Logger;
}

export interface UpgradeOutcome {
  /** how the data was moved, for the log and the event: e.g. pg_upgrade, dump, restart */
  method: string;
}
