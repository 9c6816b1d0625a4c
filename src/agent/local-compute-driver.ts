import { chmod, chown, mkdir, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CofferError, sleep } from '../common/index.js';
import type { Logger } from '../common/index.js';
import type { AddressAllocator, Endpoint, PortNeeds } from './address-allocator.js';
import type { ComputeDriver, PlacedInstance, PlacementRequest } from './compute-driver.js';
import { checkEngineUserReaches, ensureEngineUser, lookupUser } from './engine-user.js';
import { createInstanceUser, findInstanceUser, processesOf, removeInstanceUser } from './instance-user.js';
import { isSafeInstanceId, readInstanceRecord, scanInstanceRecords, writeInstanceRecord, type InstanceRecord } from './instance-record.js';
import { LocalProcessRunner, type EngineIdentity } from './local-process-runner.js';
import { NetworkWall } from './network-wall.js';
import { NftSession } from './nft-session.js';
import { chownTree } from './owner-tree.js';
import { SpareUsers } from './spare-users.js';

// The local process driver: instances are directories under <dataDir>/instances, engines are
// detached processes on this host. As root each instance's engine runs as an OS user of its own
// (instance-user.ts), walled off the network but for what it is allowed (network-wall.ts);
// otherwise every engine runs as the agent's user. The instance record in each directory is the
// host's memory: a new driver on the same data directory finds every instance again.

export interface LocalComputeDriverOptions {
  /** instance directories live in <dataDir>/instances/<instanceId> */
  dataDir: string;
  addresses: AddressAllocator;
  logger: Logger;
  /** as root: the unprivileged user of the host's own engine work; default 'coffer-db' */
  engineUser?: string;
  /** the nftables program, default `nft` on the PATH */
  nftPath?: string;
  /** as root: instance users made ahead of time (spare-users.ts); default 0 */
  spareUsers?: number;
  /** true while creates are under way: spare users are made back only once it is false */
  busy?: () => boolean;
}

const termGraceMs = 5_000;
const killRounds = 50;

/** Live pids whose working directory is `dir` or below it. */
async function processesWorkingIn(dir: string): Promise<number[]> {
  const found: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const cwd = await readlink(`/proc/${name}/cwd`).catch(() => undefined);
    if (cwd === undefined || (cwd !== dir && !cwd.startsWith(`${dir}/`))) continue;
    const status = await readFile(`/proc/${name}/status`, 'utf8').catch(() => '');
    if (status !== '' && !/^State:\s+Z/m.test(status)) found.push(Number(name));
  }
  return found;
}

function signal(pids: readonly number[], name: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, name);
    } catch {
      // already gone
    }
  }
}

export class LocalComputeDriver implements ComputeDriver {
  /** as root, each instance's engine runs as an OS user of its own */
  readonly isolated = process.getuid?.() === 0;
  readonly agentRunner = new LocalProcessRunner(undefined);
  hostRunner = new LocalProcessRunner(undefined);
  private readonly instancesDir: string;
  private readonly logger: Logger;
  private wallOf: NetworkWall | undefined;
  private nftSession: NftSession | undefined;
  private spares: SpareUsers | undefined;
  private reachable = false;
  /**
   * instance users by name, looked up once (each lookup runs getent): hosting an instance needs
   * its user for the runner and again for the wall. A name leaves with its user in `remove`.
   */
  private readonly identities = new Map<string, EngineIdentity>();
  /**
   * uids of spare users walled with nothing allowed when they were made (spare-users.ts), given
   * to a new instance, and not walled for it yet: its wall is an `extend` of that one. A uid
   * leaves at its first wall change, or with its user.
   */
  private readonly walledAhead = new Set<number>();

  constructor(private readonly options: LocalComputeDriverOptions) {
    this.instancesDir = join(resolve(options.dataDir), 'instances');
    this.logger = options.logger;
  }

  get addressing(): string {
    return this.options.addresses.description;
  }

  get defaultClientCidrs(): readonly string[] {
    return this.options.addresses.defaultClientCidrs;
  }

  get warmPoolGroup(): number | undefined {
    return this.hostRunner.identity?.gid;
  }

  async open(ports: (manager: string) => PortNeeds): Promise<PlacedInstance[]> {
    // engine users traverse it to their own directory; listing it would show them the others
    await mkdir(this.instancesDir, { recursive: true, mode: 0o711 });
    await chmod(this.instancesDir, 0o711);
    const identity = this.isolated ? await ensureEngineUser(this.options.engineUser ?? 'coffer-db', this.logger) : undefined;
    this.hostRunner = new LocalProcessRunner(identity);
    if (identity !== undefined) {
      this.nftSession = new NftSession(this.options.nftPath);
      this.wallOf = new NetworkWall(this.agentRunner, this.options.nftPath, this.nftSession);
      await this.wallHostUser(identity);
      const wall = this.wallOf;
      this.spares = new SpareUsers({
        file: join(resolve(this.options.dataDir), 'spare-users.json'),
        size: this.options.spareUsers ?? 0,
        logger: this.logger,
        ...(this.options.busy === undefined ? {} : { busy: this.options.busy }),
        wall: (spare) => wall.raise(spare.uid, []),
      });
      await this.spares.open();
    }
    const found: PlacedInstance[] = [];
    for (const entry of await scanInstanceRecords(this.instancesDir, this.logger)) {
      try {
        // before anything is placed: a new instance never gets an endpoint one found here has
        this.options.addresses.reserve(entry.record.id, { address: entry.record.address, port: entry.record.port }, ports(entry.record.engine.manager));
        found.push(entry);
      } catch (err) {
        this.logger.error({ err, instanceId: entry.record.id }, 'could not re-adopt instance');
      }
    }
    return found;
  }

  async prepareAhead(): Promise<void> {
    await this.spares?.fill();
  }

  async close(): Promise<void> {
    await this.spares?.stop();
    this.nftSession?.close();
  }

  /**
   * a user of its own for a new instance: a spare one when one is ready. Remembered as looked
   * up just now: hosting the instance next needs it for the runner and the wall, and another
   * getent would only add its process start to the create.
   */
  private async newInstanceUser(instanceId: string): Promise<EngineIdentity> {
    const { identity, walled } = await (this.spares?.take(instanceId) ?? createInstanceUser(instanceId, this.logger).then((made) => ({ identity: made, walled: false })));
    this.identities.set(identity.name, identity);
    if (walled) this.walledAhead.add(identity.uid);
    return identity;
  }

  /**
   * The host's engine user runs no tenant's code (discovery and the warm pool's initdb, whose
   * clusters no tenant reaches) and needs no network at all: walled with nothing allowed, as a
   * second line should that ever change. Without nftables it only warns: each instance's own
   * wall is what fails closed.
   */
  private async wallHostUser(identity: EngineIdentity): Promise<void> {
    try {
      await this.wallOf!.raise(identity.uid, []);
    } catch (err) {
      this.logger.error({ err, engineUser: identity.name }, 'the host engine user is not walled off the network; creates will fail');
    }
  }

  private dirOf(instanceId: string): string {
    if (!isSafeInstanceId(instanceId)) throw new CofferError('BadRequest', `Invalid instance id "${instanceId}".`);
    return join(this.instancesDir, instanceId);
  }

  async place(request: PlacementRequest): Promise<PlacedInstance> {
    const dir = this.dirOf(request.instanceId);
    if (!this.reachable) {
      await checkEngineUserReaches(this.instancesDir, this.hostRunner);
      this.reachable = true;
    }
    // a record left by a create that failed after writing it is taken up again
    const existing = await readInstanceRecord(dir);
    if (existing !== undefined) {
      this.options.addresses.reserve(existing.id, { address: existing.address, port: existing.port }, request.ports);
      return { record: existing, dir };
    }
    const endpoint = await this.options.addresses.allocate(request.instanceId, request.ports);
    let identity: EngineIdentity | undefined;
    try {
      // the host's own directory: the engine's user may traverse it, not list or change it;
      // the engine gets the data directory inside (see the engine's layout)
      await mkdir(dir);
      if (this.isolated) identity = await this.newInstanceUser(request.instanceId);
      await this.lockInstanceDir(dir, identity);
      const record: InstanceRecord = {
        id: request.instanceId,
        engine: request.engine,
        address: endpoint.address,
        port: endpoint.port,
        flavor: request.flavor,
        volumeSizeGb: request.volumeSizeGb,
        desiredState: 'running',
        createdAt: new Date().toISOString(),
        ...(identity === undefined ? {} : { osUser: identity.name }),
      };
      await writeInstanceRecord(dir, record);
      return { record, dir };
    } catch (err) {
      if (identity !== undefined) {
        // newInstanceUser remembered it: the user goes, so does its entry
        this.identities.delete(identity.name);
        await removeInstanceUser(identity.name, this.logger);
      }
      this.options.addresses.release(request.instanceId);
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  async find(instanceId: string): Promise<PlacedInstance | undefined> {
    if (!isSafeInstanceId(instanceId)) return undefined;
    const dir = this.dirOf(instanceId);
    const record = await readInstanceRecord(dir);
    return record === undefined ? undefined : { record, dir };
  }

  async save(instance: PlacedInstance): Promise<void> {
    await writeInstanceRecord(instance.dir, instance.record);
  }

  /**
   * The instance directory is the host's; only the engine's user may traverse it (its group),
   * so no instance's user even learns the names of another's files.
   */
  private async lockInstanceDir(dir: string, identity: EngineIdentity | undefined): Promise<void> {
    if (identity === undefined) {
      await chmod(dir, this.isolated ? 0o711 : 0o700);
      return;
    }
    await chown(dir, process.getuid!(), identity.gid);
    await chmod(dir, 0o710);
  }

  /**
   * An instance created before engines had users of their own (all ran as the host's user):
   * its engine is stopped, it gets its own user and its files, and the guest starts it again.
   */
  async ownIdentity(instance: PlacedInstance, stopEngine: () => Promise<void>): Promise<PlacedInstance> {
    if (!this.isolated || instance.record.osUser !== undefined) return instance;
    const hostUser = this.hostRunner.identity!;
    this.logger.warn({ instanceId: instance.record.id }, `moving the instance's engine from ${hostUser.name} to a user of its own`);
    await stopEngine();
    const identity = await this.newInstanceUser(instance.record.id);
    await chownTree(instance.dir, hostUser.uid, identity);
    await this.lockInstanceDir(instance.dir, identity);
    const updated = { ...instance, record: { ...instance.record, osUser: identity.name } };
    await this.save(updated);
    return updated;
  }

  private async identityOf(instance: PlacedInstance): Promise<EngineIdentity | undefined> {
    const name = instance.record.osUser;
    if (name === undefined) return undefined;
    const known = this.identities.get(name);
    if (known !== undefined) return known;
    const identity = await findInstanceUser(name);
    this.identities.set(name, identity);
    return identity;
  }

  async runnerFor(instance: PlacedInstance, walled?: Promise<void>): Promise<LocalProcessRunner> {
    const identity = await this.identityOf(instance);
    return identity === undefined ? this.hostRunner : new LocalProcessRunner(identity, walled);
  }

  /** A warm cluster the host's user made becomes the instance user's before its engine starts. */
  handOverFor(instance: PlacedInstance): ((path: string) => Promise<void>) | undefined {
    const poolUser = this.hostRunner.identity;
    const osUser = instance.record.osUser;
    if (osUser === undefined || poolUser === undefined) return undefined;
    return async (path) => {
      const began = performance.now();
      await chownTree(path, poolUser.uid, (await this.identityOf(instance))!);
      const ms = Math.round((performance.now() - began) * 10) / 10;
      this.logger.debug({ instanceId: instance.record.id, ms }, 'warm cluster handed to the instance user');
    };
  }

  async wall(instance: PlacedInstance, allowed: readonly Endpoint[]): Promise<void> {
    if (this.wallOf === undefined) return;
    const identity = await this.identityOf(instance);
    if (identity === undefined) return;
    // a spare's wall of nothing, unchanged since: only the instance's endpoint is added (a few
    // ms on a create's path, where a whole raise commits for 10 to 25)
    if (this.walledAhead.delete(identity.uid)) {
      try {
        await this.wallOf.extend(identity.uid, allowed);
        return;
      } catch (err) {
        this.logger.warn({ err, instanceId: instance.record.id }, "the instance user's wall made ahead is gone: raising it whole");
      }
    }
    await this.wallOf.raise(identity.uid, allowed);
  }

  async processes(instance: PlacedInstance): Promise<number[]> {
    // as root the uid is the instance's alone, and finds what its engine started anywhere;
    // otherwise what works in its directory (engines chdir into their data directory)
    const identity = await this.identityOf(instance).catch(() => undefined);
    const found = new Set(await processesWorkingIn(resolve(instance.dir)));
    if (identity !== undefined) for (const pid of await processesOf(identity.uid)) found.add(pid);
    return [...found].sort((a, b) => a - b);
  }

  async stopProcesses(instance: PlacedInstance): Promise<void> {
    let pids = await this.processes(instance);
    if (pids.length === 0) return;
    signal(pids, 'SIGTERM');
    const deadline = Date.now() + termGraceMs;
    while (pids.length > 0 && Date.now() < deadline) {
      await sleep(25);
      pids = await this.processes(instance);
    }
    // what ignores SIGTERM, or forks while the others end
    for (let round = 0; pids.length > 0; round++) {
      if (round >= killRounds) throw new CofferError('Internal', `Processes ${pids.join(', ')} of instance ${instance.record.id} keep running after SIGKILL.`);
      signal(pids, 'SIGKILL');
      await sleep(20);
      pids = await this.processes(instance);
    }
  }

  async remove(instanceId: string): Promise<void> {
    if (!isSafeInstanceId(instanceId)) return;
    const dir = this.dirOf(instanceId);
    const record = await readInstanceRecord(dir).catch(() => undefined);
    const logger = this.logger.child({ instanceId });
    if (record !== undefined) {
      // its engine is stopped by now; what a tenant left running in its directory goes too
      if (record.osUser === undefined) await this.stopProcesses({ record, dir });
      else {
        // before the directory and its record go: a remove that fails here is retried knowing the user
        const identity = await lookupUser(record.osUser).catch(() => undefined);
        this.identities.delete(record.osUser);
        if (identity !== undefined) this.walledAhead.delete(identity.uid);
        await removeInstanceUser(record.osUser, logger);
        // once nothing runs as it; a wall left behind only walls a uid whose next user gets its own allowed list
        if (identity !== undefined) {
          await this.wallOf?.remove(identity.uid).catch((err: unknown) => logger.warn({ err }, 'could not take the instance user out of the wall'));
        }
      }
    }
    await rm(dir, { recursive: true, force: true });
    this.options.addresses.release(instanceId);
  }
}
