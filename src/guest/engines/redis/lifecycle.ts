import type { EngineMetrics } from '../../../common/index.js';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Redis } from 'ioredis';
import type { AccessSpec, PrepareInput, UserSpec } from '../../../bus/index.js';
import { CofferError, newPassword, validateConfigurationValues, type ConfigurationValues, type Logger } from '../../../common/index.js';
import type { ProcessRunner } from '../../process-runner.js';
import type {
  EngineBinary,
  EngineContext,
  EngineHealth,
  EngineLifecycle,
  PointInTimeSource,
  PrepareProgress,
  PrepareTimings,
  RestoreLink,
  TlsMaterial,
} from '../engine.js';
import type { LifecycleModule } from '../engine-modules.js';
import { fileExists, writeEngineFile } from '../engine-files.js';
import { currentEngineSpec, readEngineSpec, writeEngineSpec, type EngineSpec } from '../engine-spec-file.js';
import { checkTlsRequirement, installedTlsFiles, readTlsRequired, writeTlsFiles, type TlsFiles } from '../tls-files.js';
import { SupervisedServer, type ServerControl } from '../supervised-server.js';
import { KeptProbe } from '../kept-probe.js';
import { ServerWatch } from '../process-watch.js';
import { redisMetrics } from './metrics.js';
import { renderInitialAclFile, rootDisableArguments, rootUser } from './acl.js';
import { idleHz, IdleHzPolicy, readProbe } from './idle-hz.js';
import { applyAcl, healthProbeOps, infoFields, setMaxmemory, withAdminClient, type AdminEndpoint, type AdminEndpointSource } from './admin.js';
import type { AofArchiveHost } from './aof-archive.js';
import { planAofReplay, writeRestoredAof, type AofReplayPlan } from './aof-replay.js';
import type { RdbSource } from './backup.js';
import { missingBinaryReason } from './binaries.js';
import { maxmemoryMb, redisSettings, renderRedisConf, writeRefusingReplicas, type RedisConfigInput, type ReplicaOfSettings } from './config.js';
import { replicationOverTls, syncReplicaUsers, type RedisReplicationHost } from './replication-host.js';
import { setLive } from './live-config.js';
import type { ConfigurationHost } from './configuration.js';
import { redisParameters } from './parameters.js';
import { checkRdbChain, enableAof, writeRdb } from './restore.js';
import { applyTls } from './tls.js';
import { checkUserSpecs, ensureUsers } from './users.js';
import { killServerProcesses, runningServer, stopServer, waitUntilReady, type ServerFiles } from './server-process.js';

// The lifecycle module of Redis (users, root, configuration groups and backups are the modules
// beside it, engine.ts assembles them; a restore is this prepare's, restore.ts). Redis as a supervised local process: redis-server started directly on a redis.conf rendered
// from the instance's saved spec (engine-spec-file.ts: the flavor's memory, the access rules,
// the configuration group's overrides), in the foreground (the agent supervises it), stopped
// with SIGTERM. Every change reads the spec, changes its own part, renders redis.conf whole
// and saves the spec back, so that none of them loses what another set. As for
// PostgreSQL the instance directory belongs to the host; the engine's user owns only the data
// directory, where Redis writes its snapshots, AOF, ACL file, socket and pid file.
//
// Locked down from the first start: the ACL file the host writes before the server ever runs
// turns the `default` user off (no passwordless access) and gives the guest's `os_admin` a
// password stored as its hash. Tenants' users and root are ACL users saved to that file.
//
// Redis cannot refuse a user by the client's address, so os_admin, unlike PostgreSQL's, could
// log in over TCP. Its password is therefore not prepare's `adminPassword` (which the
// taskmanager records in the state database with its task) but a secret made here, which never
// leaves the host: a leaked task record opens nothing.

export const standardPort = 6379;

const startTimeoutMs = 120_000;
// a final RDB snapshot of a large dataset takes its time (~80 MB/s); the AOF has it anyway
const stopTimeoutMs = 60_000;
const probeTimeoutMs = 3_000;
/** how often a replica's health check copies its primary's users (replica-users.ts) */
const userCopyIntervalMs = 15_000;

interface Layout extends ServerFiles {
  logFile: string;
  socketPath: string;
  aclFile: string;
  /** read by the guest only: owned by the host's user, not the engine's */
  adminSecret: string;
  initialised: string;
  /** a replica's replication password (replication.ts): the host's file, never in the spec */
  replicationSecret: string;
  /** the offset a fenced source stopped at (failover.ts): the host's file */
  fencedPosition: string;
}

export function layout(dir: string): Layout {
  const dataDir = join(dir, 'data');
  return {
    dataDir,
    configFile: join(dir, 'redis.conf'),
    logFile: join(dir, 'redis.log'),
    // the engine creates its socket, pid file and saves its ACL file (a rename in the
    // directory), so they live in the one directory the engine owns
    socketPath: join(dataDir, 'redis.sock'),
    pidFile: join(dataDir, 'redis.pid'),
    aclFile: join(dataDir, 'users.acl'),
    adminSecret: join(dir, 'os_admin.password'),
    initialised: join(dir, '.redis-init.done'),
    replicationSecret: join(dir, 'replication.password'),
    fencedPosition: join(dir, 'fenced.position'),
  };
}

/** Everything Redis cannot do that a prepare asks for is refused before anything starts. */
function checkPrepareInput(input: PrepareInput, datastore: string): ConfigurationValues {
  if (input.databases.length > 0) {
    throw new CofferError('BadRequest', 'Redis has no databases: create the instance without any.');
  }
  checkUserSpecs(input.users);
  checkAccess(input.access);
  return validateConfigurationValues(input.overrides, redisParameters, datastore);
}

/** whether the spec's source has its writes wait for a replica in sync (failover.ts) */
function synchronousSource(spec: EngineSpec): boolean {
  return spec.replication?.role === 'source' && spec.replication.synchronous === true;
}

/** Redis cannot tell clients apart by address: only the host's default ranges are possible. */
function checkAccess(access: AccessSpec): void {
  if ((access?.allowedCidrs?.length ?? 0) > 0) {
    throw new CofferError(
      'OperationNotSupported',
      'Operation not supported for datastore redis: Redis cannot restrict clients by address (allowed_cidrs).',
    );
  }
}

export class RedisLifecycle implements EngineLifecycle, AdminEndpointSource {
  private readonly paths: Layout;
  private readonly runner: ProcessRunner;
  private readonly logger: Logger;
  private adminPassword: string | undefined;
  private readonly serverProcess: SupervisedServer;
  private readonly probe: KeptProbe<Redis>;
  private readonly running: ServerWatch;
  private readonly hzPolicy = new IdleHzPolicy();
  /** the data directory was made by initialise and no server has started in it since */
  private freshData = false;
  /** the users the ACL file initialise wrote holds (prepareFiles), until a prepare with them finds them there */
  private usersWritten: readonly UserSpec[] | undefined;

  constructor(private readonly context: EngineContext) {
    this.paths = layout(context.placement.dir);
    this.runner = context.runner;
    this.logger = context.logger;
    this.serverProcess = new SupervisedServer(this.serverControl(), this.logger);
    this.probe = new KeptProbe(healthProbeOps(() => this.endpoint()), probeTimeoutMs);
    this.running = new ServerWatch(() => runningServer(this.paths));
  }

  /** What the configuration module needs: the spec, redis.conf and the running server. */
  configurationHost(): ConfigurationHost {
    return {
      datastore: this.datastore(),
      logger: this.logger,
      configFile: this.paths.configFile,
      requireSpec: () => this.requireSpec(),
      saveSpec: (spec) => writeEngineSpec(this.context.placement.dir, spec),
      confInput: (spec) => this.confInput(spec),
      writeConf: (conf) => this.writeConf(conf),
      isRunning: () => this.isRunning(),
      endpoint: () => this.endpoint(),
    };
  }

  private binary(): EngineBinary {
    if (this.context.binary === undefined) {
      throw new CofferError(
        'DatastoreVersionInactive',
        `This host has no redis-server for the instance's version. ${missingBinaryReason}`,
      );
    }
    return this.context.binary;
  }

  private server(): string {
    return join(this.binary().binDir, 'redis-server');
  }

  /** What the backup module needs: where the snapshot is written, the admin endpoint, whether the server runs. */
  rdbSource(): RdbSource {
    return {
      runner: this.runner,
      program: (name) => join(this.binary().binDir, name),
      dataDir: this.paths.dataDir,
      endpoint: () => this.endpoint(),
      running: () => this.processId(),
      ...(this.archivesAof() ? { ensureArchiving: () => this.ensureArchiving() } : {}),
    };
  }

  /** whether the host archives the AOF (it has a backup storage): point in time, aof-archive.ts */
  private archivesAof(): boolean {
    return this.context.archiveLog === true;
  }

  /** What the AOF's archive needs, where the host archives it. */
  aofArchiveHost(): AofArchiveHost | undefined {
    if (!this.archivesAof()) return undefined;
    return {
      dir: this.context.placement.dir,
      dataDir: this.paths.dataDir,
      runner: this.runner,
      logger: this.logger,
      endpoint: () => this.endpoint(),
      // the pid checked now, and what the last health check found (a check of its own beside the
      // guest's would double the round trips to an idle server); before any, a check now
      running: async () => (await this.processId()) !== undefined && (this.answered || (await this.health()) === 'healthy'),
      persistence: () => this.probe.query(async (client) => infoFields(String(await client.call('INFO', ['server', 'persistence'])))),
    };
  }

  /**
   * redis.conf as archiving needs it, and the running server set the same way: an instance that
   * started before its host had a backup storage runs without `#TS` annotations until then.
   */
  private async ensureArchiving(): Promise<void> {
    const input = await this.confInput(await this.requireSpec());
    const settings = redisSettings(input);
    await this.writeConf(renderRedisConf(input));
    const wanted = new Set(['appendonly', 'aof-use-rdb-preamble', 'aof-timestamp-enabled', 'aof-disable-auto-gc']);
    await withAdminClient(await this.endpoint(), (client) => setLive(client, settings.filter(([name]) => wanted.has(name))));
  }

  async endpoint(): Promise<AdminEndpoint> {
    // not trimmed: the ACL file holds the hash of exactly these bytes
    this.adminPassword ??= await readFile(this.paths.adminSecret, 'utf8');
    return { socketPath: this.paths.socketPath, password: this.adminPassword };
  }

  /** `redis 7.0`, as Trove names a datastore version in its messages */
  private datastore(): string {
    return ['redis', this.context.binary?.versionName].filter((part) => part !== undefined).join(' ');
  }

  /**
   * The saved spec; for an instance prepared before specs were saved, one made of the host's
   * record of the flavor (`memoryMb`, or the context's) and the TLS requirement its marker file kept.
   */
  private async currentSpec(memoryMb = this.context.memoryMb): Promise<EngineSpec | undefined> {
    const dir = this.context.placement.dir;
    const saved = await readEngineSpec(dir);
    if (saved !== undefined) return saved;
    const legacy = await currentEngineSpec(dir, memoryMb);
    return legacy && { ...legacy, access: (await readTlsRequired(dir)) ? { requireTls: true } : null };
  }

  private async requireSpec(): Promise<EngineSpec> {
    const spec = await this.currentSpec();
    if (spec === undefined) {
      throw new CofferError('EngineError', 'The instance has no saved engine spec and no recorded flavor memory: prepare it again.');
    }
    return spec;
  }

  /** What redis.conf is rendered from for `spec`; refuses a TLS requirement without a certificate. */
  private async confInput(spec: EngineSpec): Promise<RedisConfigInput> {
    const tls = await installedTlsFiles(this.context.placement.dir);
    return {
      tls,
      requireTls: checkTlsRequirement(spec.access, tls),
      memoryMb: spec.memoryMb,
      overrides: spec.overrides,
      address: this.context.placement.address,
      port: this.context.placement.port,
      dataDir: this.paths.dataDir,
      socketPath: this.paths.socketPath,
      pidFile: this.paths.pidFile,
      aclFile: this.paths.aclFile,
      archiveLog: this.archivesAof(),
      synchronous: synchronousSource(spec),
      ...(await this.replicaOf(spec)),
    };
  }

  /** A replica's primary and credentials, from its spec and the host's password file. */
  private async replicaOf(spec: EngineSpec): Promise<{ replicaOf?: ReplicaOfSettings }> {
    const replication = spec.replication;
    if (replication?.role !== 'replica') return {};
    const password = await readFile(this.paths.replicationSecret, 'utf8').catch((err: unknown) => {
      throw new CofferError('EngineError', "The replica's replication password is missing: create the replica again.", { cause: err });
    });
    const { address, port, user, slot } = replication.source;
    return { replicaOf: { address, port, user, password, tls: slot === replicationOverTls } };
  }

  /** What the replication module needs: the spec, the running server, a prepare of its own. */
  replicationHost(): RedisReplicationHost {
    return {
      placement: this.context.placement,
      logger: this.logger,
      readSpec: () => this.requireSpec(),
      saveSpec: (spec) => writeEngineSpec(this.context.placement.dir, spec),
      endpoint: () => this.endpoint(),
      isRunning: () => this.isRunning(),
      start: () => this.start(),
      stop: () => this.stop(),
      tlsInstalled: async () => (await installedTlsFiles(this.context.placement.dir)) !== undefined,
      writeReplicationSecret: (password) => writeFile(this.paths.replicationSecret, password, { mode: 0o600 }),
      readReplicationSecret: () => readFile(this.paths.replicationSecret, 'utf8'),
      caCertificate: async () => {
        const files = await installedTlsFiles(this.context.placement.dir);
        return files === undefined ? undefined : readFile(files.caFile, 'utf8');
      },
      removeReplicationSecret: () => rm(this.paths.replicationSecret, { force: true }),
      readFencedPosition: async () => {
        const text = await readFile(this.paths.fencedPosition, 'utf8').catch(() => undefined);
        const position = Number(text?.trim());
        return text === undefined || !Number.isSafeInteger(position) ? undefined : position;
      },
      writeFencedPosition: (position) => writeFile(this.paths.fencedPosition, `${position}\n`, { mode: 0o600 }),
      removeFencedPosition: () => rm(this.paths.fencedPosition, { force: true }),
      render: async (spec) => {
        const input = await this.confInput(spec);
        await this.writeConf(renderRedisConf(input));
        return redisSettings(input);
      },
      prepare: (input, spec, progress) => this.prepareWith(input, spec, progress),
    };
  }

  private writeConf(conf: string): Promise<void> {
    return writeEngineFile(this.runner, this.paths.configFile, conf);
  }

  private async isRunning(): Promise<boolean> {
    return (await runningServer(this.paths)) !== undefined;
  }

  /** A new instance's data directory, secret and ACL file (initialise), made beside its certificate (guest.ts). */
  async prepareFiles(input: PrepareInput): Promise<void> {
    // what prepare refuses, refused before anything changes
    checkPrepareInput(input, this.datastore());
    if (await fileExists(this.paths.initialised)) return;
    await this.initialise(undefined, undefined, input.users);
    this.usersWritten = input.users;
  }

  async prepare(
    input: PrepareInput,
    progress: PrepareProgress = () => undefined,
    restore?: readonly RestoreLink[],
    pointInTime?: PointInTimeSource,
  ): Promise<PrepareTimings> {
    const overrides = checkPrepareInput(input, this.datastore());
    return this.prepareWith(input, { memoryMb: input.memoryMb, access: input.access, overrides }, progress, restore, pointInTime);
  }

  /** prepare's work for `spec` (a replica's carries its primary: replication.ts) */
  private async prepareWith(
    input: PrepareInput,
    spec: EngineSpec,
    progress: PrepareProgress = () => undefined,
    restore?: readonly RestoreLink[],
    pointInTime?: PointInTimeSource,
  ): Promise<PrepareTimings> {
    const began = performance.now();
    const overrides = checkPrepareInput(input, this.datastore());
    spec = { ...spec, overrides };
    // rendered before anything changes: a bad value leaves the instance directory alone
    const confInput = await this.confInput(spec);
    const conf = renderRedisConf(confInput);
    // a restore already finished (a redelivered prepare) is an instance like any other
    const restoring = restore !== undefined && !(await fileExists(this.paths.initialised));
    let rolledForward = false;
    // a new instance's users are in the ACL file it starts with (initialise, here or in prepareFiles)
    let usersCreated = !restoring && this.usersWritten === input.users;
    this.usersWritten = undefined;
    if (restoring) {
      const link = checkRdbChain(restore, this.binary().version);
      // checked before anything is restored: a plan that cannot be followed fails the restore up front
      const plan = pointInTime === undefined ? undefined : planAofReplay(await pointInTime.list(), link.facts, pointInTime.target);
      progress('restoring');
      await this.initialise(link, pointInTime === undefined || plan === undefined ? undefined : { source: pointInTime, plan });
      rolledForward = plan !== undefined;
    } else if (!(await fileExists(this.paths.initialised))) {
      progress('initialising');
      await this.initialise(undefined, undefined, input.users);
      usersCreated = true;
    }
    const initialised = performance.now();
    // Redis 7 with the AOF on loads the AOF alone: the restored RDB is loaded with it off (restore.ts);
    // a point-in-time restore wrote the AOF Redis loads (aof-replay.ts)
    const aof = !rolledForward && redisSettings(confInput).some(([name, value]) => name === 'appendonly' && value === true);
    // (archiving, which keeps the AOF on, waits until the AOF is written: ensureArchiving below)
    const loadRdb = { ...confInput, archiveLog: false, overrides: { ...overrides, appendonly: false } };
    await Promise.all([this.writeConf(restoring && aof ? renderRedisConf(loadRdb) : conf), writeEngineSpec(this.context.placement.dir, spec)]);
    progress('starting');
    try {
      await this.start();
      if (restoring) {
        if (aof) {
          await enableAof(await this.endpoint());
          await this.writeConf(conf);
          if (this.archivesAof()) await this.ensureArchiving();
        }
        await writeFile(this.paths.initialised, new Date().toISOString());
      }
    } catch (err) {
      if (restoring) await this.discardData();
      throw err;
    }
    const started = performance.now();
    if (!usersCreated) {
      progress('creating users');
      await ensureUsers(await this.endpoint(), input.users);
    }
    const done = performance.now();
    return { initMs: initialised - began, startMs: started - initialised, setupMs: done - started };
  }

  /**
   * A fresh data directory holding only the ACL file, and with `restore` the backup's RDB as
   * the dump file the first start loads. Until `.redis-init.done` exists an interrupted prepare
   * starts over from nothing: the host writes into the directory only while it still owns it,
   * before handing it to the engine's user. A restored instance gets the marker once its data
   * is loaded and its AOF written (prepare), a new one here.
   */
  private async initialise(
    restore?: RestoreLink,
    rollForward?: { source: PointInTimeSource; plan: AofReplayPlan },
    users: readonly UserSpec[] = [],
  ): Promise<void> {
    await this.discardData();
    const adminPassword = newPassword(48);
    await Promise.all([writeFile(this.paths.adminSecret, adminPassword, { mode: 0o600 }), mkdir(this.paths.dataDir, { mode: 0o700 })]);
    this.adminPassword = adminPassword;
    // no server has worked in it: the next start need not look for one's leftovers (start)
    this.freshData = true;
    await writeFile(this.paths.aclFile, renderInitialAclFile(adminPassword, users), { mode: 0o600 });
    await this.runner.handOver(this.paths.aclFile);
    if (restore !== undefined) {
      const rdb = join(this.paths.dataDir, 'dump.rdb');
      let written: string[];
      try {
        written = rollForward === undefined ? (await writeRdb(restore, rdb), [rdb]) : await writeRestoredAof(this.paths.dataDir, restore, rollForward.source, rollForward.plan);
      } catch (err) {
        await this.discardData();
        throw err;
      }
      for (const path of written) await this.runner.handOver(path);
    }
    await this.runner.handOver(this.paths.dataDir);
    if (restore === undefined) await writeFile(this.paths.initialised, new Date().toISOString());
  }

  /** Stops whatever serves the data directory and removes it: before a new one, and what a failed restore leaves. */
  private async discardData(): Promise<void> {
    // none yet (a new instance): no server can work in it (Redis runs in its data directory),
    // and looking for one walks every process on the host
    if (!(await fileExists(this.paths.dataDir))) return;
    this.freshData = false;
    await this.serverProcess.stop().catch((err: unknown) => this.logger.warn({ err }, 'could not stop Redis before discarding its data'));
    await rm(this.paths.dataDir, { recursive: true, force: true });
  }

  async resize(memoryMb: number): Promise<void> {
    const dir = this.context.placement.dir;
    const spec: EngineSpec = { ...(await this.currentSpec(memoryMb))!, memoryMb };
    // rendered first: a bad value leaves the running engine alone
    await this.writeConf(renderRedisConf(await this.confInput(spec)));
    await writeEngineSpec(dir, spec);
    if (!(await this.isRunning())) {
      await this.start();
      return;
    }
    // maxmemory changes live: no restart, no reload of the dataset
    await setMaxmemory(await this.endpoint(), maxmemoryMb(memoryMb));
  }

  async updateAccess(access: AccessSpec): Promise<void> {
    // the default (the host's client ranges) is what Redis enforces already: only TLS can change
    checkAccess(access);
    const spec: EngineSpec = { ...(await this.requireSpec()), access };
    const input = await this.confInput(spec);
    await this.writeConf(renderRedisConf(input));
    await writeEngineSpec(this.context.placement.dir, spec);
    if (input.tls !== undefined) await this.applyLiveTls(input.tls, input.requireTls === true);
  }

  async installTls(material: TlsMaterial): Promise<void> {
    const files = await writeTlsFiles(this.runner, this.context.placement.dir, material);
    // before the first prepare there is no redis.conf yet: prepare renders it with these files
    const spec = (await fileExists(this.paths.configFile)) ? await this.currentSpec() : undefined;
    if (spec !== undefined) await this.writeConf(renderRedisConf(await this.confInput(spec)));
    await this.applyLiveTls(files, spec?.access?.requireTls === true);
  }

  /**
   * The running server's TLS follows the files and the requirement (redis.conf already does,
   * so that a restart keeps them). Not CONFIG REWRITE: the server's user cannot write in the
   * host's directory.
   */
  private async applyLiveTls(files: TlsFiles, requireTls: boolean): Promise<void> {
    if (!(await this.isRunning())) return;
    const port = this.context.placement.port;
    await withAdminClient(await this.endpoint(), (client) => applyTls(client, files, port, requireTls));
  }

  /**
   * Redis has no read-only switch for a primary: asking for more replicas than it has (it has
   * none) makes it refuse every write command with NOREPLICAS while reads go on. Tenant users
   * and root lack CONFIG SET (acl.ts), so they cannot undo it. Not in redis.conf: a restart
   * clears it, and the guest sets it again while the volume is full. Lifted, the value is the
   * spec's again (a synchronous source's 1, failover.ts).
   */
  async refuseWrites(refused: boolean): Promise<void> {
    if (!(await this.isRunning())) return;
    const lifted = refused ? undefined : synchronousSource(await this.requireSpec()) ? '1' : '0';
    await withAdminClient(await this.endpoint(), (client) =>
      client.call('CONFIG', ['SET', 'min-replicas-to-write', lifted ?? String(writeRefusingReplicas)]),
    );
  }

  logFiles(): Record<string, string> {
    return { general: this.paths.logFile };
  }

  async start(): Promise<void> {
    // a source started again is fenced no longer: a fence asked later reads its position anew
    await rm(this.paths.fencedPosition, { force: true });
    const fresh = this.freshData;
    try {
      await this.serverProcess.start();
    } finally {
      this.freshData = false;
    }
    // a data directory initialised now has the default user as it should be
    if (fresh) return;
    await this.repairDefaultUser().catch((err: unknown) => this.logger.warn({ err }, "could not give Redis's default user root's rights"));
  }

  /**
   * An instance made before its `default` user kept root's rights while off (acl.ts,
   * rootDisableArguments) gets them now: until then each restart dropped the AOF's transactions.
   */
  private async repairDefaultUser(): Promise<void> {
    await withAdminClient(await this.endpoint(), async (client) => {
      const reply = (await client.call('ACL', ['GETUSER', rootUser])) as unknown[];
      const field = (name: string) => reply[reply.indexOf(name) + 1];
      const flags = field('flags');
      if (Array.isArray(flags) && flags.includes('off') && field('commands') === '-@all') {
        await applyAcl(client, [['SETUSER', ...rootDisableArguments()]]);
        this.logger.info("Redis's default user given root's rights while off: the AOF's transactions replay at the next start");
      }
    });
  }

  stop(): Promise<void> {
    this.probe.close();
    this.answered = false;
    return this.serverProcess.stop();
  }

  private serverControl(): ServerControl {
    const { dataDir, logFile } = this.paths;
    return {
      title: 'Redis',
      stopSignal: 'SIGTERM',
      stopTimeoutMs,
      // adopted (after an agent restart) or still starting: waited for until it answers
      running: () => runningServer(this.paths),
      // what a server that died left there; none in a data directory no server has worked in
      beforeSpawn: async () => (this.freshData ? undefined : killServerProcesses(dataDir)),
      // relative: the command line is anyone's to read in ps, and the path names the instance
      spawn: () => this.runner.spawnDetached(this.server(), [relative(dataDir, this.paths.configFile)], { logFile, cwd: dataDir }),
      waitReady: (pid, exited) =>
        waitUntilReady({ pid, exited, endpoint: () => this.endpoint(), logFile, timeoutMs: startTimeoutMs }),
      stopPid: (pid) => stopServer(pid, dataDir, stopTimeoutMs),
      afterStop: () => killServerProcesses(dataDir),
    };
  }

  async health(): Promise<EngineHealth> {
    if ((await this.running.pid()) === undefined) {
      this.probe.close();
      this.answered = false;
      return 'stopped';
    }
    // one round trip answers the check and feeds the hz policy; it throws only where the server
    // answered a PING over a new connection and then failed the rest
    const healthy = await this.probe.query((client) => this.probeOnce(client)).catch((err: unknown) => {
      this.hzPolicy.unknown();
      this.logger.warn({ err }, "Redis answered but its activity could not be read: its timer rate is left as it is");
      return true;
    });
    this.answered = healthy === true;
    if (this.answered) this.copySourceUsers();
    return this.answered ? 'healthy' : 'running';
  }

  /** Whether the last health check found the server answering (the guest probes an idle one less often than it checks its pid). */
  private answered = false;

  /** whether the server answers; an idle instance's timer slowed, a used one's given back (idle-hz.ts) */
  private async probeOnce(client: Redis): Promise<boolean> {
    const { answers, activity } = await readProbe(client);
    if (!answers) {
      this.hzPolicy.unknown();
      return false;
    }
    if (activity === undefined) {
      this.hzPolicy.unknown();
      return true;
    }
    try {
      const hz = await this.hzPolicy.next(activity, async () => (await this.currentSpec())?.overrides?.hz);
      if (hz !== undefined) {
        await client.call('CONFIG', ['SET', 'hz', String(hz)]);
        this.logger.debug({ hz }, hz === idleHz ? 'idle: Redis timer slowed' : 'in use: Redis timer back to its rate');
      }
    } catch (err) {
      // a failure only costs idle CPU
      this.logger.warn({ err }, "Redis's timer rate not adjusted to its use");
    }
    return true;
  }

  /** no client of the tenant's used the server between the last two health checks (idle-hz.ts) */
  idle(): boolean {
    return this.hzPolicy.idle === true;
  }

  private lastUserCopy = 0;

  /** A replica's users follow its primary's (replica-users.ts): copied in the background, at most every 15 s. */
  private copySourceUsers(): void {
    if (Date.now() - this.lastUserCopy < userCopyIntervalMs) return;
    this.lastUserCopy = Date.now();
    // only a replica has a primary to copy from: any other instance reads its spec and stops there
    readEngineSpec(this.context.placement.dir)
      .then((spec) => (spec?.replication?.role === 'replica' ? syncReplicaUsers(this.replicationHost()) : 0))
      .then(
      (changed) => {
        if (changed > 0) this.logger.info({ changed }, "a replica's users copied from its primary");
      },
      (err: unknown) => this.logger.warn({ err }, "could not copy the primary's users to the replica"),
    );
  }

  metrics(): Promise<EngineMetrics | undefined> {
    return this.probe.query(redisMetrics);
  }

  release(): void {
    this.probe.close();
  }

  processId(): Promise<number | undefined> {
    return this.running.pid();
  }
}

export const redisLifecycle: LifecycleModule<RedisLifecycle> = {
  // Redis cannot tell clients apart by address: access rules are the host's (see checkAccess)
  accessRules: false,
  create: (context) => new RedisLifecycle(context),
};
