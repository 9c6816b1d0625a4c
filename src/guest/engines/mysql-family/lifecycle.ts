import type { EngineMetrics } from '../../../common/index.js';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { AccessSpec, PrepareInput } from '../../../bus/index.js';
import { CofferError } from '../../../common/index.js';
import type { Logger } from '../../../common/index.js';
import type { ProcessRunner } from '../../process-runner.js';
import type {
  BackupFacts,
  LogControl,
  EngineContext,
  EngineHealth,
  EngineLifecycle,
  PointInTimeSource,
  PrepareProgress,
  PrepareTimings,
  RestoreLink,
  TlsMaterial,
  WarmSource,
} from '../engine.js';
import type { LifecycleModule } from '../engine-modules.js';
import { fileExists, writeEngineFile } from '../engine-files.js';
import { currentEngineSpec, writeEngineSpec, type EngineSpec } from '../engine-spec-file.js';
import { checkTlsRequirement, installedTlsFiles, readTlsRequired, saveTlsRequired, writeTlsFiles } from '../tls-files.js';
import { SupervisedServer, type ServerControl } from '../supervised-server.js';
import { tenantUsers } from './account-registry.js';
import { MysqlFamilyAdmin } from './admin.js';
import type { BackupHost } from './backup.js';
import { checkRestoreChain, findBackupTools, type BackupTools } from './backup-tools.js';
import { findTools, findUpgradeTool } from './binaries.js';
import type { BinlogArchiveHost } from './binlog-archive.js';
import { binlogBasename } from './binlog-files.js';
import { planReplay, replayBinlog, type ReplayHost, type ReplayPlan } from './binlog-replay.js';
import { binaryLogLines, cofferSettings, serverIdOf, optionValue, renderMyCnf, withOverrides, type Settings } from './config.js';
import { checkOverrides, type ConfigurationHost } from './configuration.js';
import { healthProbeOps, type AdminEndpoint } from './connection.js';
import { KeptProbe } from '../kept-probe.js';
import { ServerWatch } from '../process-watch.js';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import type { MysqlFamilyFlavor, ServerTools } from './flavor.js';
import { installSql, takeWarmDataDir } from './install.js';
import type { MysqlReplicationHost } from './replication.js';
import { restoreChain, restoredAccountsSql } from './restore-chain.js';
import { runningServer, serversIn, stopServer, waitUntilReady } from './server.js';
import { adminUser, alterUserPasswordStatement, checkDatabaseName, guestDatabase, rootUser } from './sql.js';
import { mysqlFamilyMetrics } from './metrics.js';
import { mysqlTlsOptions, reloadTls, setRequireSecureTransport } from './tls.js';
import { recordUpgradedVersion, upgradeIfNeeded } from './upgrade.js';

// The lifecycle module of the MySQL family (databases, users, root, configuration groups and
// backups are the modules beside it, engine.ts assembles them). A MySQL-family server (MariaDB,
// MySQL) as a supervised local process: the data directory initialised once with an init file
// that leaves only the guest's own account (no anonymous users, no root), or taken so made from
// the host's warm pool (install.ts), or filled once from a backup chain (see `restore`), a
// my.cnf rendered whole from the instance's spec (engine-spec-file.ts: the
// flavor's memory and the configuration group) on every change, the server started directly (no
// mysqld_safe) and stopped with SIGTERM. As for PostgreSQL, the instance directory belongs to
// the host; the engine's OS user owns only its data, temporary and file directories and the
// files handed to it.

export const standardPort = 3306;

/** the logs a tenant turns on through the log API, and the server variable that does it */
const mysqlLogVariables: Readonly<Record<string, string>> = { general: 'general_log', slow_query: 'slow_query_log' };

const initTimeoutMs = 180_000;
const startTimeoutMs = 180_000;
const stopTimeoutMs = 60_000;
const probeTimeoutMs = 3_000;

interface Layout {
  dataDir: string;
  tmpDir: string;
  filesDir: string;
  configFile: string;
  socket: string;
  pidFile: string;
  errorLog: string;
  slowLog: string;
  generalLog: string;
  initFile: string;
  adminSecret: string;
  initialised: string;
  /** written at initialisation where the binary log is on from the first start: a replica can replay it all (replication.ts) */
  binlogFromStart: string;
  /** where a backup's tool writes its checkpoints and info (backup.ts) */
  backupScratch: string;
  /** where a restore unpacks and prepares its chain (restore-chain.ts) */
  restoreScratch: string;
}

export function layout(dir: string): Layout {
  const dataDir = join(dir, 'data');
  return {
    dataDir,
    tmpDir: join(dir, 'tmp'),
    filesDir: join(dir, 'files'),
    configFile: join(dir, 'my.cnf'),
    // the server creates these, so they live in the directory the engine owns
    socket: join(dataDir, 'mysqld.sock'),
    pidFile: join(dataDir, 'mysqld.pid'),
    errorLog: join(dir, 'error.log'),
    slowLog: join(dir, 'slow-query.log'),
    generalLog: join(dir, 'general.log'),
    initFile: join(dir, '.init.sql'),
    // read by the guest only: owned by the host's user, not the engine's
    adminSecret: join(dir, `${adminUser}.password`),
    initialised: join(dir, '.initialised'),
    binlogFromStart: join(dir, '.binlog-from-start'),
    backupScratch: join(dir, 'backup-scratch'),
    restoreScratch: join(dir, 'restore-scratch'),
  };
}

export class MysqlFamilyLifecycle implements EngineLifecycle {
  private readonly paths: Layout;
  private readonly runner: ProcessRunner;
  private readonly logger: Logger;
  /** the admin connection, shared with the databases, users and root modules */
  readonly admin: MysqlFamilyAdmin;
  private adminPassword: string | undefined;
  private tools: ServerTools | undefined;
  private backupToolsFound: BackupTools | undefined;
  private readonly server: SupervisedServer;
  private readonly probe: KeptProbe<Connection>;
  private readonly running: ServerWatch;

  constructor(
    private readonly flavor: MysqlFamilyFlavor,
    private readonly context: EngineContext,
  ) {
    this.paths = layout(context.placement.dir);
    this.runner = context.runner;
    this.logger = context.logger;
    this.admin = new MysqlFamilyAdmin(flavor, () => this.endpoint());
    this.server = new SupervisedServer(this.serverControl(), this.logger);
    this.probe = new KeptProbe(healthProbeOps(() => this.endpoint()), probeTimeoutMs);
    this.running = new ServerWatch(() => runningServer(this.paths.pidFile, this.paths.dataDir));
  }

  /** What the configuration module needs: the spec, my.cnf and the admin connection. */
  configurationHost(): ConfigurationHost {
    return {
      flavor: this.flavor,
      datastore: this.datastore(),
      logger: this.logger,
      spec: () => this.spec(),
      saveSpec: (spec) => writeEngineSpec(this.context.placement.dir, spec),
      settings: (spec) => this.settings(spec),
      render: (spec) => this.renderConf(spec),
      readConfigFile: () => readFile(this.paths.configFile, 'utf8'),
      writeConfigFile: (content) => this.writeEngineFile(this.paths.configFile, content),
      run: (work) => this.admin.run(work),
    };
  }

  /** as Trove's messages name it, e.g. `mariadb 10.11` */
  private datastore(): string {
    return `${this.flavor.manager} ${this.context.binary?.versionName ?? this.flavor.fallbackVersion}`;
  }

  /** The saved spec; for an instance from before specs were saved, one from the host's record of its flavor. */
  private async spec(): Promise<EngineSpec> {
    const spec = await currentEngineSpec(this.context.placement.dir, this.context.memoryMb);
    if (spec === undefined) {
      throw new CofferError(
        'EngineError',
        `The ${this.flavor.title} instance has no saved spec and its flavor's memory is unknown: resize it to render its configuration again.`,
      );
    }
    return spec;
  }

  private settings(spec: EngineSpec): Settings {
    const settings = withOverrides(
      cofferSettings(spec.memoryMb, (memory) => this.flavor.extraSettings(memory)),
      spec.overrides,
    );
    // a log the tenant turned on through the log API stays on whatever the group says
    const turnedOn = Object.entries(mysqlLogVariables).filter(([name]) => spec.logs?.[name] === true);
    return turnedOn.length === 0 ? settings : new Map([...settings, ...turnedOn.map(([, variable]) => [variable, true] as const)]);
  }

  readonly logs: LogControl = {
    userLogs: Object.keys(mysqlLogVariables),
    enabled: async () => {
      const spec = await this.spec();
      return new Set(Object.keys(mysqlLogVariables).filter((name) => spec.logs?.[name] === true));
    },
    setEnabled: async (name, on) => {
      const variable = mysqlLogVariables[name];
      if (variable === undefined) throw new CofferError('BadRequest', `${this.flavor.title} has no log ${name} to turn on or off.`);
      const spec = await this.spec();
      const next: EngineSpec = { ...spec, logs: { ...spec.logs, [name]: on } };
      await this.writeEngineFile(this.paths.configFile, await this.renderConf(next));
      // the file has it for the next start; a running server takes it at once (both are dynamic)
      if ((await this.processId()) !== undefined) {
        const value = this.settings(next).get(variable) === true ? 'ON' : 'OFF';
        await this.admin.run((connection) => connection.query(`SET GLOBAL ${variable} = ${value}`));
      }
      await writeEngineSpec(this.context.placement.dir, next);
    },
  };

  private async serverTools(): Promise<ServerTools> {
    if (this.tools !== undefined) return this.tools;
    const binDir = this.context.binary?.binDir;
    const tools = binDir === undefined ? undefined : await findTools(this.flavor, binDir);
    if (tools === undefined) {
      throw new CofferError(
        'DatastoreVersionInactive',
        `This host has no ${this.flavor.title} server for the instance's version. ${this.flavor.missingReason([])}`,
      );
    }
    this.tools = tools;
    return tools;
  }

  private async endpoint(): Promise<AdminEndpoint> {
    if (this.adminPassword === undefined) {
      const stored = await readFile(this.paths.adminSecret, 'utf8').catch((err: unknown) => {
        throw new CofferError('EngineError', `The ${this.flavor.title} instance was never prepared: ${this.paths.adminSecret} is missing.`, {
          cause: err,
        });
      });
      // written exactly as given: no trimming, a password may end in a space
      this.adminPassword = stored;
    }
    return { socketPath: this.paths.socket, password: this.adminPassword };
  }

  /** A file the engine reads or appends to: written by the host, then given to the engine's user. */
  private async writeEngineFile(path: string, content: string | undefined): Promise<void> {
    if (content === undefined) {
      if (await fileExists(path)) return;
      content = '';
    }
    await writeEngineFile(this.runner, path, content);
  }

  private async engineDir(path: string): Promise<void> {
    await mkdir(path, { mode: 0o700 });
    await this.runner.handOver(path);
  }

  private clientCidrs(access: AccessSpec): readonly string[] {
    return access?.allowedCidrs?.length ? access.allowedCidrs : this.context.defaultClientCidrs;
  }

  /**
   * my.cnf for `spec`, serving the installed certificate; `requireTls` defaults to the saved
   * choice; `extraOptions` are fixed lines for one start only
   */
  private async renderConf(spec: EngineSpec, requireTls?: boolean, extraOptions: readonly string[] = []): Promise<string> {
    const dir = this.context.placement.dir;
    const tls = await installedTlsFiles(dir);
    return renderMyCnf({
      tls: mysqlTlsOptions(tls, requireTls ?? (await readTlsRequired(dir))),
      memoryMb: spec.memoryMb,
      address: this.context.placement.address,
      port: this.context.placement.port,
      dataDir: this.paths.dataDir,
      tmpDir: this.paths.tmpDir,
      filesDir: this.paths.filesDir,
      socket: this.paths.socket,
      pidFile: this.paths.pidFile,
      slowLog: this.paths.slowLog,
      generalLog: this.paths.generalLog,
      extraOptions: [
        ...this.flavor.extraOptions,
        ...binaryLogLines(this.flavor, {
          basename: binlogBasename,
          archived: this.archivesBinlog(),
          serverId: serverIdOf(this.context.placement.instanceId),
          replication: spec.replication,
        }),
        ...extraOptions,
      ],
      settings: this.settings(spec),
      parameters: this.flavor.parameters,
    });
  }

  /** What the replication module needs of the lifecycle. */
  replicationHost(): MysqlReplicationHost {
    return {
      placement: this.context.placement,
      logger: this.logger,
      admin: this.admin,
      binlogFromStart: this.paths.binlogFromStart,
      initialised: this.paths.initialised,
      spec: () => this.spec(),
      applySpec: async (spec) => {
        await this.writeEngineFile(this.paths.configFile, await this.renderConf(spec));
        await writeEngineSpec(this.context.placement.dir, spec);
      },
      initialise: async (adminPassword, spec) => {
        await this.initialise(adminPassword, await this.renderConf(spec, false));
      },
      restoreReplica: (chain, adminPassword, spec, log) => this.restoreReplica(chain, adminPassword, spec, log),
      saveTlsRequirement: async (access) => {
        const dir = this.context.placement.dir;
        await saveTlsRequired(dir, checkTlsRequirement(access, await installedTlsFiles(dir)));
      },
      adminPassword: async () => (await this.endpoint()).password,
      setAdminPassword: async (password) => {
        await writeFile(this.paths.adminSecret, password, { mode: 0o600 });
        this.adminPassword = password;
      },
      start: () => this.start(),
      startIsolated: async (spec) => {
        // TCP closed (no client but the guest's socket gets in) and no replication thread started by itself
        await this.writeEngineFile(this.paths.configFile, await this.renderConf(spec, undefined, ['skip-networking', 'skip-slave-start']));
        await this.start();
      },
      stop: () => this.stop(),
      running: async () => (await runningServer(this.paths.pidFile, this.paths.dataDir)) !== undefined,
      binlogState: async () => {
        // the engine's file, read as the engine's user (see binlog-archive.ts); absent while a server runs or after a crash
        const read = await this.runner
          .run('/bin/cat', ['--', `${binlogBasename}.state`], { cwd: this.paths.dataDir, timeoutMs: 10_000 })
          .catch(() => undefined);
        return read?.stdout;
      },
    };
  }

  /** whether the server writes a binary log for the host to archive (binlog-archive.ts): wherever the host has a backup storage */
  archivesBinlog(): boolean {
    return this.context.archiveLog === true;
  }

  async prepare(
    input: PrepareInput,
    progress: PrepareProgress = () => undefined,
    restore?: readonly RestoreLink[],
    pointInTime?: PointInTimeSource,
  ): Promise<PrepareTimings> {
    const began = performance.now();
    for (const database of input.databases) checkDatabaseName(database.name);
    this.admin.checkUsers(input.users);
    const cidrs = this.clientCidrs(input.access);
    const dir = this.context.placement.dir;
    const requireTls = checkTlsRequirement(input.access, await installedTlsFiles(dir));
    const overrides = checkOverrides(input.overrides, this.flavor, this.datastore(), input.memoryMb);
    const spec: EngineSpec = { memoryMb: input.memoryMb, access: input.access, overrides };
    const conf = await this.renderConf(spec, requireTls);

    let poolPassword: string | undefined;
    if (!(await fileExists(this.paths.initialised))) {
      // the group's values from the first start on, not while the init SQL runs (a sql_mode
      // with NO_BACKSLASH_ESCAPES would misread its literals)
      const plainSpec = { ...spec, overrides: {} };
      if (restore === undefined) {
        poolPassword = await this.initialise(input.adminPassword, await this.renderConf(plainSpec, requireTls), progress, this.context.warm);
      } else {
        progress('restoring');
        await this.restore(restore, input.adminPassword, cidrs, (extra) => this.renderConf(plainSpec, requireTls, extra), pointInTime);
      }
    } else if ((await this.endpoint()).password !== input.adminPassword) {
      this.logger.warn('prepare redelivered with another admin password: keeping the first');
    }
    const initialised = performance.now();
    await this.writeEngineFile(this.paths.configFile, conf);
    await writeEngineSpec(dir, spec);
    await saveTlsRequired(dir, requireTls);
    progress('starting');
    await this.start();
    // before anything else: from here on only the instance's own password opens it
    if (poolPassword !== undefined) await this.rotatePoolPassword(input.adminPassword);
    const started = performance.now();
    progress('creating databases and users');
    await this.admin.run(async (connection) => {
      const registry = this.admin.registry;
      await registry.ensureSchema(connection);
      await registry.setAccessRules(connection, cidrs);
      await registry.lockDown(connection);
      await this.admin.ensureDatabases(connection, input.databases);
      await this.admin.recordUsers(connection, input.users);
      await registry.reconcileAll(connection);
    });
    const done = performance.now();
    return { initMs: initialised - began, startMs: started - initialised, setupMs: done - started };
  }

  /**
   * A data directory from the host's warm pool when it has one ready, made by the flavor's
   * install otherwise. Answers the pool password a taken one's guest account still has: such an
   * instance counts as initialised only once its first start rotated it (`rotatePoolPassword`),
   * so that an interrupted prepare starts over with another directory.
   */
  private async initialise(
    adminPassword: string,
    conf: string,
    progress: PrepareProgress = () => undefined,
    warm?: WarmSource,
  ): Promise<string | undefined> {
    const tools = await this.serverTools();
    // what an interrupted earlier attempt left: its server, its directories
    await this.stop();
    for (const dir of [this.paths.dataDir, this.paths.tmpDir, this.paths.filesDir]) await rm(dir, { recursive: true, force: true });
    for (const dir of [this.paths.tmpDir, this.paths.filesDir]) await this.engineDir(dir);
    await writeFile(this.paths.adminSecret, adminPassword, { mode: 0o600 });
    this.adminPassword = adminPassword;
    await this.writeEngineFile(this.paths.configFile, conf);
    const poolPassword = await this.takeFromPool(warm, progress);
    if (poolPassword === undefined) await this.install(tools, adminPassword, progress);
    // neither the install nor the pool writes one: it begins at the first start
    if (this.flavor.replication === true) await writeFile(this.paths.binlogFromStart, new Date().toISOString());
    if (poolPassword === undefined) await writeFile(this.paths.initialised, new Date().toISOString());
    return poolPassword;
  }

  private async takeFromPool(warm: WarmSource | undefined, progress: PrepareProgress): Promise<string | undefined> {
    if (warm === undefined) return undefined;
    progress('taking a prepared cluster');
    const poolPassword = await takeWarmDataDir(warm, this.context.placement.dir, this.paths.dataDir, this.logger);
    if (poolPassword === undefined) return undefined;
    this.logger.debug('took a data directory from the warm pool');
    // the guest logs in with it until the first start rotates it
    this.adminPassword = poolPassword;
    return poolPassword;
  }

  private async install(tools: ServerTools, adminPassword: string, progress: PrepareProgress): Promise<void> {
    progress('initialising');
    await this.engineDir(this.paths.dataDir);
    // the guest's tables are made here too, before the server first starts: fewer statements to wait for after it
    await this.writeEngineFile(this.paths.initFile, installSql(this.flavor, this.flavor.hashPassword(adminPassword)));
    try {
      const command = this.flavor.initCommand(tools, this.paths.configFile, this.paths.initFile);
      await this.runner.run(command.file, command.args, { timeoutMs: initTimeoutMs, cwd: this.paths.dataDir });
    } finally {
      await rm(this.paths.initFile, { force: true });
    }
  }

  /**
   * Gives the guest's account in a data directory taken from the pool the instance's password,
   * out of the binary log (a replica made as this instance was made has its own install's
   * account), and counts the instance initialised.
   */
  private async rotatePoolPassword(adminPassword: string): Promise<void> {
    const identified = this.flavor.identifiedClause(this.flavor.hashPassword(adminPassword));
    await this.admin.run(async (connection) => {
      await connection.query('SET SESSION sql_log_bin = 0');
      await connection.query(alterUserPasswordStatement(adminUser, 'localhost', identified));
    });
    this.adminPassword = adminPassword;
    // a health check's session opened with the pool's password would outlive it
    this.probe.close();
    await writeFile(this.paths.initialised, new Date().toISOString());
  }

  /**
   * Fills the data directory from `chain` (restore-chain.ts), then makes it this instance's: a
   * first start on the Unix socket alone (no TCP client can reach it) runs an init file that
   * gives the guest's account the new admin password before the server serves anyone, and the
   * guest then drops the source's root and anonymous accounts and derives the tenant users'
   * accounts for this instance's client ranges. Root is disabled, as Trove does on a restore:
   * the source's root password must not open the copy, and enabling root again sets a new one.
   * Tenant users and databases come with the backup. `.initialised` is written last: a restore
   * that fails anywhere leaves no server running and no data directory.
   */
  private async restore(
    chain: readonly RestoreLink[],
    adminPassword: string,
    cidrs: readonly string[],
    render: (extraOptions: readonly string[]) => Promise<string>,
    pointInTime?: PointInTimeSource,
  ): Promise<void> {
    // checked before anything is restored: a plan that cannot be followed fails the restore up front
    const replayPlan =
      pointInTime?.target === undefined ? undefined : planReplay(await pointInTime.list(), chain.at(-1)!.facts, pointInTime.target);
    try {
      const tools = await this.unpackChain(chain, adminPassword, restoredAccountsSql(this.flavor, this.flavor.hashPassword(adminPassword)), render);
      // before the accounts are derived for this instance: the replay may change the source's
      if (pointInTime !== undefined && replayPlan !== undefined) await replayBinlog(this.replayHost(tools), pointInTime, replayPlan);
      await this.admin.run(async (connection) => {
        const registry = this.admin.registry;
        await registry.ensureSchema(connection);
        await connection.query(`DELETE FROM ${tenantUsers} WHERE name = ?`, [rootUser]);
        await registry.setAccessRules(connection, cidrs);
        await registry.lockDown(connection);
        await registry.reconcileAll(connection);
      });
      await this.stop();
      await writeFile(this.paths.initialised, new Date().toISOString());
    } catch (err) {
      await this.discardData();
      throw err;
    }
  }

  /**
   * A replica's data directory from its primary's backup (replication.ts): the chain unpacked
   * as for a restore, the guest's account given the primary's administrative password with
   * nothing written to the replica's binary log (it holds the primary's transactions alone),
   * and nothing else changed: the accounts are the primary's. Leaves the server stopped and the
   * instance not yet initialised (its replication is not set up); a failure leaves no data directory.
   */
  private async restoreReplica(chain: readonly RestoreLink[], adminPassword: string, spec: EngineSpec, log?: PointInTimeSource): Promise<string> {
    const facts = chain.at(-1)!.facts;
    const replayPlan = log === undefined ? undefined : await this.catchUpPlan(log, facts);
    if (replayPlan === undefined && facts.gtid === undefined) throw new CofferError('BadRequest', 'The backup records no GTID position to replicate from.');
    const accounts = `SET SESSION sql_log_bin = 0;\n${restoredAccountsSql(this.flavor, this.flavor.hashPassword(adminPassword))}`;
    try {
      const tools = await this.unpackChain(chain, adminPassword, accounts, (extra) => this.renderConf(spec, false, ['skip-slave-start', ...extra]));
      let position = facts.gtid!;
      if (log !== undefined && replayPlan !== undefined) {
        // the archive's transactions keep their GTIDs (mariadb-binlog sets them): the replica's log is its primary's
        await replayBinlog(this.replayHost(tools), log, replayPlan);
        position = await this.admin.run(async (connection) => String((await connection.query<RowDataPacket[]>('SELECT @@gtid_binlog_pos AS pos'))[0][0]!.pos));
      }
      await this.stop();
      return position;
    } catch (err) {
      await this.discardData();
      throw err;
    }
  }

  /** The archived binary log since the backup, for a replica to replay before it replicates; none when nothing follows it yet. */
  private async catchUpPlan(log: PointInTimeSource, facts: BackupFacts): Promise<ReplayPlan | undefined> {
    try {
      return planReplay(await log.list(), facts, undefined);
    } catch (err) {
      this.logger.info({ err }, "no archived binary log follows the backup: the replica replicates from the backup's position");
      return undefined;
    }
  }

  private replayHost(tools: BackupTools): ReplayHost {
    return {
      flavor: this.flavor,
      runner: this.runner,
      admin: this.admin,
      tmpDir: this.paths.tmpDir,
      dataDir: this.paths.dataDir,
      socket: relative(this.paths.dataDir, this.paths.socket),
      binlogTool: tools.binlogReader,
      client: tools.client,
    };
  }

  /**
   * Fills the data directory from `chain` (restore-chain.ts) and starts it on the Unix socket
   * alone (no TCP client can reach it), with an init file that runs `initSql` before the server
   * serves anyone; the guest logs in with `adminPassword` from then on.
   */
  private async unpackChain(
    chain: readonly RestoreLink[],
    adminPassword: string,
    initSql: string,
    render: (extraOptions: readonly string[]) => Promise<string>,
  ): Promise<BackupTools> {
    checkRestoreChain(this.flavor, chain, await this.versionName());
    const tools = await this.backupTools();
    // what an interrupted earlier attempt left: its server, its directories
    await this.stop();
    for (const dir of [this.paths.dataDir, this.paths.tmpDir, this.paths.filesDir]) await rm(dir, { recursive: true, force: true });
    for (const dir of [this.paths.tmpDir, this.paths.filesDir]) await this.engineDir(dir);
    try {
      await restoreChain({
        flavor: this.flavor,
        runner: this.runner,
        logger: this.logger,
        tools,
        chain,
        scratchDir: this.paths.restoreScratch,
        dataDir: this.paths.dataDir,
      });
      await recordUpgradedVersion(this.flavor, this.runner, this.paths.dataDir, chain.at(-1)!.facts.version!);
      await writeFile(this.paths.adminSecret, adminPassword, { mode: 0o600 });
      this.adminPassword = adminPassword;
      await this.writeEngineFile(this.paths.initFile, initSql);
      await this.writeEngineFile(this.paths.configFile, await render(['skip-networking', `init-file = ${optionValue(this.paths.initFile)}`]));
      await this.start();
      return tools;
    } finally {
      await rm(this.paths.initFile, { force: true });
    }
  }

  /** What a failed restore leaves: no server running, no data directory. */
  private async discardData(): Promise<void> {
    await this.stop().catch((stopErr: unknown) => this.logger.error({ err: stopErr }, 'stop after a failed restore failed'));
    await rm(this.paths.dataDir, { recursive: true, force: true });
  }

  private async versionName(): Promise<string> {
    await this.serverTools();
    return this.context.binary!.versionName;
  }

  private async backupTools(): Promise<BackupTools> {
    await this.serverTools();
    this.backupToolsFound ??= await findBackupTools(this.flavor, this.context.binary!.binDir);
    return this.backupToolsFound;
  }

  /** What the backup module needs: the tools, the paths and the admin connection. */
  backupHost(): BackupHost {
    return {
      flavor: this.flavor,
      runner: this.runner,
      logger: this.logger,
      admin: this.admin,
      dataDir: this.paths.dataDir,
      configFile: this.paths.configFile,
      socket: this.paths.socket,
      scratchDir: this.paths.backupScratch,
      versionName: () => this.versionName(),
      tools: () => this.backupTools(),
      running: async () => (await this.health()) === 'healthy',
      archivesBinlog: this.archivesBinlog(),
    };
  }

  /** What the binary log's archive needs, where the host archives it. */
  binlogArchiveHost(): BinlogArchiveHost | undefined {
    if (!this.archivesBinlog()) return undefined;
    return {
      dataDir: this.paths.dataDir,
      runner: this.runner,
      admin: this.admin,
      binlogTool: async () => (await this.backupTools()).binlogReader,
      running: async () => (await this.health()) === 'healthy',
    };
  }

  async resize(memoryMb: number): Promise<void> {
    const dir = this.context.placement.dir;
    // the overrides stay; what follows from memory and no override sets is computed again
    const saved = await currentEngineSpec(dir, this.context.memoryMb);
    const spec: EngineSpec = { ...saved, memoryMb, access: saved?.access ?? null, overrides: saved?.overrides ?? {} };
    const pool = spec.overrides.innodb_buffer_pool_size;
    if (typeof pool === 'number' && pool > memoryMb * 1024 * 1024) {
      // the group's value stands (as in Trove); an apply would refuse it now
      this.logger.warn({ innodb_buffer_pool_size: pool, memoryMb }, "the configuration group's buffer pool is larger than the new flavor's memory");
    }
    // rendered before the stop: a bad value leaves the running engine alone
    const conf = await this.renderConf(spec);
    await this.stop();
    await this.writeEngineFile(this.paths.configFile, conf);
    await writeEngineSpec(dir, spec);
    await this.start();
  }

  async updateAccess(access: AccessSpec): Promise<void> {
    const cidrs = this.clientCidrs(access);
    const dir = this.context.placement.dir;
    const requireTls = checkTlsRequirement(access, await installedTlsFiles(dir));
    const saved = await currentEngineSpec(dir, this.context.memoryMb);
    // a replica's accounts and registry are its primary's, replicated: written here they would
    // diverge and stop replication (replication.ts), so its client ranges stay its primary's
    const replica = saved?.replication?.role === 'replica';
    if (replica) this.logger.warn('a replica keeps its primary\'s client ranges: only the TLS requirement applies');
    await this.admin.run(async (connection) => {
      if (!replica) {
        await this.admin.registry.setAccessRules(connection, cidrs);
        await this.admin.registry.reconcileAll(connection);
      }
      await setRequireSecureTransport(connection, requireTls);
    });
    // my.cnf is rendered again from the saved choice and spec on every later change
    await saveTlsRequired(dir, requireTls);
    if (saved === undefined) {
      await this.rewriteTlsOptions();
      return;
    }
    const spec: EngineSpec = { ...saved, access };
    await this.writeEngineFile(this.paths.configFile, await this.renderConf(spec));
    await writeEngineSpec(dir, spec);
  }

  /**
   * read_only: refuses writes by every account without READ ONLY ADMIN (SUPER before 10.11 and
   * on MySQL), which tenant users never have; an enabled root has it and can still write. Not in
   * my.cnf: a restart clears it, and the guest sets it again while the volume is full. A replica
   * stays read-only whatever the volume (its my.cnf sets it, see replication.ts).
   */
  async refuseWrites(refused: boolean): Promise<void> {
    const replica = (await currentEngineSpec(this.context.placement.dir, this.context.memoryMb))?.replication?.role === 'replica';
    await this.admin.run((connection) => connection.query(`SET GLOBAL read_only = ${refused || replica ? 'ON' : 'OFF'}`));
  }

  async installTls(material: TlsMaterial): Promise<void> {
    await writeTlsFiles(this.runner, this.context.placement.dir, material);
    await this.rewriteTlsOptions();
    if ((await runningServer(this.paths.pidFile, this.paths.dataDir)) !== undefined) {
      await this.admin.run((connection) => reloadTls(connection, this.flavor));
    }
  }

  /**
   * The TLS lines of the my.cnf, so that a restart keeps what the running server was told: the
   * whole file from the spec, or for an instance with none (and no known memory) the TLS lines
   * in place and the rest as it is.
   */
  private async rewriteTlsOptions(): Promise<void> {
    const dir = this.context.placement.dir;
    const current = await readFile(this.paths.configFile, 'utf8').catch(() => undefined);
    if (current === undefined) return;
    const spec = await currentEngineSpec(dir, this.context.memoryMb);
    if (spec !== undefined) {
      await this.writeEngineFile(this.paths.configFile, await this.renderConf(spec));
      return;
    }
    const tlsLines = mysqlTlsOptions(await installedTlsFiles(dir), await readTlsRequired(dir));
    const kept = current.split('\n').filter((line) => !/^(ssl_cert|ssl_key|require_secure_transport) =/.test(line));
    const end = kept.at(-1) === '' ? kept.length - 1 : kept.length;
    const next = [...kept.slice(0, end), ...tlsLines, ...kept.slice(end)].join('\n');
    await this.writeEngineFile(this.paths.configFile, next);
  }

  logFiles(): Record<string, string> {
    return { error: this.paths.errorLog, general: this.paths.generalLog, slow_query: this.paths.slowLog };
  }

  async start(): Promise<void> {
    // an instance never prepared has no admin password: refused before any server starts
    await this.endpoint();
    await this.server.start();
    await this.upgradeIfNeeded();
  }

  /** After the server changed version (upgrade.ts); a failure leaves it running. */
  private async upgradeIfNeeded(): Promise<void> {
    // throws where this host lacks the instance's version
    await this.serverTools();
    const binary = this.context.binary!;
    await upgradeIfNeeded({
      flavor: this.flavor,
      runner: this.runner,
      logger: this.logger,
      admin: this.admin,
      dataDir: this.paths.dataDir,
      socket: relative(this.paths.dataDir, this.paths.socket),
      tmpDir: relative(this.paths.dataDir, this.paths.tmpDir),
      serverVersion: binary.version,
      tool: () => findUpgradeTool(this.flavor, binary.binDir),
    });
  }

  stop(): Promise<void> {
    // the server would end it anyway; closed first, it is not logged as an aborted connection
    this.probe.close();
    return this.server.stop();
  }

  private serverControl(): ServerControl {
    const { dataDir, pidFile, errorLog } = this.paths;
    const stopAllIn = async () => {
      for (const pid of await serversIn(dataDir)) await stopServer(pid, stopTimeoutMs);
    };
    return {
      title: this.flavor.title,
      stopSignal: 'SIGTERM',
      stopTimeoutMs,
      running: () => runningServer(pidFile, dataDir),
      beforeSpawn: stopAllIn,
      spawn: async () => {
        const tools = await this.serverTools();
        // the server opens these to append; the engine's user cannot create files in the host's directory
        await this.writeEngineFile(this.paths.slowLog, undefined);
        await this.writeEngineFile(this.paths.generalLog, undefined);
        // relative: the command line is anyone's to read in ps, and the path names the instance
        return this.runner.spawnDetached(tools.server, [`--defaults-file=${relative(dataDir, this.paths.configFile)}`], {
          logFile: errorLog,
          cwd: dataDir,
        });
      },
      waitReady: async (pid, exited) =>
        waitUntilReady({ title: this.flavor.title, endpoint: await this.endpoint(), pid, exited, logFile: errorLog, timeoutMs: startTimeoutMs }),
      stopPid: (pid) => stopServer(pid, stopTimeoutMs),
      afterStop: stopAllIn,
    };
  }

  async health(): Promise<EngineHealth> {
    if ((await this.running.pid()) === undefined) {
      this.probe.close();
      return 'stopped';
    }
    return (await this.probe.answers()) ? 'healthy' : 'running';
  }

  metrics(): Promise<EngineMetrics | undefined> {
    return this.probe.query((connection) => mysqlFamilyMetrics(connection, guestDatabase));
  }

  release(): void {
    this.probe.close();
  }

  processId(): Promise<number | undefined> {
    return this.running.pid();
  }
}

/** The lifecycle module of one member of the family. */
export function mysqlFamilyLifecycle(flavor: MysqlFamilyFlavor): LifecycleModule<MysqlFamilyLifecycle> {
  return {
    // the guest's registry derives each account's allowed client ranges (account-registry.ts)
    accessRules: true,
    create: (context) => new MysqlFamilyLifecycle(flavor, context),
  };
}
