import { chmod, mkdir, rm } from 'node:fs/promises';
import { createServer as createTcpServer } from 'node:net';
import { join, resolve } from 'node:path';
import {
  agentContract,
  agentTopic,
  conductorContract,
  conductorTopic,
  createRpcClient,
  guestTopic,
  serveRpc,
  type EngineVersionReport,
  type RpcClient,
  type ServerInfo,
  type Subscription,
  type Transport,
} from '../bus/index.js';
import { CofferError } from '../common/index.js';
import type { Logger } from '../common/index.js';
import {
  engineNames,
  engineRegistry,
  isEngineName,
  startGuest,
  type DesiredState,
  type EngineBinary,
  type EngineName,
  type Guest,
} from '../guest/index.js';
import { AddressPool } from './address-pool.js';
import { checkEngineUserReaches, ensureEngineUser } from './engine-user.js';
import {
  isSafeInstanceId,
  readInstanceRecord,
  scanInstanceRecords,
  writeInstanceRecord,
  type InstanceRecord,
} from './instance-record.js';
import { KeyedLock } from './keyed-lock.js';
import { LocalProcessRunner } from './local-process-runner.js';
import { WarmPool, type WarmKind } from './warm-pool.js';

export interface AgentOptions {
  /** agent host name, e.g. os.hostname() or 'local' */
  host: string;
  /** instance directories live in <dataDir>/instances/<instanceId> */
  dataDir: string;
  transport: Transport;
  logger: Logger;
  /** CIDR inside 127.0.0.0/8 for instance addresses, default '127.77.0.0/16' */
  addressPool?: string;
  /** unprivileged user the engines run as when the agent runs as root; default 'coffer-db' */
  engineUser?: string;
  /** guest heartbeats and agent heartbeat cadence, default 10 s */
  heartbeatIntervalMs?: number;
  /** extra bin directories to search first, per engine */
  binaries?: Partial<Record<EngineName, string[]>>;
  /**
   * clusters kept initialised ahead of time per engine version in <dataDir>/pool, so that a
   * create skips initdb; made one at a time at low CPU priority. Default 2; 0 keeps none.
   */
  warmPoolSize?: number;
}

export interface Agent {
  readonly host: string;
  /** stops guests and subscriptions; the database processes keep running */
  stop(): Promise<void>;
}

// Clients of loopback instances connect from loopback addresses.
const localClientCidrs = ['127.0.0.0/8'];

interface Hosted {
  record: InstanceRecord;
  dir: string;
  guest: Guest;
}

/** The pool's directory of one engine version, e.g. postgresql-15. */
function warmKindName(manager: string, versionName: string): string {
  return `${manager}-${versionName}`;
}

/** True when nothing listens on address:port (another agent on this host, a stray server). */
function portIsFree(address: string, port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const server = createTcpServer();
    server.once('error', () => resolvePromise(false));
    server.listen({ host: address, port, exclusive: true }, () => server.close(() => resolvePromise(true)));
  });
}

class LocalAgent implements Agent {
  readonly host: string;
  private readonly instancesDir: string;
  private readonly warmPoolSize: number;
  private warmPool: WarmPool | undefined;
  private readonly logger: Logger;
  private readonly pool: AddressPool;
  private readonly interval: number;
  private readonly hosted = new Map<string, Hosted>();
  private readonly locks = new KeyedLock();
  private readonly conductor: RpcClient<typeof conductorContract>;
  private runner!: LocalProcessRunner;
  private reports: EngineVersionReport[] = [];
  private binaries = new Map<EngineName, EngineBinary[]>();
  private reachable = false;
  private subscription: Subscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: AgentOptions) {
    if (options.host.trim() === '') throw new CofferError('BadRequest', 'The agent needs a host name.');
    this.host = options.host;
    this.instancesDir = join(resolve(options.dataDir), 'instances');
    this.warmPoolSize = options.warmPoolSize ?? 2;
    if (!Number.isInteger(this.warmPoolSize) || this.warmPoolSize < 0) {
      throw new CofferError('BadRequest', `The warm pool size must be a whole number from 0, not ${options.warmPoolSize}.`);
    }
    this.logger = options.logger.child({ component: 'agent', host: options.host });
    this.pool = new AddressPool(options.addressPool ?? '127.77.0.0/16');
    this.interval = options.heartbeatIntervalMs ?? 10_000;
    this.conductor = createRpcClient(options.transport, conductorContract, conductorTopic);
  }

  async start(): Promise<void> {
    await mkdir(this.instancesDir, { recursive: true, mode: 0o755 });
    const identity =
      process.getuid?.() === 0 ? await ensureEngineUser(this.options.engineUser ?? 'coffer-db', this.logger) : undefined;
    this.runner = new LocalProcessRunner(identity);
    await this.discover();
    this.warmPool = new WarmPool({
      dir: join(resolve(this.options.dataDir), 'pool'),
      size: this.warmPoolSize,
      kinds: this.warmKinds(),
      runner: this.runner,
      logger: this.logger,
    });
    for (const { dir, record } of await scanInstanceRecords(this.instancesDir, this.logger)) {
      try {
        this.pool.reserve(record.id, record.address);
        await this.hostInstance(record, dir);
      } catch (err) {
        this.logger.error({ err, instanceId: record.id }, 'could not re-adopt instance');
      }
    }
    this.subscription = await serveRpc(
      this.options.transport,
      agentContract,
      agentTopic(this.host),
      {
        createServer: (args) => this.locks.run(args.instanceId, () => this.createServer(args)),
        deleteServer: (args) => this.locks.run(args.instanceId, () => this.deleteServer(args.instanceId)),
        listServers: async () => [...this.hosted.values()].map(({ record }) => this.info(record)),
      },
      this.logger,
    );
    await this.announce();
    // after the instances are back: filling the pool is the least urgent work there is
    this.warmPool.start();
    this.logger.info({ instances: this.hosted.size, engines: this.reports }, 'agent started');
  }

  private warmKinds(): WarmKind[] {
    return [...this.binaries].flatMap(([manager, binaries]) => {
      const warm = engineRegistry[manager].warm;
      if (warm === undefined) return [];
      return binaries.map((binary) => ({ name: warmKindName(manager, binary.versionName), binary, warm }));
    });
  }

  private async discover(): Promise<void> {
    this.reports = [];
    for (const name of engineNames) {
      const found = await engineRegistry[name].discover(this.options.binaries?.[name] ?? [], this.runner);
      this.binaries.set(name, found.binaries);
      this.reports.push(...found.reports);
    }
  }

  private async announce(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.conductor.agentHeartbeat({ host: this.host, engines: this.reports });
    } catch (err) {
      this.logger.warn({ err }, 'agent heartbeat not sent');
    }
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.announce(), this.interval);
    this.timer.unref();
  }

  private info(record: InstanceRecord): ServerInfo {
    return { instanceId: record.id, host: this.host, address: record.address, port: record.port };
  }

  private binaryFor(engine: InstanceRecord['engine']): EngineBinary | undefined {
    if (!isEngineName(engine.manager)) return undefined;
    return this.binaries.get(engine.manager)?.find((binary) => binary.versionName === engine.version);
  }

  /** starts the instance's guest: from then on it serves guest.<id> and supervises the engine */
  private async hostInstance(record: InstanceRecord, dir: string): Promise<Hosted> {
    if (!isEngineName(record.engine.manager)) {
      throw new CofferError('DatastoreNotFound', `This agent has no engine ${record.engine.manager}.`);
    }
    const binary = this.binaryFor(record.engine);
    if (binary === undefined) {
      this.logger.error(
        { instanceId: record.id, engine: record.engine },
        'no binary for the instance version: it cannot be started here',
      );
    }
    const guest = await startGuest({
      instance: {
        instanceId: record.id,
        dir,
        address: record.address,
        port: record.port,
        volumeSizeGb: record.volumeSizeGb,
      },
      engine: { manager: record.engine.manager, binary },
      runner: this.runner,
      transport: this.options.transport,
      logger: this.options.logger,
      heartbeatIntervalMs: this.interval,
      desiredState: record.desiredState,
      saveDesiredState: (state) => this.saveDesiredState(record.id, state),
      defaultClientCidrs: localClientCidrs,
      warm: binary === undefined ? undefined : this.warmPool?.source(warmKindName(record.engine.manager, binary.versionName)),
    });
    const hosted = { record, dir, guest };
    this.hosted.set(record.id, hosted);
    return hosted;
  }

  private async saveDesiredState(instanceId: string, state: DesiredState): Promise<void> {
    const hosted = this.hosted.get(instanceId);
    if (hosted === undefined) return;
    hosted.record = { ...hosted.record, desiredState: state };
    await writeInstanceRecord(hosted.dir, hosted.record);
  }

  private checkEngine(engine: InstanceRecord['engine']): void {
    if (!isEngineName(engine.manager)) {
      throw new CofferError('DatastoreNotFound', `Datastore manager ${engine.manager} is not supported by this agent.`);
    }
    if (this.binaryFor(engine) !== undefined) return;
    const report = this.reports.find((r) => r.manager === engine.manager && r.name === engine.version);
    if (report !== undefined && !report.active) {
      throw new CofferError(
        'DatastoreVersionInactive',
        `${engine.manager} ${engine.version} cannot run on host ${this.host}: ${report.inactiveReason}`,
      );
    }
    throw new CofferError('DatastoreVersionNotFound', `Host ${this.host} has no ${engine.manager} version ${engine.version}.`);
  }

  private async createServer(args: {
    instanceId: string;
    engine: InstanceRecord['engine'];
    flavor: InstanceRecord['flavor'];
    volumeSizeGb: number;
  }): Promise<ServerInfo> {
    if (this.stopped) throw new CofferError('BusUnavailable', `Agent ${this.host} is stopping.`);
    const existing = this.hosted.get(args.instanceId);
    if (existing !== undefined) return this.info(existing.record);
    if (!isSafeInstanceId(args.instanceId)) {
      throw new CofferError('BadRequest', `Invalid instance id "${args.instanceId}".`);
    }
    this.checkEngine(args.engine);
    const factory = engineRegistry[args.engine.manager as EngineName];
    const dir = join(this.instancesDir, args.instanceId);
    factory.checkInstanceDir(dir);
    if (!this.reachable) {
      await checkEngineUserReaches(this.instancesDir, this.runner);
      this.reachable = true;
    }
    // a record left by a createServer that failed after writing it is taken up again
    let record = await readInstanceRecord(dir);
    if (record !== undefined) {
      this.pool.reserve(record.id, record.address);
    } else {
      const address = await this.pool.allocate(args.instanceId, (candidate) => portIsFree(candidate, factory.standardPort));
      try {
        // the host's own directory: the engine's user may traverse it, not list or change it;
        // the engine gets the data directory inside (see the engine's layout)
        await mkdir(dir);
        await chmod(dir, 0o711);
        record = {
          id: args.instanceId,
          engine: args.engine,
          address,
          port: factory.standardPort,
          flavor: args.flavor,
          volumeSizeGb: args.volumeSizeGb,
          desiredState: 'running',
          createdAt: new Date().toISOString(),
        };
        await writeInstanceRecord(dir, record);
      } catch (err) {
        this.pool.release(args.instanceId);
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
    }
    const hosted = await this.hostInstance(record, dir);
    this.logger.info({ instanceId: record.id, address: record.address }, 'server created');
    return this.info(hosted.record);
  }

  private async deleteServer(instanceId: string): Promise<{ deleted: boolean }> {
    if (!isSafeInstanceId(instanceId)) return { deleted: false };
    const dir = join(this.instancesDir, instanceId);
    const hosted = this.hosted.get(instanceId);
    let existed = hosted !== undefined;
    if (hosted !== undefined) {
      await hosted.guest.destroy();
      this.hosted.delete(instanceId);
    } else {
      // not hosted (e.g. its guest failed to start): still make sure its engine is stopped
      const record = await readInstanceRecord(dir).catch(() => undefined);
      if (record !== undefined && isEngineName(record.engine.manager)) {
        existed = true;
        await engineRegistry[record.engine.manager]
          .create({
            placement: { instanceId, dir, address: record.address, port: record.port },
            binary: undefined,
            runner: this.runner,
            logger: this.logger.child({ instanceId }),
            defaultClientCidrs: localClientCidrs,
          })
          .stop();
      }
    }
    await this.options.transport.deleteTopic(guestTopic(instanceId));
    await rm(dir, { recursive: true, force: true });
    this.pool.release(instanceId);
    if (existed) this.logger.info({ instanceId }, 'server deleted');
    return { deleted: existed };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    // first: an initdb in progress is killed at once rather than waited for
    await this.warmPool?.stop();
    await this.subscription?.close();
    await this.locks.drain();
    await Promise.all([...this.hosted.values()].map(({ guest }) => guest.close()));
    this.hosted.clear();
    this.logger.info('agent stopped; database processes keep running');
  }
}

/**
 * Starts the local compute driver of this host: discovers engine versions, re-adopts the
 * instances found under dataDir (running ones untouched, stopped ones that should run started),
 * serves `agent.<host>` and announces itself to the conductor.
 */
export async function startAgent(options: AgentOptions): Promise<Agent> {
  const agent = new LocalAgent(options);
  try {
    await agent.start();
  } catch (err) {
    // guests already started must not keep serving for an agent that never came up
    await agent.stop().catch(() => undefined);
    throw err;
  }
  return agent;
}
