import type { EngineMetrics } from '../../../common/index.js';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { Client } from 'pg';
import { join, relative } from 'node:path';
import type { PrepareInput } from '../../../bus/index.js';
import { CofferError, validateConfigurationValues } from '../../../common/index.js';
import type { ConfigurationValues, Logger } from '../../../common/index.js';
import type { ProcessRunner } from '../../process-runner.js';
import type { AccessSpec } from '../../../bus/index.js';
import type {
  EngineBinary,
  EngineContext,
  EngineHealth,
  EngineLifecycle,
  LogControl,
  PointInTimeSource,
  PrepareProgress,
  PrepareTimings,
  RestoreLink,
  TlsMaterial,
} from '../engine.js';
import type { LifecycleModule } from '../engine-modules.js';
import {
  adminRole,
  checkPrepareNames,
  healthProbeOps,
  ensureDatabasesAndUsers,
  reloadConfiguration,
  rotateAdminPassword,
  withAdminClient,
  type AdminEndpoint,
  type AdminEndpointSource,
} from './admin.js';
import type { BaseBackupSource } from './backup.js';
import { missingBinaryReason } from './binaries.js';
import { changedSettings, effectivePostgresqlSettings, renderPgHba, renderPostgresqlConf, type ServerConfigInput } from './config.js';
import { replicaAccessOf, standbySourceOf, synchronousStandbysOf, type ReplicationHost } from './replication.js';
import type { ConfigurationHost } from './configuration.js';
import { postgresqlParameters } from './parameters.js';
import { fileExists, writeEngineFile } from '../engine-files.js';
import { currentEngineSpec, readEngineSpec, writeEngineSpec, type EngineSpec, type ReplicationSpec } from '../engine-spec-file.js';
import { checkTlsRequirement, installedTlsFiles, saveTlsRequired, writeTlsFiles, type TlsFiles } from '../tls-files.js';
import { SupervisedServer, type ServerControl } from '../supervised-server.js';
import { KeptProbe } from '../kept-probe.js';
import { IdleActivity } from './idle-activity.js';
import { ServerWatch } from '../process-watch.js';
import { postgresqlMetrics } from './metrics.js';
import { killDataDirProcesses, runningPostmaster, stopPostmaster, waitUntilReady } from './postmaster.js';
import { fetchRecoveryFiles, planRecovery, removeRecoveryFiles, type RecoveryTarget } from './point-in-time.js';
import { checkRestoreChain, clearSourceState, extractBaseBackup, resetAdminOffline, resetRestoredRoles } from './restore.js';
import type { WalArchiveHost } from './wal-archive.js';
import { forgetInitdbStatistics, initdbArguments, syncDirectory, takeWarmCluster } from './warm-cluster.js';

// The lifecycle module of PostgreSQL (databases, users, root, configuration groups and backups
// are the modules beside it, engine.ts assembles them). PostgreSQL as a supervised local process:
// initdb (or a cluster the host initialised ahead of time, see warm-cluster.ts, or a base backup
// restored, see restore.ts), a postgresql.conf rendered from the instance's spec (flavor,
// access, configuration group: engine-spec-file.ts), the postmaster
// started directly (pg_ctl costs ~0.1 s per start and stop) and stopped with SIGINT. The
// instance directory belongs to the host; the engine's OS user owns only the data directory
// (which also holds the socket) and the files handed to it. The host (root, when the engines
// run as another user) thus never writes through a path the engine's user could have turned
// into a symlink, as it could anywhere inside a directory that user owns.

export const standardPort = 5432;

/**
 * A new postmaster's checkpointer reckons its first sleep while recovery still runs, when
 * archive_timeout does not count, and so sleeps a whole checkpoint_timeout (5 minutes): what is
 * written meanwhile reaches the archive only then, not within the archive_timeout the recovery
 * point promises. A reload (SIGHUP, what pg_ctl reload sends) once the server is ready wakes it
 * to reckon again, archive_timeout included; the configuration it reads is the one just started.
 */
function wakeCheckpointer(pid: number): void {
  try {
    process.kill(pid, 'SIGHUP');
  } catch {
    // gone already: the supervisor sees it exit
  }
}

const initdbTimeoutMs = 120_000;
const startTimeoutMs = 120_000;
const stopTimeoutMs = 30_000;
const probeTimeoutMs = 3_000;

interface Layout {
  dataDir: string;
  /** passed as `-c config_file`: outside the data directory, where only the host writes */
  configFile: string;
  /** the configuration the postmaster last started with: what a start that fails falls back to */
  startedConfigFile: string;
  hbaFile: string;
  logFile: string;
  socketDir: string;
  pwfile: string;
  adminSecret: string;
  initialised: string;
  /** where basic_archive puts finished WAL files for the guest to ship: the engine's, in the host's directory */
  walSpool: string;
  /** a replica's password for its primary (libpq's passfile), read by the engine's user alone */
  replicationPassfile: string;
}

function layout(dir: string): Layout {
  const dataDir = join(dir, 'data');
  return {
    dataDir,
    configFile: join(dir, 'postgresql.conf'),
    // the host's, like the instance directory: the engine never reads it
    startedConfigFile: join(dir, 'postgresql.conf.started'),
    hbaFile: join(dir, 'pg_hba.conf'),
    logFile: join(dir, 'postgresql.log'),
    // the engine creates its socket, so it lives in the one directory the engine owns
    socketDir: dataDir,
    pwfile: join(dir, '.initdb-pwfile'),
    // read by the guest only: owned by the host's user, not the engine's
    adminSecret: join(dir, `${adminRole}.password`),
    initialised: join(dir, '.initdb.done'),
    walSpool: join(dir, 'wal-spool'),
    replicationPassfile: join(dir, 'replication.pgpass'),
  };
}

/** The longest socket path an instance in `dir` may have: its name carries the port, which on a host's address is not always the standard one. */
export function socketPath(dir: string): string {
  return join(layout(dir).socketDir, '.s.PGSQL.65535');
}

interface Initialised {
  /** settles once the new cluster is durable on disk */
  sync: Promise<unknown>;
  /** set when the cluster came from the host's pool: its superuser still has the pool's password */
  poolPassword?: string;
}

export class PostgresqlLifecycle implements EngineLifecycle, AdminEndpointSource {
  private readonly paths: Layout;
  private readonly runner: ProcessRunner;
  private readonly logger: Logger;
  private adminPassword: string | undefined;
  private readonly server: SupervisedServer;
  /** what the postmaster being spawned reads: saved as the last good configuration once it is ready */
  private spawnedWith: string | undefined;
  private readonly probe: KeptProbe<Client>;
  /** whether others used the server between the last two health checks */
  private readonly activity = new IdleActivity();
  private readonly postmaster: ServerWatch;

  constructor(private readonly context: EngineContext) {
    this.paths = layout(context.placement.dir);
    this.runner = context.runner;
    this.logger = context.logger;
    this.server = new SupervisedServer(this.serverControl(), this.logger);
    this.probe = new KeptProbe(healthProbeOps(() => this.endpoint(), (activity) => this.activity.observe(activity)), probeTimeoutMs);
    this.postmaster = new ServerWatch(() => runningPostmaster(this.paths.dataDir));
  }

  /** What the configuration module needs: the spec, the configuration file and the running server. */
  configurationHost(): ConfigurationHost {
    return {
      datastore: this.datastore(),
      logger: this.logger,
      readSpec: () => this.readSpec(),
      saveSpec: (spec) => writeEngineSpec(this.context.placement.dir, spec),
      renderConf: (spec) => this.renderConf(spec),
      effective: async (spec) => effectivePostgresqlSettings(await this.confInput(spec)),
      readConf: () => readFile(this.paths.configFile, 'utf8'),
      writeConf: (text) => writeEngineFile(this.runner, this.paths.configFile, text),
      runningEndpoint: async () => ((await this.processId()) === undefined ? undefined : this.endpoint()),
    };
  }

  private binary(): EngineBinary {
    if (this.context.binary === undefined) {
      throw new CofferError(
        'DatastoreVersionInactive',
        `This host has no PostgreSQL binaries for the instance's version. ${missingBinaryReason}`,
      );
    }
    return this.context.binary;
  }

  private bin(name: string): string {
    return join(this.binary().binDir, name);
  }

  async endpoint(): Promise<AdminEndpoint> {
    this.adminPassword ??= (await readFile(this.paths.adminSecret, 'utf8')).trim();
    return { socketDir: this.paths.socketDir, port: this.context.placement.port, password: this.adminPassword };
  }

  async prepare(
    input: PrepareInput,
    progress: PrepareProgress = () => undefined,
    restore?: readonly RestoreLink[],
    pointInTime?: PointInTimeSource,
  ): Promise<PrepareTimings> {
    const began = performance.now();
    checkPrepareNames(input);
    // a redelivered prepare keeps what replication set up since
    const replication = (await readEngineSpec(this.context.placement.dir))?.replication;
    const spec: EngineSpec = {
      memoryMb: input.memoryMb,
      access: input.access,
      overrides: this.checkOverrides(input.overrides),
      ...(replication === undefined ? {} : { replication }),
    };
    const tls = await installedTlsFiles(this.context.placement.dir);
    const hba = this.renderHba(input.access, tls, replication);
    const conf = await this.renderConf(spec);

    let sync: Promise<unknown> = Promise.resolve();
    let poolPassword: string | undefined;
    // a restore already finished (a redelivered prepare) is an instance like any other
    const restoring = restore !== undefined && !(await fileExists(this.paths.initialised));
    if (restoring) {
      ({ sync } = await this.restore(restore, input.adminPassword, conf, progress, pointInTime));
    } else if (!(await fileExists(this.paths.initialised))) {
      ({ sync, poolPassword } = await this.initialise(input.adminPassword, progress));
    } else {
      const stored = (await this.endpoint()).password;
      if (stored !== input.adminPassword) this.logger.warn('prepare redelivered with another admin password: keeping the first');
    }
    const initialised = performance.now();
    try {
      await writeEngineFile(this.runner, this.paths.configFile, conf);
      // a restored cluster holds its source's roles: no client but the guest until they are reset
      await writeEngineFile(this.runner, this.paths.hbaFile, restoring ? renderPgHba(adminRole, []) : hba);
      await saveTlsRequired(this.context.placement.dir, input.access?.requireTls === true);
      await writeEngineSpec(this.context.placement.dir, spec);
      progress('starting');
      await this.start();
      const started = performance.now();
      progress('creating databases and users');
      const endpoint = await this.endpoint();
      // before anything else: from here on only the instance's own password opens it. Until then
      // `.initdb.done` is missing, so an interrupted prepare starts over with another cluster.
      if (poolPassword !== undefined) await rotateAdminPassword({ ...endpoint, password: poolPassword }, endpoint.password);
      if (restoring) {
        await resetRestoredRoles(endpoint);
        await writeEngineFile(this.runner, this.paths.hbaFile, hba);
        await reloadConfiguration(endpoint);
      }
      await Promise.all([
        sync.then(() => writeFile(this.paths.initialised, new Date().toISOString())),
        ensureDatabasesAndUsers(endpoint, input),
      ]);
      const done = performance.now();
      return { initMs: initialised - began, startMs: started - initialised, setupMs: done - started };
    } catch (err) {
      if (restoring) await this.discardRestore(sync);
      throw err;
    } finally {
      // a failed prepare leaves no unsupervised sync behind either
      await sync.catch(() => undefined);
    }
  }

  /**
   * Fills the data directory from a base backup instead of initdb (restore.ts), up to a cluster
   * whose guest role has `adminPassword`, durable on disk and stopped. A failure leaves no data
   * directory.
   */
  private async restore(
    links: readonly RestoreLink[],
    adminPassword: string,
    conf: string,
    progress: PrepareProgress,
    pointInTime: PointInTimeSource | undefined,
  ): Promise<Initialised> {
    const { full: link, last } = checkRestoreChain(links, this.binary().versionName);
    if (last !== undefined && pointInTime === undefined) {
      throw new CofferError('BadRequest', "An incremental PostgreSQL backup is replayed from its instance's archived WAL, which this restore was not given.");
    }
    progress('restoring');
    await this.discardRestore();
    await writeFile(this.paths.adminSecret, adminPassword, { mode: 0o600 });
    this.adminPassword = adminPassword;
    // as for initdb: the host makes the directory and hands it over before the engine's user fills it
    await mkdir(this.paths.dataDir, { mode: 0o700 });
    await this.runner.handOver(this.paths.dataDir);
    try {
      await extractBaseBackup(this.runner, this.paths.dataDir, link, this.bin('pg_verifybackup'));
      await clearSourceState(this.paths.dataDir);
      const { dataDir, configFile } = this.paths;
      const recovery =
        pointInTime === undefined
          ? []
          : await fetchRecoveryFiles(this.runner, dataDir, pointInTime, planRecovery(await pointInTime.list(), link.facts, recoveryTarget(pointInTime, last)));
      // single-user mode reads the new instance's configuration, not the backup's
      await writeEngineFile(this.runner, this.paths.configFile, conf);
      await this.ensureWalSpool();
      await resetAdminOffline({ runner: this.runner, postgres: this.bin('postgres'), dataDir, configFile }, adminPassword, recovery);
      await removeRecoveryFiles(dataDir);
    } catch (err) {
      await this.discardRestore();
      throw err;
    }
    // durable already: the single-user run's recovery began by fsyncing the whole data directory
    return { sync: Promise.resolve() };
  }

  /** Stops whatever runs in the data directory and removes it: what a restore leaves when it fails. */
  private async discardRestore(sync: Promise<unknown> = Promise.resolve()): Promise<void> {
    await this.server.stop().catch((err: unknown) => this.logger.warn({ err }, 'could not stop PostgreSQL after a failed restore'));
    await killDataDirProcesses(this.paths.dataDir);
    await sync.catch(() => undefined);
    await rm(this.paths.dataDir, { recursive: true, force: true });
  }

  /** basic_archive (archive_library) came with PostgreSQL 15 */
  private archivesWal(): boolean {
    return this.context.archiveLog === true && Number(this.context.binary?.versionName) >= 15;
  }

  /** The spool basic_archive copies into: made by the host in its directory, then handed to the engine's user. */
  private async ensureWalSpool(): Promise<void> {
    if (!this.archivesWal()) return;
    await mkdir(this.paths.walSpool, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    await this.runner.handOver(this.paths.walSpool);
  }

  /** What continuous archiving needs; undefined when this host ships no WAL. */
  walArchiveHost(): WalArchiveHost | undefined {
    if (!this.archivesWal()) return undefined;
    return {
      spoolDir: this.paths.walSpool,
      dataDir: this.paths.dataDir,
      runner: this.runner,
      program: (name) => this.bin(name),
      runningEndpoint: async () => ((await this.processId()) === undefined ? undefined : this.endpoint()),
      keptQuery: (work) => this.probe.query(work),
    };
  }

  /** What the backup module needs: the programs, the admin endpoint, whether the server runs, and replication access. */
  baseBackupSource(): BaseBackupSource {
    return {
      program: (name) => this.bin(name),
      runner: this.runner,
      endpoint: () => this.endpoint(),
      running: () => this.processId(),
      allowReplication: () => this.refreshHba(),
    };
  }

  /** What the replication module needs: the instance's files, its spec and its server. */
  replicationHost(): ReplicationHost {
    return {
      placement: this.context.placement,
      runner: this.runner,
      logger: this.logger,
      dataDir: this.paths.dataDir,
      logFile: this.paths.logFile,
      passfile: this.paths.replicationPassfile,
      initialisedMarker: this.paths.initialised,
      program: (name) => this.bin(name),
      versionName: () => this.binary().versionName,
      endpoint: () => this.endpoint(),
      readSpec: () => this.readSpec(),
      applySpec: (spec) => this.applySpec(spec),
      setAdminPassword: async (password) => {
        await writeFile(this.paths.adminSecret, password, { mode: 0o600 });
        this.adminPassword = password;
        this.probe.close();
      },
      start: () => this.start(),
      stop: () => this.stop(),
      running: () => this.processId(),
      discardDataDir: () => this.discardRestore(),
    };
  }

  /** Renders both files from `spec` and saves it; a running server reloads them. */
  private async applySpec(spec: EngineSpec): Promise<void> {
    const tls = await installedTlsFiles(this.context.placement.dir);
    const conf = await this.renderConf(spec);
    await writeEngineFile(this.runner, this.paths.configFile, conf);
    await writeEngineFile(this.runner, this.paths.hbaFile, this.renderHba(spec.access, tls, spec.replication));
    await writeEngineSpec(this.context.placement.dir, spec);
    await this.reloadIfRunning();
  }

  /**
   * A replica's data directory holds standby.signal for as long as it is one (promotion removes
   * it): made anew before every start, so that a replica never starts as a primary. Readable by
   * the engine's user: PostgreSQL only looks for it, but a base backup of the standby reads every
   * file of the data directory (one made 0600 by an earlier version failed it). Replaced, never
   * opened: what the engine's user may have left under its name (a link, a hard link to a file it
   * must not read, a FIFO) is unlinked, not followed or changed.
   */
  private async ensureStandbySignal(): Promise<void> {
    const spec = await readEngineSpec(this.context.placement.dir);
    if (spec?.replication?.role !== 'replica') return;
    const file = join(this.paths.dataDir, 'standby.signal');
    await rm(file, { recursive: true, force: true });
    await writeFile(file, '', { flag: 'wx', mode: 0o644 });
  }

  /**
   * Renders pg_hba.conf again from the saved access rules and reloads it when it changed: an
   * instance prepared before its rules let the guest's role replicate gets the line a backup needs.
   */
  private async refreshHba(): Promise<void> {
    const dir = this.context.placement.dir;
    const spec = await currentEngineSpec(dir, this.context.memoryMb);
    if (spec === undefined) return;
    const hba = this.renderHba(spec.access, await installedTlsFiles(dir), spec.replication);
    if ((await readFile(this.paths.hbaFile, 'utf8').catch(() => undefined)) === hba) return;
    await writeEngineFile(this.runner, this.paths.hbaFile, hba);
    await this.reloadIfRunning();
  }

  /**
   * A cluster from the host's pool when it has one ready, made by initdb otherwise. initdb runs
   * without its final fsync pass, which instead runs (`initdb --sync-only`) while the server
   * starts and the databases are created: the data is on disk before prepare reports HEALTHY,
   * and the ~60 ms of fsync overlap work that was waiting anyway.
   */
  private async initialise(adminPassword: string, progress: PrepareProgress): Promise<Initialised> {
    // a data directory without the marker is what an interrupted earlier attempt left
    const leftover = await runningPostmaster(this.paths.dataDir);
    if (leftover !== undefined) await stopPostmaster(leftover, this.paths.dataDir, stopTimeoutMs);
    await rm(this.paths.dataDir, { recursive: true, force: true });
    await writeFile(this.paths.adminSecret, adminPassword, { mode: 0o600 });
    this.adminPassword = adminPassword;
    const dir = this.context.placement.dir;
    if (this.context.warm !== undefined) progress('taking a prepared cluster');
    const poolPassword =
      this.context.warm === undefined ? undefined : await takeWarmCluster(this.context.warm, dir, this.paths.dataDir, this.logger);
    if (poolPassword !== undefined) {
      this.logger.debug('took a cluster from the warm pool');
      await forgetInitdbStatistics(this.runner, this.paths.dataDir);
      // the pool made its cluster durable; what remains is the rename that brought it here
      const sync = syncDirectory(dir);
      sync.catch(() => undefined);
      return { sync, poolPassword };
    }
    progress('initialising');
    // initdb fills an empty directory; the engine's user could not create one in the host's
    await mkdir(this.paths.dataDir, { mode: 0o700 });
    await this.runner.handOver(this.paths.dataDir);
    await writeEngineFile(this.runner, this.paths.pwfile, adminPassword);
    try {
      await this.runner.run(this.bin('initdb'), [...initdbArguments(this.paths.dataDir, this.paths.pwfile), '--no-sync'], {
        timeoutMs: initdbTimeoutMs,
      });
    } finally {
      await rm(this.paths.pwfile, { force: true });
    }
    await forgetInitdbStatistics(this.runner, this.paths.dataDir);
    const sync = this.runner.run(this.bin('initdb'), ['--sync-only', `--pgdata=${this.paths.dataDir}`], {
      timeoutMs: initdbTimeoutMs,
    });
    sync.catch(() => undefined);
    // wrapped: an async function returning a bare promise would wait for it
    return { sync };
  }

  private renderHba(access: AccessSpec, tls: TlsFiles | undefined, replication: ReplicationSpec | undefined): string {
    const cidrs = access?.allowedCidrs?.length ? access.allowedCidrs : this.context.defaultClientCidrs;
    return renderPgHba(adminRole, cidrs, checkTlsRequirement(access, tls), replicaAccessOf(replication));
  }

  /** e.g. `postgresql 15`, as configuration errors name the datastore */
  private datastore(): string {
    return `postgresql ${this.context.binary?.versionName ?? ''}`.trim();
  }

  private checkOverrides(overrides: ConfigurationValues): ConfigurationValues {
    return validateConfigurationValues(overrides, postgresqlParameters, this.datastore());
  }

  /** the saved spec, or for an instance from before specs were saved one from the host's record of the flavor */
  private async readSpec(): Promise<EngineSpec> {
    const spec = await currentEngineSpec(this.context.placement.dir, this.context.memoryMb);
    if (spec === undefined) {
      throw new CofferError('EngineError', 'This instance has no saved engine configuration and its host no record of its memory: resize it first.');
    }
    return spec;
  }

  private async confInput(spec: EngineSpec): Promise<ServerConfigInput> {
    return {
      memoryMb: spec.memoryMb,
      address: this.context.placement.address,
      port: this.context.placement.port,
      socketDir: this.paths.socketDir,
      hbaFile: this.paths.hbaFile,
      tls: await installedTlsFiles(this.context.placement.dir),
      overrides: spec.overrides,
      ...(this.archivesWal() ? { walSpoolDir: this.paths.walSpool } : {}),
      ...standbySourceOf(spec.replication, this.paths.replicationPassfile),
      ...synchronousStandbysOf(spec.replication),
      logStatements: spec.logs?.general === true,
    };
  }

  private async renderConf(spec: EngineSpec): Promise<string> {
    return renderPostgresqlConf(await this.confInput(spec));
  }

  async resize(memoryMb: number): Promise<void> {
    const saved = await currentEngineSpec(this.context.placement.dir, this.context.memoryMb);
    const spec: EngineSpec = { access: null, overrides: {}, ...saved, memoryMb };
    // rendered before the stop: a bad value leaves the running engine alone
    const conf = await this.renderConf(spec);
    const previous = await readFile(this.paths.configFile, 'utf8');
    await this.stop();
    await writeEngineFile(this.runner, this.paths.configFile, conf);
    // e.g. more shared memory than the host grants: the instance keeps running on its old size
    await this.startOrFallBack(`settings for ${memoryMb} MB of RAM`, previous);
    await writeEngineSpec(this.context.placement.dir, spec);
  }

  async updateAccess(access: AccessSpec): Promise<void> {
    const dir = this.context.placement.dir;
    const saved = await currentEngineSpec(dir, this.context.memoryMb);
    await writeEngineFile(this.runner, this.paths.hbaFile, this.renderHba(access, await installedTlsFiles(dir), saved?.replication));
    await saveTlsRequired(dir, access?.requireTls === true);
    // without a spec and a memory size there is nothing whole to save; the next resize saves one
    if (saved !== undefined) await writeEngineSpec(dir, { ...saved, access });
    await this.reloadIfRunning();
  }

  async installTls(material: TlsMaterial): Promise<void> {
    await writeTlsFiles(this.runner, this.context.placement.dir, material);
    // new connections get the new certificate; open sessions keep theirs
    await this.reloadIfRunning();
  }

  /** a stopped engine reads its files when it starts */
  private async reloadIfRunning(): Promise<void> {
    if ((await runningPostmaster(this.paths.dataDir)) !== undefined) await reloadConfiguration(await this.endpoint());
  }

  logFiles(): Record<string, string> {
    return { general: this.paths.logFile };
  }

  /** the general log is the server's own, with every statement in it while it is on (log_statement, reloaded) */
  readonly logs: LogControl = {
    userLogs: ['general'],
    enabled: async () => new Set((await this.readSpec()).logs?.general === true ? ['general'] : []),
    setEnabled: async (name, on) => {
      if (name !== 'general') throw new CofferError('BadRequest', `PostgreSQL has no log ${name} to turn on or off.`);
      const spec = await this.readSpec();
      await this.applySpec({ ...spec, logs: { ...spec.logs, general: on } });
    },
  };

  /**
   * default_transaction_read_only through ALTER SYSTEM (postgresql.auto.conf, which the rendered
   * postgresql.conf never touches and a restore drops), reloaded: every session's next
   * transaction is read-only. PostgreSQL has no stronger switch that keeps reads: a tenant can
   * still `SET default_transaction_read_only = off` in its own session (docs/trove-api.md says so).
   */
  async refuseWrites(refused: boolean): Promise<void> {
    const endpoint = await this.endpoint();
    const changed = await withAdminClient(endpoint, 'postgres', async (client) => {
      const current = await client.query<{ value: string }>("SELECT reset_val AS value FROM pg_settings WHERE name = 'default_transaction_read_only'");
      if ((current.rows[0]?.value === 'on') === refused) return false;
      await client.query(refused ? 'ALTER SYSTEM SET default_transaction_read_only = on' : 'ALTER SYSTEM RESET default_transaction_read_only');
      return true;
    });
    if (changed) await reloadConfiguration(endpoint);
  }

  start(): Promise<void> {
    return this.startOrFallBack('its new configuration');
  }

  /**
   * Starts the server; one that fails to start with its configuration (a restart-only value the
   * host cannot grant, such as more shared memory than it has) is started with the configuration
   * it last started with, or `previous` for an instance that has none recorded, so the instance
   * keeps serving, and the failure is an EngineError naming what changed.
   */
  private async startOrFallBack(what: string, previous?: string): Promise<void> {
    try {
      await this.server.start();
      return;
    } catch (err) {
      const fallback = (await readFile(this.paths.startedConfigFile, 'utf8').catch(() => undefined)) ?? previous;
      const current = await readFile(this.paths.configFile, 'utf8').catch(() => undefined);
      if (fallback === undefined || current === undefined || fallback === current) throw err;
      this.logger.warn({ err }, `PostgreSQL did not start with ${what}: back to the configuration it last started with`);
      await writeEngineFile(this.runner, this.paths.configFile, fallback);
      await this.server.start();
      const changed = changedSettings(fallback, current);
      const which = changed.length === 0 ? '' : ` (${changed.join(', ')})`;
      const cause = err instanceof CofferError ? ` ${err.message}` : '';
      const message = `PostgreSQL did not start with ${what}${which}; it runs with its previous settings.${cause}`;
      throw new CofferError('EngineError', message, { cause: err });
    }
  }

  private serverControl(): ServerControl {
    const { dataDir, logFile } = this.paths;
    return {
      title: 'PostgreSQL',
      stopSignal: 'SIGINT',
      stopTimeoutMs,
      running: () => runningPostmaster(dataDir),
      beforeSpawn: async () => {
        await killDataDirProcesses(dataDir);
        await this.ensureWalSpool();
        await this.removeStaleLocks();
        await this.ensureStandbySignal();
        this.spawnedWith = await readFile(this.paths.configFile, 'utf8').catch(() => undefined);
      },
      // relative to its working directory: the postmaster's command line is anyone's to read in
      // ps, and the instance directory's path would give the instance id away
      spawn: () =>
        this.runner.spawnDetached(this.bin('postgres'), ['-D', '.', '-c', `config_file=${relative(dataDir, this.paths.configFile)}`], {
          logFile,
          cwd: dataDir,
        }),
      waitReady: async (pid, exited) => {
        await waitUntilReady({ dataDir, pid, exited, logFile, timeoutMs: startTimeoutMs });
        if (exited !== undefined && this.archivesWal()) wakeCheckpointer(pid);
        // only a postmaster spawned here (`exited` known) read the file this host just wrote
        if (exited !== undefined && this.spawnedWith !== undefined) {
          // a server that runs is not failed for want of this record: a later fallback has one start less to go back to
          await writeFile(this.paths.startedConfigFile, this.spawnedWith, { mode: 0o600 }).catch((err: unknown) =>
            this.logger.warn({ err }, 'could not record the configuration PostgreSQL started with'),
          );
        }
      },
      stopPid: (pid) => stopPostmaster(pid, dataDir, stopTimeoutMs),
      afterStop: () => killDataDirProcesses(dataDir),
    };
  }

  /**
   * No postmaster serves the data directory, so its lock files are stale. PostgreSQL would
   * refuse to start if their pid now belongs to another process, as it may after a reboot.
   */
  private async removeStaleLocks(): Promise<void> {
    await rm(join(this.paths.dataDir, 'postmaster.pid'), { force: true });
    await rm(join(this.paths.socketDir, `.s.PGSQL.${this.context.placement.port}.lock`), { force: true });
  }

  stop(): Promise<void> {
    // a fast shutdown would end it anyway; closed first, it ends without an error in the log
    this.probe.close();
    return this.server.stop();
  }

  async health(): Promise<EngineHealth> {
    if ((await this.postmaster.pid()) === undefined) {
      this.probe.close();
      return 'stopped';
    }
    return (await this.probe.answers()) ? 'healthy' : 'running';
  }

  /** nobody but the guest used the server between the last two health checks (idle-activity.ts) */
  idle(): boolean {
    return this.activity.idle === true;
  }

  metrics(): Promise<EngineMetrics | undefined> {
    return this.probe.query(postgresqlMetrics);
  }

  release(): void {
    this.probe.close();
  }

  processId(): Promise<number | undefined> {
    return this.postmaster.pid();
  }
}

/** A moment asked for, else the mark the chain's last incremental left in the log. */
function recoveryTarget(pointInTime: PointInTimeSource, last: RestoreLink | undefined): RecoveryTarget {
  if (pointInTime.target !== undefined) return { time: pointInTime.target };
  if (last === undefined) throw new CofferError('BadRequest', 'A point-in-time restore needs a moment to restore to.');
  return { restorePoint: last.facts['restore-point']!, lastSegment: last.facts['wal-end']! };
}

export const postgresqlLifecycle: LifecycleModule<PostgresqlLifecycle> = {
  // pg_hba.conf limits client addresses
  accessRules: true,
  create: (context) => new PostgresqlLifecycle(context),
};
