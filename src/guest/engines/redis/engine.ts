import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { AccessSpec, PrepareInput } from '../../../bus/index.js';
import { CofferError, newPassword } from '../../../common/index.js';
import type { Logger } from '../../../common/index.js';
import type { ProcessRunner } from '../../process-runner.js';
import type { EngineContext, EngineDriver, EngineFactory, EngineHealth, PrepareTimings, TlsMaterial } from '../engine.js';
import { checkSocketPath, fileExists, writeEngineFile } from '../engine-files.js';
import { checkTlsRequirement, installedTlsFiles, readTlsRequired, saveTlsRequired, writeTlsFiles, type TlsFiles } from '../tls-files.js';
import { SupervisedServer, type ServerControl } from '../supervised-server.js';
import { renderInitialAclFile } from './acl.js';
import {
  checkUserSpecs,
  ensureUsers,
  probeServer,
  RedisRootAdmin,
  RedisUserAdmin,
  setMaxmemory,
  withAdminClient,
  type AdminEndpoint,
} from './admin.js';
import { discoverRedis, missingBinaryReason } from './binaries.js';
import { redisCapabilities } from './capabilities.js';
import { maxmemoryMb, renderRedisConf } from './config.js';
import { applyTls, isTlsSetting, redisTlsPort, redisTlsSettings } from './tls.js';
import { killServerProcesses, runningServer, stopServer, waitUntilReady, type ServerFiles } from './server-process.js';

// Redis as a supervised local process: redis-server started directly on a redis.conf rendered
// from the flavor, in the foreground (the agent supervises it), stopped with SIGTERM. As for
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

const standardPort = 6379;

const startTimeoutMs = 120_000;
// a final RDB snapshot of a large dataset takes its time (~80 MB/s); the AOF has it anyway
const stopTimeoutMs = 60_000;
const probeTimeoutMs = 3_000;

interface Layout extends ServerFiles {
  logFile: string;
  socketPath: string;
  aclFile: string;
  /** read by the guest only: owned by the host's user, not the engine's */
  adminSecret: string;
  initialised: string;
}

function layout(dir: string): Layout {
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
  };
}

/** Everything Redis cannot do that a prepare asks for is refused before anything starts. */
function checkPrepareInput(input: PrepareInput): void {
  if (input.databases.length > 0) {
    throw new CofferError('BadRequest', 'Redis has no databases: create the instance without any.');
  }
  checkUserSpecs(input.users);
  checkAccess(input.access);
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

class RedisDriver implements EngineDriver {
  readonly users: RedisUserAdmin;
  readonly root: RedisRootAdmin;
  private readonly paths: Layout;
  private readonly runner: ProcessRunner;
  private readonly logger: Logger;
  private adminPassword: string | undefined;
  private readonly serverProcess: SupervisedServer;

  constructor(private readonly context: EngineContext) {
    this.paths = layout(context.placement.dir);
    this.runner = context.runner;
    this.logger = context.logger;
    this.users = new RedisUserAdmin(() => this.endpoint());
    this.root = new RedisRootAdmin(() => this.endpoint());
    this.serverProcess = new SupervisedServer(this.serverControl(), this.logger);
  }

  private server(): string {
    if (this.context.binary === undefined) {
      throw new CofferError(
        'DatastoreVersionInactive',
        `This host has no redis-server for the instance's version. ${missingBinaryReason}`,
      );
    }
    return join(this.context.binary.binDir, 'redis-server');
  }

  private async endpoint(): Promise<AdminEndpoint> {
    // not trimmed: the ACL file holds the hash of exactly these bytes
    this.adminPassword ??= await readFile(this.paths.adminSecret, 'utf8');
    return { socketPath: this.paths.socketPath, password: this.adminPassword };
  }

  private renderConf(memoryMb: number, tls: TlsFiles | undefined, requireTls: boolean): string {
    return renderRedisConf({
      tls,
      requireTls,
      memoryMb,
      address: this.context.placement.address,
      port: this.context.placement.port,
      dataDir: this.paths.dataDir,
      socketPath: this.paths.socketPath,
      pidFile: this.paths.pidFile,
      aclFile: this.paths.aclFile,
    });
  }

  async prepare(input: PrepareInput): Promise<PrepareTimings> {
    const began = performance.now();
    checkPrepareInput(input);
    const tls = await installedTlsFiles(this.context.placement.dir);
    const requireTls = checkTlsRequirement(input.access, tls);
    const conf = this.renderConf(input.memoryMb, tls, requireTls);
    if (!(await fileExists(this.paths.initialised))) await this.initialise();
    const initialised = performance.now();
    await writeEngineFile(this.runner, this.paths.configFile, conf);
    await saveTlsRequired(this.context.placement.dir, requireTls);
    await this.start();
    const started = performance.now();
    await ensureUsers(await this.endpoint(), input.users);
    const done = performance.now();
    return { initMs: initialised - began, startMs: started - initialised, setupMs: done - started };
  }

  /**
   * A fresh data directory holding only the ACL file. Until `.redis-init.done` exists an
   * interrupted prepare starts over from nothing: the host writes into the directory only
   * while it still owns it, before handing it to the engine's user.
   */
  private async initialise(): Promise<void> {
    const leftover = await runningServer(this.paths);
    if (leftover !== undefined) await stopServer(leftover, this.paths.dataDir, stopTimeoutMs);
    await rm(this.paths.dataDir, { recursive: true, force: true });
    const adminPassword = newPassword(48);
    await writeFile(this.paths.adminSecret, adminPassword, { mode: 0o600 });
    this.adminPassword = adminPassword;
    await mkdir(this.paths.dataDir, { mode: 0o700 });
    await writeFile(this.paths.aclFile, renderInitialAclFile(adminPassword), { mode: 0o600 });
    await this.runner.handOver(this.paths.aclFile);
    await this.runner.handOver(this.paths.dataDir);
    await writeFile(this.paths.initialised, new Date().toISOString());
  }

  async resize(memoryMb: number): Promise<void> {
    // rendered first: a bad value leaves the running engine alone
    const dir = this.context.placement.dir;
    const conf = this.renderConf(memoryMb, await installedTlsFiles(dir), await readTlsRequired(dir));
    await writeEngineFile(this.runner, this.paths.configFile, conf);
    if ((await runningServer(this.paths)) === undefined) {
      await this.start();
      return;
    }
    // maxmemory changes live: no restart, no reload of the dataset
    await setMaxmemory(await this.endpoint(), maxmemoryMb(memoryMb));
  }

  async updateAccess(access: AccessSpec): Promise<void> {
    // the default (the host's client ranges) is what Redis enforces already: only TLS can change
    checkAccess(access);
    const dir = this.context.placement.dir;
    const files = await installedTlsFiles(dir);
    const requireTls = checkTlsRequirement(access, files);
    await saveTlsRequired(dir, requireTls);
    if (files !== undefined) await this.applyTls(files, requireTls);
  }

  async installTls(material: TlsMaterial): Promise<void> {
    const dir = this.context.placement.dir;
    const files = await writeTlsFiles(this.runner, dir, material);
    await this.applyTls(files, await readTlsRequired(dir));
  }

  /**
   * The running server's TLS follows the files and the requirement, and so do the TLS lines of
   * redis.conf (the rest of it, rendered from the flavor, stays), so that a restart keeps them.
   * Not CONFIG REWRITE: the server's user cannot write in the host's directory.
   */
  private async applyTls(files: TlsFiles, requireTls: boolean): Promise<void> {
    const port = this.context.placement.port;
    const current = await readFile(this.paths.configFile, 'utf8').catch(() => undefined);
    if (current !== undefined) {
      const lines = current.split('\n').filter((line) => !isTlsSetting(line));
      const bind = lines.findIndex((line) => line.startsWith('bind '));
      const tlsLines = redisTlsSettings(files, port, requireTls).map(([name, value]) => `${name} ${value}`);
      lines.splice(bind + 1, 0, ...tlsLines);
      await writeEngineFile(this.runner, this.paths.configFile, lines.join('\n'));
    }
    if ((await runningServer(this.paths)) === undefined) return;
    await withAdminClient(await this.endpoint(), (client) => applyTls(client, files, port, requireTls));
  }

  logFiles(): Record<string, string> {
    return { general: this.paths.logFile };
  }

  start(): Promise<void> {
    return this.serverProcess.start();
  }

  stop(): Promise<void> {
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
      beforeSpawn: () => killServerProcesses(dataDir),
      // relative: the command line is anyone's to read in ps, and the path names the instance
      spawn: () => this.runner.spawnDetached(this.server(), [relative(dataDir, this.paths.configFile)], { logFile, cwd: dataDir }),
      waitReady: (pid, exited) =>
        waitUntilReady({ pid, exited, endpoint: () => this.endpoint(), logFile, timeoutMs: startTimeoutMs }),
      stopPid: (pid) => stopServer(pid, dataDir, stopTimeoutMs),
      afterStop: () => killServerProcesses(dataDir),
    };
  }

  async health(): Promise<EngineHealth> {
    if ((await runningServer(this.paths)) === undefined) return 'stopped';
    const endpoint = await this.endpoint().catch(() => undefined);
    if (endpoint === undefined) return 'running';
    return (await probeServer(endpoint, probeTimeoutMs)) === 'ready' ? 'healthy' : 'running';
  }

  processId(): Promise<number | undefined> {
    return runningServer(this.paths);
  }
}

export const redisEngine: EngineFactory = {
  manager: 'redis',
  capabilities: redisCapabilities,
  // root is the default user, without CONFIG, MODULE or DEBUG: it cannot reach files or programs
  rootReachesOsUser: false,
  standardPort,
  tlsPort: redisTlsPort,
  discover: discoverRedis,
  checkInstanceDir: (dir) => checkSocketPath('Redis', layout(dir).socketPath),
  create: (context) => new RedisDriver(context),
};
