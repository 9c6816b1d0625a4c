import { access, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  conductorContract,
  conductorTopic,
  createRpcClient,
  guestContract,
  guestTopic,
  serveRpc,
  type CreateBackupInput,
  type DataCheckState,
  type GuestServiceStatus,
  type MessageMeta,
  type PrepareInput,
  type ReplicationGrantSpec,
  type RpcClient,
  type Subscription,
  type Transport,
} from '../bus/index.js';
import { CofferError, isCofferError, primaryLeaseTimes } from '../common/index.js';
import type { Logger, PrimaryLeaseTimes } from '../common/index.js';
import { recordAppliedGeneration } from './applied-generation.js';
import { backupsNotOnHost, restoreChain, runBackup, type GuestBackupHost } from './backup-runner.js';
import { directoryUsage } from './directory-usage.js';
import type {
  ConfigurationAdmin,
  DatabaseAdmin,
  EngineBinary,
  EngineDriver,
  PointInTimeSource,
  PrepareProgress,
  PrepareStep,
  PrepareTimings,
  ReplicationAdmin,
  ReplicaSeed,
  RestoreLink,
  RootAdmin,
  UserAdmin,
  WarmSource,
} from './engines/engine.js';
import { CheckRound, type RoundOfChecks } from './check-round.js';
import { GuestLogs } from './guest-logs.js';
import type { HeartbeatBatch } from './heartbeat-batch.js';
import { GuestHeartbeats } from './guest-heartbeats.js';
import { CertificateRenewal, type CertificateIssuer } from './certificate-renewal.js';
import { ProbeSpacing } from './probe-spacing.js';
import { EngineSupervision } from './engine-supervision.js';
import { faultMessage } from './fault-message.js';
import { LeaseWatchdog } from './lease-watchdog.js';
import { idleCheckMs as leaseIdleCheckMs, PrimaryLeaseKeeper } from './primary-lease-keeper.js';
import { progressReporter, type ReportProgress } from './progress-reporter.js';
import { pointInTimeSource, WalShipper } from './wal-shipper.js';
import { VolumeGuard } from './volume-guard.js';
import { engineRegistry, type EngineName } from './engines/registry.js';
import type { ProcessRunner } from './process-runner.js';

// The guest of one instance: serves `guest.<instanceId>`, drives the engine through its driver,
// and heartbeats the engine's health to the conductor. Operations on the engine run one at a
// time; a health check never overlaps a prepare, stop or restart. The check itself is
// engine-supervision.ts, how often it asks the engine probe-spacing.ts, its beats
// guest-heartbeats.ts, the certificate's renewal certificate-renewal.ts.

export type DesiredState = 'running' | 'stopped';

export interface GuestInstance {
  instanceId: string;
  /** the instance's directory, owned by this guest apart from the host's own record in it */
  dir: string;
  address: string;
  port: number;
  /** the volume size the guest holds the engine to (read-only once the directory fills it) */
  volumeSizeGb: number;
  /** the flavor's memory as the host recorded it (see EngineContext.memoryMb) */
  memoryMb?: number;
}

export type { CertificateIssuer } from './certificate-renewal.js';

export interface GuestOptions {
  instance: GuestInstance;
  /** `binary` undefined: this host lacks the version; the guest still serves, stops and reports */
  engine: { manager: EngineName; binary: EngineBinary | undefined };
  runner: ProcessRunner;
  transport: Transport;
  logger: Logger;
  heartbeatIntervalMs: number;
  /**
   * The host's round of health checks, which checks this guest every `heartbeatIntervalMs` among
   * the others (check-round.ts). Absent: the guest keeps a round of its own.
   */
  checkRound?: RoundOfChecks;
  /** sends the periodic beats of the host's guests together (heartbeat-batch.ts); absent: each alone */
  heartbeatBatch?: HeartbeatBatch;
  /**
   * How often the engine itself is asked while it is idle (engines that tell: EngineLifecycle.idle);
   * the checks between look at its process only. Default a minute.
   */
  idleProbeIntervalMs?: number;
  /** how often a healthy beat carries the engine's metrics (default a minute) */
  engineMetricsIntervalMs?: number;
  /** whether the engine should be running, as last recorded by the host */
  desiredState: DesiredState;
  /** records a change of desired state, so that a restarted host knows whether to start the engine */
  saveDesiredState(state: DesiredState): Promise<void>;
  /** records a resized volume's size, so that a restarted host holds the instance to it */
  saveVolumeSize?(sizeGb: number): Promise<void>;
  /** client address ranges pg_hba/grants allow when prepare names none */
  defaultClientCidrs: readonly string[];
  /** clusters the host initialised ahead of time for this instance's version */
  warm?: WarmSource;
  /**
   * Whether root may be enabled: only where the engine runs as an OS user of its own, since a
   * tenant's superuser runs programs and reads files as that user (COPY ... PROGRAM, FILE).
   */
  rootAllowed: boolean;
  /** issues the instance's certificate: every instance serves TLS */
  certificates: CertificateIssuer;
  /** how often a prepared instance's certificate is checked for renewal; default hourly */
  certificateCheckIntervalMs?: number;
  /** where backups are stored and the key that unwraps projects' keys; absent: backups are refused */
  backups?: GuestBackupHost;
  /** how often the host's round also holds the engine's log files to their size limit; default a minute */
  logTrimIntervalMs?: number;
  /** how often the engine's archived log is shipped to the backup storage; default 10 s */
  walShipIntervalMs?: number;
  /**
   * Lets the engine's OS user reach a replica's primary (`undefined`: no longer a replica) and
   * records it, so that a restarted host walls the engine the same way. Absent: the host has
   * no wall to open (its engines run as its own user).
   */
  allowReplicationSource?(source: { address: string; port: number } | undefined): Promise<void>;
  /** the primary lease's renewal period (tests); the lease's length is the conductor's */
  leaseTimes?: PrimaryLeaseTimes;
}

export interface Guest {
  readonly instanceId: string;
  /**
   * Settles once the guest has taken up what it found when it started (its first health check:
   * the engine adopted, started or stopped as its desired state says; or a leftover of an
   * interrupted prepare stopped), whatever came of it. Every request that touches the engine
   * runs after it.
   */
  readonly adopted: Promise<void>;
  /** the wall time of the last prepare this guest ran, in ms */
  readonly lastPrepareMs: number | undefined;
  /** a new certificate from the host's CA, served by the running engine without a restart */
  rotateCertificate(): Promise<void>;
  /** stops serving and supervising; the engine keeps running */
  close(): Promise<void>;
  /** stops the engine, then closes */
  destroy(): Promise<void>;
}

/** Trove's `.guestagent.prepare.end`: from then on the guest supervises and heartbeats. */
const preparedMarker = '.prepare.done';
const defaultWalShipIntervalMs = 10_000;
/** how often the engine's log files are held to their size limit (guest-logs.ts) */
const defaultLogTrimIntervalMs = 60_000;
const defaultEngineMetricsIntervalMs = 60_000;
const defaultIdleProbeIntervalMs = 60_000;
const certificateCheckIntervalMs = 60 * 60_000;

const rootNotContained = () =>
  new CofferError(
    'OperationNotSupported',
    "Root is not available on this host: its engines run as one shared OS user, which a tenant's root could use " +
      'to reach other instances and Coffer itself. Run the Coffer agent as root so that each instance gets its own OS user.',
  );

/** how far along a prepare is as each of its phases begins: initdb and the start take most of it */
const preparePercent: Record<PrepareStep, number> = {
  initialising: 10,
  'taking a prepared cluster': 10,
  restoring: 10,
  starting: 40,
  'creating databases and users': 70,
  'creating users': 70,
};

// a restore reads its chain between 'restoring' and 'starting'
const restorePercent = (read: number, total: number) =>
  preparePercent.restoring + Math.floor(((preparePercent.starting - preparePercent.restoring) * read) / Math.max(1, total));
const megabytes = (bytes: number) => `${Math.round(bytes / 1e6)} MB`;

class GuestAgent implements Guest {
  readonly instanceId: string;
  lastPrepareMs: number | undefined;
  private readonly engine: EngineDriver;
  private readonly conductor: RpcClient<typeof conductorContract>;
  private readonly progress: ReportProgress;
  private readonly logger: Logger;
  private subscription: Subscription | undefined;
  private prepared = false;
  private backupRunning = false;
  /** the data check this guest started, and where it stands (checkData) */
  private dataCheck: { state: DataCheckState } | undefined;
  /** aborted when the guest closes: a backup or restore in progress stops with it */
  private readonly backupAbort = new AbortController();
  private desired: DesiredState;
  private closed = false;
  /** takes the guest out of its host's round of checks */
  private leaveRound: (() => void) | undefined;
  /** the host's round of checks, or (a guest started alone) one of its own */
  private readonly round: RoundOfChecks;
  private tail: Promise<unknown> = Promise.resolve();
  private busy = 0;
  /** how often the checks ask the engine (an idle one less often) */
  private readonly probes: ProbeSpacing;
  private readonly beats: GuestHeartbeats;
  private readonly certificate: CertificateRenewal;
  /** the health check of a prepared instance, and what it does about what it finds */
  private readonly supervision: EngineSupervision;
  /** ships the engine's archived log (engines with point-in-time recovery, on hosts with a backup storage) */
  private readonly walShipper: WalShipper | undefined;
  private readonly logs: GuestLogs;
  private logsTrimmedAt = Date.now();
  adopted: Promise<void> = Promise.resolve();
  /** holds the engine to the volume size: read-only once it is full */
  private readonly volume: VolumeGuard;
  /** a primary with replicas runs its engine only while it holds its lease (engines with replication) */
  private readonly lease: PrimaryLeaseKeeper | undefined;

  constructor(private readonly options: GuestOptions) {
    this.instanceId = options.instance.instanceId;
    this.logger = options.logger.child({ instanceId: this.instanceId });
    this.desired = options.desiredState;
    this.round = options.checkRound ?? new CheckRound({ intervalMs: options.heartbeatIntervalMs, slices: 1, logger: this.logger });
    this.conductor = createRpcClient(options.transport, conductorContract, conductorTopic);
    this.progress = progressReporter(this.conductor, this.instanceId, this.logger);
    this.engine = engineRegistry[options.engine.manager].create({
      placement: options.instance,
      binary: options.engine.binary,
      runner: options.runner,
      logger: this.logger,
      defaultClientCidrs: options.defaultClientCidrs,
      warm: options.warm,
      ...(options.instance.memoryMb === undefined ? {} : { memoryMb: options.instance.memoryMb }),
      archiveLog: options.backups !== undefined,
    });
    this.volume = new VolumeGuard({
      dir: options.instance.dir,
      sizeGb: options.instance.volumeSizeGb,
      refuseWrites: (refused) => this.engine.refuseWrites(refused),
      quiet: () => this.engine.idle?.() === true,
      logger: this.logger,
    });
    this.probes = new ProbeSpacing({
      engine: this.engine,
      checkIntervalMs: options.heartbeatIntervalMs,
      idleProbeIntervalMs: options.idleProbeIntervalMs ?? defaultIdleProbeIntervalMs,
    });
    this.certificate = new CertificateRenewal({
      issuer: options.certificates,
      dir: options.instance.dir,
      install: (material) => this.engine.installTls(material),
      tlsPort: engineRegistry[options.engine.manager].tlsPort(options.instance.port),
      checkIntervalMs: options.certificateCheckIntervalMs ?? certificateCheckIntervalMs,
    });
    this.beats = new GuestHeartbeats({
      instanceId: this.instanceId,
      conductor: this.conductor,
      volume: this.volume,
      metrics: () => this.engine.metrics(),
      tls: () => this.certificate.report,
      ...(options.heartbeatBatch === undefined ? {} : { batch: options.heartbeatBatch }),
      checkIntervalMs: options.heartbeatIntervalMs,
      engineMetricsIntervalMs: options.engineMetricsIntervalMs ?? defaultEngineMetricsIntervalMs,
      logger: this.logger,
    });
    if (this.engine.replication !== undefined) {
      this.lease = new PrimaryLeaseKeeper({
        instanceId: this.instanceId,
        dir: options.instance.dir,
        conductor: this.conductor,
        logger: this.logger.child({ component: 'primary-lease' }),
        times: options.leaseTimes ?? primaryLeaseTimes,
        fence: (reason) => this.fenceForLease(reason),
        enginePid: () => this.engine.processId(),
        watchdog: new LeaseWatchdog(options.instance.dir, this.logger.child({ component: 'lease-watchdog' })),
        // a round at least as frequent as the keeper's own look takes that look in its turns
        ...(options.heartbeatIntervalMs <= leaseIdleCheckMs ? { round: this.round } : {}),
        regained: () => {
          this.exclusive(() => this.check()).catch((err: unknown) => this.logger.error({ err }, 'check after the lease was granted failed'));
        },
      });
    }
    this.supervision = new EngineSupervision({
      engine: this.engine,
      probes: this.probes,
      certificate: this.certificate,
      heartbeat: (status, message, periodic, measure) => this.heartbeat(status, message, periodic, measure),
      lease: this.lease,
      fenceForLease: (reason) => this.fenceForLease(reason),
      desired: () => this.desired,
      logger: this.logger,
    });
    this.logs = new GuestLogs({
      dir: options.instance.dir,
      instanceId: this.instanceId,
      manager: options.engine.manager,
      files: () => this.engine.logFiles(),
      control: this.engine.logs,
      storage: options.backups?.storage,
      logger: this.logger.child({ component: 'guest-logs' }),
    });
    const archive = this.engine.backup?.walArchive;
    if (archive !== undefined && options.backups !== undefined) {
      const shipIntervalMs = options.walShipIntervalMs ?? defaultWalShipIntervalMs;
      this.walShipper = new WalShipper({
        archive,
        host: options.backups,
        dir: options.instance.dir,
        instanceId: this.instanceId,
        conductor: this.conductor,
        log: this.logger.child({ component: 'wal-shipper' }),
        intervalMs: shipIntervalMs,
        // at the same pace, the shipper's rounds go in the host's round's turns (no timer of its own)
        ...(shipIntervalMs === options.heartbeatIntervalMs ? { round: this.round } : {}),
      });
    }
  }

  async start(): Promise<void> {
    this.prepared = await access(join(this.options.instance.dir, preparedMarker)).then(
      () => true,
      () => false,
    );
    this.supervision.adopting = this.prepared;
    // queued before serving, so that a request delivered at once (a prepare, a restart, a user
    // change) runs after it and never meets an engine not yet adopted
    this.adopted = this.prepared
      ? this.exclusive(async () => {
          // a primary with replicas learns whether it may run before its engine is started
          await this.lease?.renewNow();
          await this.check();
        }).catch((err) => this.logger.error({ err }, 'health check failed'))
      : this.exclusive(() => this.stopUnprepared()).catch((err) => this.logger.error({ err }, 'stop of a leftover engine failed'));
    this.subscription = await serveRpc(
      this.options.transport,
      guestContract,
      guestTopic(this.instanceId),
      {
        prepare: (args, meta) => this.exclusive(() => this.prepare(args, this.requestLogger(meta))),
        restart: (_args, meta) => this.exclusive(() => this.restart(this.requestLogger(meta))),
        stopDb: (_args, meta) => this.exclusive(() => this.stopDb(this.requestLogger(meta))),
        startDb: (_args, meta) => this.exclusive(() => this.startDb(this.requestLogger(meta))),
        getFilesystemStats: async () => ({
          totalBytes: this.volume.sizeBytes,
          usedBytes: await directoryUsage(this.options.instance.dir),
        }),
        resizeVolume: ({ sizeGb }, meta) => this.exclusive(() => this.resizeVolume(sizeGb, this.requestLogger(meta))),
        resize: ({ memoryMb, generation }, meta) =>
          this.exclusive(async () => {
            await this.resize(memoryMb, this.requestLogger(meta));
            return { generation: await this.applied(generation) };
          }),
        updateAccess: ({ access, generation }) =>
          this.running(async () => {
            await this.engine.updateAccess(access);
            return { generation: await this.applied(generation) };
          }),
        listDatabases: () => this.running(async () => ({ databases: await this.databases().list() })),
        createDatabases: ({ databases }) => this.running(() => this.databases().create(databases)),
        deleteDatabase: ({ name }) => this.running(() => this.databases().delete(name)),
        listUsers: () => this.running(async () => ({ users: await this.users().list() })),
        createUsers: ({ users }) => this.running(() => this.users().create(users)),
        deleteUser: ({ user }) => this.running(() => this.users().delete(user)),
        updateUser: ({ user, changes }) => this.running(() => this.users().update(user, changes)),
        grantAccess: ({ user, databases }) => this.running(() => this.userAccess().grant(user, databases)),
        revokeAccess: ({ user, database }) => this.running(() => this.userAccess().revoke(user, database)),
        enableRoot: async ({ password }) => {
          if (!this.options.rootAllowed) throw rootNotContained();
          return this.running(async () => ({ name: await this.rootAdmin().enable(password) }));
        },
        disableRoot: () => this.running(() => this.rootAdmin().disable()),
        applyConfiguration: ({ overrides, generation }, meta) =>
          this.exclusive(async () => {
            this.requirePrepared();
            const configuration = this.configurationAdmin();
            this.requestLogger(meta).info({ parameters: Object.keys(overrides) }, 'applying configuration overrides');
            this.progress('applying configuration', 20);
            const outcome = await configuration.apply(overrides);
            this.progress('configuration applied', 100);
            return { ...outcome, generation: await this.applied(generation) };
          }),
        getConfiguration: () => this.running(async () => ({ values: await this.configurationAdmin().effective() })),
        // these run beside the queue, so they wait for adoption themselves
        createBackup: async (input, meta) => {
          await this.adopted;
          return this.startBackup(input, this.requestLogger(meta).child({ backupId: input.target.backupId }));
        },
        checkData: async (_args, meta) => {
          await this.adopted;
          return this.checkData(this.requestLogger(meta));
        },
        addReplica: ({ replicaId, address, fromBackup }, meta) =>
          this.running(async () => {
            const replication = this.replicationAdmin();
            this.requireStarted();
            this.requestLogger(meta).info({ replicaId, fromBackup }, 'making room for a replica');
            const grant = await replication.addReplica({ id: replicaId, address, ...(fromBackup === undefined ? {} : { fromBackup }) });
            // a source with replicas holds a lease from now on; the first is asked for at once
            void this.lease?.renewNow();
            return grant;
          }),
        removeReplica: ({ replicaId }, meta) =>
          this.running(async () => {
            const replication = this.replicationAdmin();
            this.requireStarted();
            this.requestLogger(meta).info({ replicaId }, 'dropping what a replica had');
            await replication.removeReplica(replicaId);
          }),
        detachReplica: (_args, meta) => this.running(() => this.detachReplica(this.requestLogger(meta))),
        getReplicationStatus: () => this.running(() => this.replicationAdmin().status()),
        fenceSource: (_args, meta) => this.running(() => this.fenceSource(this.requestLogger(meta))),
        followSource: ({ grant }, meta) => this.running(() => this.followSource(grant, this.requestLogger(meta))),
        setSynchronous: ({ synchronous }, meta) =>
          this.running(async () => {
            const replication = this.replicationAdmin();
            this.requireStarted();
            this.requestLogger(meta).info({ synchronous }, 'setting how commits wait for replicas');
            await replication.setSynchronous(synchronous);
          }),
        guestLogs: () => this.running(async () => ({ logs: await this.logs.list() })),
        guestLogAction: (input, meta) => this.running(async () => ({ log: await this.logs.act(input, this.requestLogger(meta)) })),
        rotateCertificate: (_args, meta) =>
          this.exclusive(async () => {
            this.requirePrepared();
            await this.certificate.renew(true, this.requestLogger(meta));
            return {};
          }),
      },
      this.logger,
    );
    this.leaveRound = this.round.join(() => this.periodicCheck());
    this.walShipper?.start();
    this.lease?.start();
  }

  /**
   * An engine that runs before prepare finished was left by a host that died mid-prepare.
   * Nothing supervises it: it is stopped, and a prepare delivered again starts it anew.
   */
  private async stopUnprepared(): Promise<void> {
    if ((await this.engine.processId()) !== undefined) {
      this.logger.warn('engine left running by an interrupted prepare: stopping it until prepare runs again');
      await this.engine.stop();
    } else {
      this.logger.info('instance not prepared yet: waiting for prepare');
    }
  }

  private requestLogger(meta: MessageMeta): Logger {
    return this.logger.child({ requestId: meta.context.requestId });
  }

  private exclusive<T>(work: () => Promise<T>, periodic = false): Promise<T> {
    // an operation may have restarted or reconfigured the engine: the next check asks it
    if (!periodic) this.probes.touched();
    this.busy += 1;
    const run = this.tail.then(work).finally(() => {
      this.busy -= 1;
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** the host's round calls on the guest: a turn that finds an operation in progress is skipped (that operation reports itself) */
  private async periodicCheck(): Promise<void> {
    if (this.busy !== 0 || this.closed) return;
    await this.exclusive(async () => {
      try {
        await this.check(true);
      } finally {
        await this.trimLogsWhenDue();
      }
    }, true);
  }

  /**
   * The log files are held to their limit from the host's round, in the turn of a check: no timer
   * of the guest's own, and (unlike an operation) no probe of an idle engine at the next check,
   * since a trim does not touch the engine.
   */
  private async trimLogsWhenDue(): Promise<void> {
    if (Date.now() - this.logsTrimmedAt < (this.options.logTrimIntervalMs ?? defaultLogTrimIntervalMs)) return;
    this.logsTrimmedAt = Date.now();
    await this.logs.trim().catch((err: unknown) => this.logger.warn({ err }, 'log files not checked against their limit'));
  }

  private async setDesired(state: DesiredState): Promise<void> {
    if (this.desired === state) return;
    this.desired = state;
    await this.options.saveDesiredState(state);
  }
  /** an operation's beat, or (`periodic`) the host round's: see guest-heartbeats.ts */
  private heartbeat(status: GuestServiceStatus, message?: string, periodic = false, measure = periodic): Promise<void> {
    return this.beats.send(status, message, periodic, measure);
  }

  async rotateCertificate(): Promise<void> {
    await this.exclusive(async () => {
      this.requirePrepared();
      await this.certificate.renew(true, this.logger);
    });
  }

  /** `periodic`: the host round's check (engine-supervision.ts) */
  private async check(periodic = false): Promise<void> {
    if (!this.prepared || this.closed) return;
    return this.supervision.check(periodic);
  }

  private async prepare(input: PrepareInput, log: Logger): Promise<void> {
    if (this.closed) return;
    if (this.prepared) {
      // a redelivered prepare: report what is, starting the engine if it should run
      log.info('prepare received again for a prepared instance');
      return this.check();
    }
    const began = performance.now();
    // not waited for before the work: the guest's next beat goes after it (guest-heartbeats.ts)
    // and the conductor drops an older beat arriving after a newer one
    const building = this.heartbeat('BUILDING');
    try {
      const { restore, replicaOf, ...engineInput } = input;
      // a fresh engine's own files (its data directory, secrets, users) beside the certificate:
      // neither needs the other
      const files = replicaOf === undefined && restore === undefined ? this.engine.prepareFiles?.(engineInput) : undefined;
      // before the engine's configuration is rendered: it serves TLS from its first start
      const installed = this.certificate.renew(false, log);
      // a restore or a replica's copy streams its data through programs run as the engine's user
      // (tar, dd), which start only once the instance's wall, raised beside this, is up
      const walled = replicaOf === undefined && restore === undefined ? undefined : this.options.runner.ready();
      // all settled before one's failure fails the prepare (whose stop must not race the files)
      const [certificate, made, wall] = await Promise.allSettled([installed, files, walled]);
      if (wall.status === 'rejected') throw wall.reason;
      if (certificate.status === 'rejected') throw certificate.reason;
      if (made.status === 'rejected') throw made.reason;
      const report = (step: PrepareStep) => this.progress(step, preparePercent[step]);
      const timings =
        replicaOf === undefined
          ? await this.engine.prepare(
              engineInput,
              report,
              restore === undefined ? undefined : this.restoreChain(restore),
              restore?.pointInTime === undefined ? undefined : this.pointInTime(restore),
            )
          : await this.prepareReplica(engineInput, replicaOf, report, log, restore);
      // a replica's data (PostgreSQL's postgresql.auto.conf) or a backup's may carry its source's refusal
      if (replicaOf === undefined && restore === undefined) this.volume.startedFresh();
      await this.applied(input.generation);
      await writeFile(join(this.options.instance.dir, preparedMarker), new Date().toISOString());
      this.prepared = true;
      await this.setDesired('running');
      this.lastPrepareMs = performance.now() - began;
      log.info({ prepareMs: Math.round(this.lastPrepareMs), ...roundAll(timings) }, 'prepare finished');
      this.progress('ready', 100);
      await building;
      await this.heartbeat('HEALTHY');
    } catch (err) {
      log.error({ err }, 'prepare failed');
      // nothing may keep running that nobody supervises
      await this.engine.stop().catch((stopErr) => log.error({ err: stopErr }, 'stop after failed prepare failed'));
      await building;
      await this.heartbeat('FAILED', faultMessage(err));
    }
  }

  /**
   * A replica's prepare: its engine's user may reach the primary first, then it copies it (or
   * starts from the primary's backup, `restore`, where it can) and streams.
   */
  private async prepareReplica(
    input: PrepareInput,
    grant: ReplicationGrantSpec,
    report: PrepareProgress,
    log: Logger,
    restore: PrepareInput['restore'],
  ): Promise<PrepareTimings> {
    const replication = this.replicationAdmin();
    log.info({ source: `${grant.address}:${grant.port}`, backupId: restore?.chain[0]?.backupId }, 'preparing a replica');
    await this.options.allowReplicationSource?.({ address: grant.address, port: grant.port });
    const { copiedFrom, ...timings } = await replication.prepareReplica(input, grant, report, restore === undefined ? undefined : this.replicaSeed(restore, log));
    if (copiedFrom !== undefined) log.info({ copiedFrom }, copiedFrom === 'backup' ? "the replica started from its primary's backup" : 'the replica copied its primary');
    return timings;
  }

  /** The seed a replica may start from; none where this host cannot read the backups (the replica copies its primary). */
  private replicaSeed(restore: NonNullable<PrepareInput['restore']>, log: Logger): ReplicaSeed | undefined {
    try {
      return { chain: this.restoreChain(restore), ...(restore.pointInTime === undefined ? {} : { log: this.pointInTime(restore) }) };
    } catch (err) {
      log.warn({ err }, "the primary's backup cannot be read here: the replica copies its primary");
      return undefined;
    }
  }

  private replicationAdmin(): ReplicationAdmin {
    if (this.engine.replication === undefined) throw this.unsupported('replication');
    return this.engine.replication;
  }

  /** A replica promoted to a standalone primary: its engine's user no longer needs its former primary. */
  private async detachReplica(log: Logger): Promise<void> {
    const replication = this.replicationAdmin();
    this.requireStarted();
    log.info('detaching the replica from its primary');
    await replication.detach();
    await this.options.allowReplicationSource?.(undefined);
  }

  /**
   * The lease of a primary with replicas is not held (lost, refused, or not granted yet): its
   * engine must not take writes, so it is stopped at once, outside the operation queue (an
   * operation in progress must not delay the fence), and reported stopped.
   */
  private async fenceForLease(reason: string): Promise<void> {
    if ((await this.engine.processId()) === undefined) return;
    this.logger.error({ reason }, 'stopping the engine: it may not take writes without its primary lease');
    await this.engine.stop();
    await this.heartbeat('SHUTDOWN', `The engine was stopped: ${reason}. It starts again once the control plane renews its lease.`);
  }

  /**
   * A source being replaced stops taking writes for good: it is held down as a stopped instance
   * (a host that restarts does not start it) until followSource makes it a replica.
   */
  private async fenceSource(log: Logger): Promise<{ position: number }> {
    const replication = this.replicationAdmin();
    log.info('fencing the source: its engine stops taking writes');
    await this.setDesired('stopped');
    const fenced = await replication.fence();
    log.info({ position: fenced.position }, 'source fenced');
    await this.heartbeat('SHUTDOWN');
    return fenced;
  }

  /** A replica re-pointed to a new source, or a former source rejoining as its replica. */
  private async followSource(grant: ReplicationGrantSpec, log: Logger): Promise<void> {
    const replication = this.replicationAdmin();
    log.info({ source: `${grant.address}:${grant.port}` }, 'following a new source');
    await this.options.allowReplicationSource?.({ address: grant.address, port: grant.port });
    await replication.follow(grant);
    // a replica needs no lease: the keeper learns it now, before a check could take the fenced
    // former source's lease state for its replica's
    await this.lease?.renewNow();
    await this.setDesired('running');
    await this.heartbeat('HEALTHY');
  }

  /**
   * Runs an administrative operation on the prepared engine, one at a time with the other
   * operations; answers `{}` when the work answers nothing.
   */
  private running<T>(work: () => Promise<T>): Promise<T extends void ? Record<string, never> : T> {
    return this.exclusive(async () => {
      this.requirePrepared();
      const result = await work().catch((err: unknown) => {
        // what the engine itself refused (a statement, a lost connection) is the engine's error, not Coffer's fault
        throw isCofferError(err) ? err : new CofferError('EngineError', faultMessage(err), { cause: err });
      });
      return (result ?? {}) as T extends void ? Record<string, never> : T;
    });
  }

  private unsupported(what: string): CofferError {
    return new CofferError('OperationNotSupported', `Operation not supported for datastore ${this.options.engine.manager}: ${what}.`);
  }

  /** Databases, users and root live in the running engine: a stopped one is started first, by its owner. */
  private requireStarted(): void {
    if (this.desired === 'stopped') {
      throw new CofferError('UnprocessableEntity', `The database of instance ${this.instanceId} is stopped: start it first.`);
    }
  }

  private databases(): DatabaseAdmin {
    if (this.engine.databases === undefined) throw this.unsupported('databases');
    this.requireStarted();
    return this.engine.databases;
  }

  private users(): UserAdmin {
    if (this.engine.users === undefined) throw this.unsupported('users');
    this.requireStarted();
    return this.engine.users;
  }

  private userAccess(): NonNullable<UserAdmin['access']> {
    const access = this.engine.users?.access;
    if (access === undefined) throw this.unsupported(this.engine.users === undefined ? 'users' : 'user access to databases');
    this.requireStarted();
    return access;
  }

  private configurationAdmin(): ConfigurationAdmin {
    if (this.engine.configuration === undefined) throw this.unsupported('configurationGroups');
    this.requireStarted();
    return this.engine.configuration;
  }

  private rootAdmin(): RootAdmin {
    if (this.engine.root === undefined) throw this.unsupported('root');
    this.requireStarted();
    return this.engine.root;
  }

  private async resize(memoryMb: number, log: Logger): Promise<Record<string, never>> {
    this.requirePrepared();
    log.info({ memoryMb }, 'resizing the engine for a new flavor');
    await this.heartbeat('RESTARTING');
    this.progress('restarting with the new memory', 20);
    await this.setDesired('running');
    await this.engine.resize(memoryMb);
    this.progress('ready', 100);
    await this.heartbeat('HEALTHY');
    return {};
  }

  /** records that the change carrying `generation` is applied; answers the generation applied now */
  private applied(generation: number | undefined): Promise<number> {
    return recordAppliedGeneration(this.options.instance.dir, generation);
  }

  private restoreChain(restore: NonNullable<PrepareInput['restore']>): RestoreLink[] {
    if (this.engine.backup === undefined) throw this.unsupported('restoring a backup');
    if (this.options.backups === undefined) throw backupsNotOnHost();
    return restoreChain(this.options.backups, restore, this.backupAbort.signal, (read, total) =>
      this.progress(`restoring: ${megabytes(read)} of ${megabytes(total)} read`, restorePercent(read, total)),
    );
  }

  private pointInTime(restore: NonNullable<PrepareInput['restore']>): PointInTimeSource {
    if (!engineRegistry[this.options.engine.manager].capabilities.pointInTimeRecovery) throw this.unsupported('point-in-time restores');
    if (this.options.backups === undefined || restore.pointInTime === undefined) throw backupsNotOnHost();
    return pointInTimeSource(this.options.backups, restore.projectId, restore.pointInTime, this.backupAbort.signal);
  }

  /**
   * A backup runs beside the other operations, not queued behind them: the engine keeps serving
   * and heartbeating while its tool runs (the API refuses restarts and resizes meanwhile, as the
   * instance shows BACKUP). One at a time; the outcome goes to the conductor, not to the caller.
   */
  private async startBackup(input: CreateBackupInput, log: Logger): Promise<void> {
    this.requirePrepared();
    const admin = this.engine.backup;
    if (admin === undefined) throw this.unsupported('backups');
    if (this.options.backups === undefined) throw backupsNotOnHost();
    if (this.backupRunning) {
      log.warn('a backup is already running; this one is refused');
      throw new CofferError('UnprocessableEntity', `Instance ${this.instanceId} is already taking a backup.`);
    }
    this.backupRunning = true;
    let archiveFacts: Record<string, string> = {};
    try {
      // before the engine's tool starts: the log the backup begins with must be shipped
      if (input.walArchive !== undefined && this.walShipper !== undefined) {
        const { container, prefix } = input.walArchive;
        await this.walShipper.setTarget({ projectId: input.projectId, container, prefix, wrappedKey: input.target.wrappedKey });
        archiveFacts = { 'wal-container': container, 'wal-prefix': prefix };
      }
    } catch (err) {
      this.backupRunning = false;
      throw err;
    }
    const job = runBackup({
      archiveFacts,
      admin,
      host: this.options.backups,
      input,
      instanceId: this.instanceId,
      dataBytes: await directoryUsage(this.options.instance.dir),
      conductor: this.conductor,
      progress: this.progress,
      signal: this.backupAbort.signal,
      log,
    });
    job.finally(() => (this.backupRunning = false)).catch(() => undefined);
  }

  /**
   * The engine's own check of all the data. Like a backup it runs beside the other operations,
   * not queued behind them: it reads for a long time, and the engine keeps heartbeating meanwhile.
   * Callers poll: the first call starts it, each call answers where it stands.
   */
  private checkData(log: Logger): DataCheckState {
    if (this.dataCheck === undefined) {
      this.requirePrepared();
      const admin = this.engine.backup;
      if (admin === undefined) throw this.unsupported('checking data');
      this.requireStarted();
      log.info('checking the data');
      const began = performance.now();
      const check: { state: DataCheckState } = { state: { state: 'running' } };
      admin.checkData(this.backupAbort.signal).then(
        (result) => {
          log.info({ checks: result.checks, checkMs: Math.round(performance.now() - began) }, 'data checked');
          check.state = { state: 'done', result };
        },
        (err: unknown) => {
          log.error({ err }, 'data check failed');
          check.state = { state: 'failed', message: faultMessage(err).split('\n', 1)[0] ?? 'The data check failed.' };
        },
      );
      this.dataCheck = check;
    }
    return this.dataCheck.state;
  }

  private requirePrepared(): void {
    if (!this.prepared) {
      throw new CofferError('UnprocessableEntity', `Instance ${this.instanceId} is not prepared yet.`);
    }
  }

  /**
   * A resized volume: the new size is recorded (with the host, so a restarted one keeps it) and
   * the volume measured against it at once, which lifts the read-only mode of a full one.
   */
  private async resizeVolume(sizeGb: number, log: Logger): Promise<{ usedBytes: number; totalBytes: number }> {
    this.requirePrepared();
    log.info({ sizeGb }, 'volume resized');
    this.volume.resize(sizeGb);
    await this.options.saveVolumeSize?.(sizeGb);
    // a running engine is told now; a stopped one when it runs again (its first healthy check)
    await this.check();
    return { usedBytes: await directoryUsage(this.options.instance.dir), totalBytes: this.volume.sizeBytes };
  }

  private async stopDb(log: Logger): Promise<Record<string, never>> {
    this.requirePrepared();
    log.info('stopping the engine');
    await this.setDesired('stopped');
    this.progress('stopping', 20);
    await this.engine.stop();
    this.progress('stopped', 100);
    await this.heartbeat('SHUTDOWN');
    return {};
  }

  private async startDb(log: Logger): Promise<Record<string, never>> {
    this.requirePrepared();
    log.info('starting the engine');
    await this.setDesired('running');
    this.progress('starting', 20);
    await this.engine.start();
    this.progress('ready', 100);
    await this.heartbeat('HEALTHY');
    return {};
  }

  private async restart(log: Logger): Promise<Record<string, never>> {
    this.requirePrepared();
    log.info('restarting the engine');
    await this.heartbeat('RESTARTING');
    await this.setDesired('running');
    this.progress('stopping', 10);
    await this.engine.stop();
    this.progress('starting', 50);
    await this.engine.start();
    this.progress('ready', 100);
    await this.heartbeat('HEALTHY');
    return {};
  }

  /** the agent stops (for a restart, an upgrade): the engine runs on */
  async close(): Promise<void> {
    return this.shutDown(true);
  }

  private async shutDown(restarting: boolean): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.leaveRound?.();
    if (restarting) await this.lease?.holdForRestart();
    await this.lease?.close();
    await this.walShipper?.stop();
    this.backupAbort.abort(new CofferError('EngineError', 'The guest stopped (its host is shutting down).'));
    await this.subscription?.close();
    await this.tail;
    // the engine runs on without it; an open connection would keep a stopping host's process alive
    this.engine.release();
  }

  async destroy(): Promise<void> {
    await this.shutDown(false);
    await this.lease?.destroy();
    await this.engine.stop();
  }
}

function roundAll(timings: object): Record<string, number> {
  return Object.fromEntries(Object.entries(timings).map(([key, value]) => [key, Math.round(Number(value))]));
}

/** Starts serving `guest.<instanceId>` and, for a prepared instance, supervising its engine. */
export async function startGuest(options: GuestOptions): Promise<Guest> {
  const guest = new GuestAgent(options);
  await guest.start();
  return guest;
}
