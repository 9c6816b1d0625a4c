import { join, resolve } from 'node:path';
import pLimit from 'p-limit';
import {
  agentContract,
  agentTopic,
  conductorContract,
  conductorTopic,
  createRpcClient,
  guestContract,
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
  forgetWalTarget,
  isEngineName,
  CheckRound,
  HeartbeatBatch,
  startGuest,
  type CertificateIssuer,
  type GuestBackupHost,
  type DesiredState,
  type EngineBinary,
  type EngineName,
  type Guest,
  type TlsMaterial,
} from '../guest/index.js';
import { HostPortAllocator, LoopbackAllocator, type AddressAllocator, type PortNeeds } from './address-allocator.js';
import { CertificateAuthority, type CaFiles } from './certificate-authority.js';
import { instanceCertificates } from './instance-certificates.js';
import type { ComputeDriver, PlacedInstance } from './compute-driver.js';
import { isSafeInstanceId, type InstanceRecord } from './instance-record.js';
import { KeyedLock } from './keyed-lock.js';
import { LocalComputeDriver } from './local-compute-driver.js';
import { WarmPool, defaultWarmPoolSize, thisHost, type WarmKind } from './warm-pool.js';
import { checkDataDirDepth } from './data-dir-depth.js';
import { CreatesInFlight } from './creates-in-flight.js';

// Reported with every heartbeat, so callers check before they send. The guests run in this
// process from the same build, so they serve what it was built with.
const servedContracts = { [agentContract.name]: agentContract.version, [guestContract.name]: guestContract.version };

export interface AgentOptions {
  /** agent host name, e.g. os.hostname() or 'local' */
  host: string;
  /** instance directories live in <dataDir>/instances/<instanceId> */
  dataDir: string;
  transport: Transport;
  logger: Logger;
  /** CIDR inside 127.0.0.0/8 for instance addresses, default '127.77.0.0/16'; unused with `hostAddress` */
  addressPool?: string;
  /**
   * this host's own address: every instance's engine listens on it, each with ports of its own
   * from `instancePorts`, instead of on a loopback address of its own with the standard port
   */
  hostAddress?: string;
  /** the instances' ports with `hostAddress`, `from-to`; default 30000-32767 */
  instancePorts?: string;
  /** the host the agent drives; default the local process driver on `dataDir` */
  compute?: ComputeDriver;
  /**
   * when the agent runs as root: the unprivileged user that discovers engine versions and
   * prepares the warm pool (each instance's engine runs as a user of its own); default 'coffer-db'
   */
  engineUser?: string;
  /** guest heartbeats and agent heartbeat cadence, default 10 s */
  heartbeatIntervalMs?: number;
  /** extra bin directories to search first, per engine */
  binaries?: Partial<Record<EngineName, string[]>>;
  /**
   * clusters kept initialised ahead of time per engine version in <dataDir>/pool, so that a
   * create skips initdb; made one at a time at low CPU priority. As root, as many instance OS
   * users are kept made ahead of time (spare-users.ts). Neither is made while creates are under
   * way. Default from the host's cores, memory and free disk (defaultWarmPoolSize); 0 keeps none.
   */
  warmPoolSize?: number;
  /**
   * the nftables program that walls each engine's OS user off the network when the agent runs
   * as root (network-wall.ts); default `nft` on the runner's PATH
   */
  nftPath?: string;
  /**
   * the CA that signs the instances' certificates, brought by the operator; default: Coffer's
   * own, made in <dataDir>/ca on first start
   */
  ca?: CaFiles;
  /** how long an instance's certificate is valid, in days (renewed when a third is left); default 90 */
  certificateValidityDays?: number;
  /** where the guests store backups and the master key that unwraps each project's key; absent: backups are refused */
  backups?: GuestBackupHost;
  /** how many instances found at start are re-adopted at once, in the background; default 8 */
  adoptionConcurrency?: number;
  /**
   * awaited as the re-adoption of each instance found at start begins: tests hold one there to
   * see the agent (and the API of `coffer serve`) answer meanwhile
   */
  beforeAdopt?: (instanceId: string) => Promise<void>;
}

export interface Agent {
  readonly host: string;
  /**
   * Settles once every instance found at start has been re-adopted (its guest serving and its
   * first health check done) or failed to be. The agent serves before that: adoption runs in
   * the background, a few instances at a time.
   */
  readonly adopted: Promise<void>;
  /** the instances found at start that are not re-adopted yet */
  adopting(): string[];
  /** initialised clusters waiting in the warm pool, by kind (e.g. postgresql-15): its /metrics */
  warmPoolSizes(): Promise<Record<string, number>>;
  /** stops guests and subscriptions; the database processes keep running */
  stop(): Promise<void>;
}

const defaultAdoptionConcurrency = 8;

interface Hosted extends PlacedInstance {
  guest: Guest;
}

/** The pool's directory of one engine version, e.g. postgresql-15. */
function warmKindName(manager: string, versionName: string): string {
  return `${manager}-${versionName}`;
}

/** The ports an engine's instance holds: Redis's TLS port is a port of its own, the others serve TLS on theirs. */
function portNeeds(manager: string): PortNeeds {
  if (!isEngineName(manager)) return { standardPort: 0, span: 1 };
  const factory = engineRegistry[manager];
  const standardPort = factory.standardPort;
  return { standardPort, span: factory.tlsPort(standardPort) === standardPort ? 1 : factory.tlsPort(standardPort) - standardPort + 1 };
}

/** The address allocator the options ask for: the host's address with a port each, or loopback addresses. */
export function addressAllocator(options: Pick<AgentOptions, 'addressPool' | 'hostAddress' | 'instancePorts'>): AddressAllocator {
  if (options.hostAddress !== undefined) return new HostPortAllocator(options.hostAddress, options.instancePorts);
  return new LoopbackAllocator(options.addressPool ?? '127.77.0.0/16');
}

class LocalAgent implements Agent {
  readonly host: string;
  private readonly instancesDir: string;
  private readonly warmPoolSize: number;
  private warmPool: WarmPool | undefined;
  private readonly logger: Logger;
  private readonly compute: ComputeDriver;
  private readonly interval: number;
  /** every hosted guest's health check, spread over the interval (check-round.ts) */
  private readonly checks: CheckRound;
  /** their periodic heartbeats, gathered into one message per slice of the round */
  private readonly beats: HeartbeatBatch;
  private readonly hosted = new Map<string, Hosted>();
  /** found at start, not re-adopted yet */
  private readonly pending = new Map<string, InstanceRecord>();
  adopted: Promise<void> = Promise.resolve();
  private readonly locks = new KeyedLock();
  /** an instance's wall changes in the order asked: a new one's own, raised beside its create, before its replica source's */
  private readonly wallChanges = new KeyedLock();
  /** the warm pool and the spare users are made back only once none is under way */
  private readonly creating = new CreatesInFlight();
  private readonly conductor: RpcClient<typeof conductorContract>;
  private reports: EngineVersionReport[] = [];
  private binaries = new Map<EngineName, EngineBinary[]>();
  private ca!: CertificateAuthority;
  private subscription: Subscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: AgentOptions) {
    if (options.host.trim() === '') throw new CofferError('BadRequest', 'The agent needs a host name.');
    this.host = options.host;
    this.instancesDir = join(resolve(options.dataDir), 'instances');
    this.warmPoolSize = options.warmPoolSize ?? defaultWarmPoolSize(thisHost(options.dataDir));
    if (!Number.isInteger(this.warmPoolSize) || this.warmPoolSize < 0) {
      throw new CofferError('BadRequest', `The warm pool size must be a whole number from 0, not ${options.warmPoolSize}.`);
    }
    const concurrency = options.adoptionConcurrency ?? defaultAdoptionConcurrency;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new CofferError('BadRequest', `The adoption concurrency must be a whole number from 1, not ${concurrency}.`);
    }
    this.logger = options.logger.child({ component: 'agent', host: options.host });
    this.compute =
      options.compute ??
      new LocalComputeDriver({
        dataDir: options.dataDir,
        addresses: addressAllocator(options),
        logger: this.logger,
        ...(options.engineUser === undefined ? {} : { engineUser: options.engineUser }),
        ...(options.nftPath === undefined ? {} : { nftPath: options.nftPath }),
        // as many users ready as warm clusters: a create that takes one needs the other
        spareUsers: this.warmPoolSize,
        busy: () => this.creating.busy(),
      });
    this.interval = options.heartbeatIntervalMs ?? 10_000;
    this.checks = new CheckRound({ intervalMs: this.interval, logger: this.logger });
    this.conductor = createRpcClient(options.transport, conductorContract, conductorTopic);
    this.beats = new HeartbeatBatch({ conductor: this.conductor });
  }

  async start(): Promise<void> {
    checkDataDirDepth(resolve(this.options.dataDir), this.instancesDir);
    // the instances found here keep their endpoints: no new one gets theirs
    const found = await this.compute.open(portNeeds);
    // the CA key stays with the agent's own user: never readable by an engine's
    this.ca = await CertificateAuthority.open({
      dir: join(resolve(this.options.dataDir), 'ca'),
      ...(this.options.ca === undefined ? {} : { given: this.options.ca }),
      logger: this.logger,
    });
    await this.discover();
    this.warmPool = new WarmPool({
      dir: join(resolve(this.options.dataDir), 'pool'),
      size: this.warmPoolSize,
      kinds: this.warmKinds(),
      runner: this.compute.hostRunner,
      group: this.compute.warmPoolGroup,
      logger: this.logger,
      busy: () => this.creating.busy(),
    });
    for (const { record } of found) this.pending.set(record.id, record);
    this.subscription = await serveRpc(
      this.options.transport,
      agentContract,
      agentTopic(this.host),
      {
        createServer: (args) => this.locks.run(args.instanceId, () => this.createServer(args)),
        deleteServer: (args) => this.locks.run(args.instanceId, () => this.deleteServer(args.instanceId)),
        upgradeServer: (args) => this.locks.run(args.instanceId, () => this.upgradeServer(args.instanceId, args.version)),
        // those still being re-adopted are this host's as much as the others
        listServers: async () => [...[...this.hosted.values()].map(({ record }) => record), ...this.pending.values()].map((record) => this.info(record)),
      },
      this.logger,
    );
    await this.announce();
    // A thousand instances at ~17 ms each (walls, users, subscriptions) would hold the agent, and
    // the API of `coffer serve`, for 17 s: they are taken up in the background, a few at a time.
    // Requests for one not yet adopted wait in its guest's queue on the bus (or time out).
    const began = performance.now();
    this.adopted = this.adoptAll(found).then(() => {
      if (found.length > 0) this.logger.info({ instances: found.length, ms: Math.round(performance.now() - began) }, 'instances re-adopted');
      // after the instances are back: filling the pools is the least urgent work there is
      if (this.stopped) return;
      void this.compute.prepareAhead();
      this.warmPool?.start();
    });
    this.logger.info({ instances: found.length, engines: this.reports, addresses: this.compute.addressing }, 'agent started; re-adopting its instances');
  }

  adopting(): string[] {
    return [...this.pending.keys()];
  }

  private async adoptAll(found: readonly PlacedInstance[]): Promise<void> {
    const limit = pLimit(this.options.adoptionConcurrency ?? defaultAdoptionConcurrency);
    await Promise.all(
      found.map(({ record }) =>
        limit(() =>
          // one at a time with a create or delete of the same instance
          this.locks.run(record.id, async () => {
            try {
              await this.adopt(record.id);
            } catch (err) {
              this.logger.error({ err, instanceId: record.id }, 'could not re-adopt instance');
            } finally {
              this.pending.delete(record.id);
            }
          }),
        ),
      ),
    );
  }

  private async adopt(instanceId: string): Promise<void> {
    if (this.stopped || this.hosted.has(instanceId)) return;
    await this.options.beforeAdopt?.(instanceId);
    // a delete that came first took the record away; a create that came first hosts it already
    const placed = await this.compute.find(instanceId);
    if (placed === undefined || this.stopped || this.hosted.has(instanceId)) return;
    const hosted = await this.hostInstance(placed);
    await hosted.guest.adopted;
  }

  private warmKinds(): WarmKind[] {
    return [...this.binaries].flatMap(([manager, binaries]) => {
      const warm = engineRegistry[manager].warm;
      if (warm === undefined) return [];
      // the first version found, which a new deployment makes the default: a pool per major
      // (PostgreSQL 15 to 18 on a bare machine) would spend four times the CPU and disk on
      // clusters that few creates take
      const first = binaries[0];
      return first === undefined ? [] : [{ name: warmKindName(manager, first.versionName), binary: first, warm }];
    });
  }

  private async discover(): Promise<void> {
    this.reports = [];
    for (const name of engineNames) {
      const found = await engineRegistry[name].discover(this.options.binaries?.[name] ?? [], this.compute.hostRunner);
      this.binaries.set(name, found.binaries);
      // a tenant's superuser runs programs as the engine's OS user: only one's own keeps it contained
      const reports = this.compute.isolated || !engineRegistry[name].rootReachesOsUser
        ? found.reports
        : found.reports.map((report) => ({ ...report, capabilities: { ...report.capabilities, root: false } }));
      this.reports.push(...reports);
    }
  }

  private async announce(): Promise<void> {
    if (this.stopped) return;
    try {
      const adopting = [...this.pending.keys()];
      await this.conductor.agentHeartbeat({
        host: this.host,
        engines: this.reports,
        contracts: servedContracts,
        ...(adopting.length === 0 ? {} : { adopting }),
      });
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

  /**
   * starts the instance's guest: from then on it serves guest.<id> and supervises the engine.
   * `firstCertificate`: one already being issued for it, which the guest's first issue takes.
   * `created`: placed by this very create, so nothing of it has run or can run before its
   * prepare, which is when its wall must be up (see below).
   */
  private async hostInstance(found: PlacedInstance, firstCertificate?: Promise<TlsMaterial>, created = false): Promise<Hosted> {
    const manager = found.record.engine.manager;
    if (!isEngineName(manager)) throw new CofferError('DatastoreNotFound', `This agent has no engine ${manager}.`);
    const placed = await this.compute.ownIdentity(found, () => this.engineOf(found.record, found.dir).stop());
    const { record, dir } = placed;
    // The wall goes up before anything runs as the instance's user (its initdb too), and is
    // re-asserted at adoption. A new instance's goes up beside the rest of its create (its guest
    // started, the prepare sent, its files written), and its runner starts nothing until it is
    // up, nor ever if it fails: the prepare then fails with why. Any other instance's goes up
    // before its guest starts, since that guest may start the engine at once.
    const walled = created ? this.raiseWall(placed) : undefined;
    walled?.catch(() => undefined); // the runner's to report, at the first program it would start
    // resolves the instance's identity first: one whose user is gone fails here, its engine untouched
    const runner = await this.compute.runnerFor(placed, walled);
    if (walled === undefined) await this.raiseWall(placed);
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
        memoryMb: record.flavor.ramMb,
      },
      engine: { manager, binary },
      runner,
      rootAllowed: record.osUser !== undefined || !engineRegistry[manager].rootReachesOsUser,
      certificates: this.certificatesFor(record.address, firstCertificate),
      ...(this.options.backups === undefined ? {} : { backups: this.options.backups }),
      transport: this.options.transport,
      logger: this.options.logger,
      heartbeatIntervalMs: this.interval,
      checkRound: this.checks,
      heartbeatBatch: this.beats,
      desiredState: record.desiredState,
      saveDesiredState: (state) => this.saveDesiredState(record.id, state),
      saveVolumeSize: (sizeGb) => this.saveVolumeSize(record.id, sizeGb),
      allowReplicationSource: (source) => this.allowReplicationSource(record.id, source),
      defaultClientCidrs: this.compute.defaultClientCidrs,
      warm:
        binary === undefined
          ? undefined
          : this.warmPool?.source(warmKindName(record.engine.manager, binary.versionName), this.compute.handOverFor(placed)),
    });
    const hosted = { record, dir, guest };
    this.hosted.set(record.id, hosted);
    return hosted;
  }

  /** Fails closed: an adopted engine that cannot be walled is stopped, a new one never starts. */
  private raiseWall({ record, dir }: PlacedInstance): Promise<void> {
    return this.wallChanges.run(record.id, () => this.raiseWallNow({ record, dir }));
  }

  private async raiseWallNow({ record, dir }: PlacedInstance): Promise<void> {
    try {
      // its own engine, and a replica's primary (replication streams from it); backup targets join this list when they come
      const source = record.replicationSource;
      await this.compute.wall({ record, dir }, [{ address: record.address, port: record.port }, ...(source === undefined ? [] : [source])]);
    } catch (err) {
      this.logger.error({ err, instanceId: record.id }, 'the network wall could not be put up: the engine is stopped');
      await this.engineOf(record, dir)
        .stop()
        .catch((stopErr: unknown) => this.logger.error({ err: stopErr, instanceId: record.id }, 'could not stop the unwalled engine'));
      throw err;
    }
  }

  private certificatesFor(address: string, first?: Promise<TlsMaterial>): CertificateIssuer {
    return instanceCertificates({ ca: this.ca, address, validityDays: this.options.certificateValidityDays ?? 90, ...(first === undefined ? {} : { first }) });
  }

  /** A driver for stopping the engine of an instance this agent does not host. */
  private engineOf(record: InstanceRecord, dir: string) {
    return engineRegistry[record.engine.manager as EngineName].create({
      placement: { instanceId: record.id, dir, address: record.address, port: record.port },
      binary: undefined,
      runner: this.compute.hostRunner,
      logger: this.logger.child({ instanceId: record.id }),
      defaultClientCidrs: this.compute.defaultClientCidrs,
    });
  }

  private async saveDesiredState(instanceId: string, state: DesiredState): Promise<void> {
    const hosted = this.hosted.get(instanceId);
    if (hosted === undefined) return;
    hosted.record = { ...hosted.record, desiredState: state };
    await this.compute.save(hosted);
  }

  /**
   * A replica's engine streams from its primary: its user may reach that address and port, and
   * nothing else beside its own engine (recorded first, so a restarted agent walls it the same).
   */
  private async allowReplicationSource(instanceId: string, source: { address: string; port: number } | undefined): Promise<void> {
    const hosted = this.hosted.get(instanceId);
    if (hosted === undefined) return;
    const { replicationSource: _previous, ...rest } = hosted.record;
    hosted.record = source === undefined ? rest : { ...rest, replicationSource: source };
    await this.compute.save(hosted);
    await this.raiseWall(hosted);
  }

  /** a resized volume: a restarted agent's guest holds the engine to the new size */
  private async saveVolumeSize(instanceId: string, sizeGb: number): Promise<void> {
    const hosted = this.hosted.get(instanceId);
    if (hosted === undefined) return;
    hosted.record = { ...hosted.record, volumeSizeGb: Math.ceil(sizeGb) };
    await this.compute.save(hosted);
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
    factory.checkInstanceDir(join(this.instancesDir, args.instanceId));
    this.creating.begin(args.instanceId);
    let hosted: Hosted;
    try {
      // a record left by a createServer that failed after writing it is taken up again; one
      // placed only now has run nothing yet (hostInstance)
      const created = (await this.compute.find(args.instanceId)) === undefined;
      const placed = await this.compute.place({
        instanceId: args.instanceId,
        engine: args.engine,
        flavor: args.flavor,
        volumeSizeGb: args.volumeSizeGb,
        ports: portNeeds(args.engine.manager),
      });
      // Signed while the instance is walled and its guest starts, instead of after them at the
      // start of its prepare: the guest's first certificate. Unused if the guest has one already.
      const certificate = this.certificatesFor(placed.record.address).issue();
      certificate.catch(() => undefined); // a failure is the prepare's to report, when it takes it
      hosted = await this.hostInstance(placed, certificate, created);
    } catch (err) {
      this.creating.end(args.instanceId);
      throw err;
    }
    // under way until its guest has prepared the engine (the taskmanager's next call), or it is deleted
    const { guest } = hosted;
    this.creating.begin(args.instanceId, () => guest.lastPrepareMs !== undefined || this.hosted.get(args.instanceId)?.guest !== guest);
    this.logger.info({ instanceId: hosted.record.id, address: hosted.record.address, port: hosted.record.port }, 'server created');
    return this.info(hosted.record);
  }

  private async deleteServer(instanceId: string): Promise<{ deleted: boolean }> {
    if (!isSafeInstanceId(instanceId)) return { deleted: false };
    const hosted = this.hosted.get(instanceId);
    let existed = hosted !== undefined;
    if (hosted !== undefined) {
      await hosted.guest.destroy();
      this.hosted.delete(instanceId);
    } else {
      // not hosted (e.g. its guest failed to start): still make sure its engine is stopped
      const placed = await this.compute.find(instanceId).catch(() => undefined);
      if (placed !== undefined && isEngineName(placed.record.engine.manager)) {
        existed = true;
        await this.engineOf(placed.record, placed.dir).stop();
      }
    }
    await this.options.transport.deleteTopic(guestTopic(instanceId));
    // its user, wall, directory and endpoint; after a wall change still under way, which would
    // otherwise leave a chain behind for a uid the next user may get
    await this.wallChanges.run(instanceId, () => this.compute.remove(instanceId));
    // one found at start and not adopted yet is gone: its adoption finds no record and skips it
    this.pending.delete(instanceId);
    if (existed) this.logger.info({ instanceId }, 'server deleted');
    return { deleted: existed };
  }

  private async upgradeServer(instanceId: string, version: string): Promise<{ method: string }> {
    const hosted = this.hosted.get(instanceId);
    if (hosted === undefined) throw new CofferError('NotFound', `Host ${this.host} does not run instance ${instanceId}.`);
    const { record, dir } = hosted;
    // a call repeated after the taskmanager lost the first answer finds the work done
    if (record.engine.version === version) return { method: 'none' };
    const target = { manager: record.engine.manager, version };
    this.checkEngine(target);
    const manager = record.engine.manager as EngineName;
    const from = this.binaryFor(record.engine);
    const to = this.binaryFor(target)!;
    if (from === undefined) throw new CofferError('DatastoreVersionNotFound', `Host ${this.host} no longer has ${manager} ${record.engine.version}: the instance cannot be upgraded from it.`);
    const log = this.logger.child({ instanceId });
    await hosted.guest.close();
    this.hosted.delete(instanceId);
    let outcome: { method: string } | undefined;
    let failure: unknown;
    try {
      await this.engineOf(record, dir).stop();
      outcome = (await engineRegistry[manager].upgrade?.({
        placement: { instanceId, dir, address: record.address, port: record.port },
        from,
        to,
        installed: this.binaries.get(manager) ?? [],
        runner: await this.compute.runnerFor(hosted),
        logger: log,
      })) ?? { method: 'restart' };
      // the archived log of the old version ends here: the next full backup starts the new one's
      await forgetWalTarget(dir);
      hosted.record = { ...record, engine: target };
      await this.compute.save(hosted);
      log.info({ from: record.engine.version, to: version, method: outcome.method }, 'instance upgraded');
    } catch (err) {
      failure = err;
      log.error({ err, from: record.engine.version, to: version }, 'upgrade failed: the instance stays on its version');
    }
    // on whichever version it now is, its guest takes it up and starts the engine as before
    const rehosted = await this.hostInstance({ record: hosted.record, dir });
    await rehosted.guest.adopted;
    if (outcome === undefined) throw failure;
    return outcome;
  }

  async warmPoolSizes(): Promise<Record<string, number>> {
    return (await this.warmPool?.counts()) ?? {};
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    // first: an initdb in progress is killed at once rather than waited for
    await this.warmPool?.stop();
    await this.subscription?.close();
    // adoptions not begun end at once; those under way finish, so their guests are closed below
    await this.adopted;
    await this.locks.drain();
    await Promise.all([...this.hosted.values()].map(({ guest }) => guest.close()));
    this.hosted.clear();
    await this.compute.close();
    this.logger.info('agent stopped; database processes keep running');
  }
}

/**
 * Starts the agent of this host on its compute driver (the local process driver unless
 * `options.compute` names another): discovers engine versions, re-adopts the instances the
 * driver finds (running ones untouched, stopped ones that should run started), serves
 * `agent.<host>` and announces itself to the conductor.
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
