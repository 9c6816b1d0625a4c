import { randomBytes } from 'node:crypto';
import { statfsSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../common/index.js';
import type { EngineBinary, ProcessRunner, WarmSource, WarmStart } from '../guest/index.js';

// `<dataDir>/pool/<engine>-<version>/<id>/`: clusters initialised ahead of time, each by its
// own run of the engine's tool (never copies of one), so that a create skips its slowest step.
// An entry is built under a dot-name and renamed to its id once complete: a name without a dot
// is the only mark of a complete entry, so a half-made one (agent killed mid-initdb) is never
// handed out, and the next start removes it. Taking is a rename too: of two concurrent takers
// of one entry, exactly one gets it. Entries are built one at a time, at low CPU priority, and
// none begins while creates are under way (`busy`): a burst that drained the pool gets the
// host's disk and cores for its own initdbs, the pool fills back behind it.

/** One engine version the pool keeps clusters for. */
export interface WarmKind {
  /** the directory name under the pool, e.g. `postgresql-15` */
  name: string;
  binary: EngineBinary;
  warm: WarmStart;
}

/** Gives a taken entry, now at `path`, to its taker. */
export type HandOver = (path: string) => Promise<void>;

export interface WarmPoolOptions {
  /** `<dataDir>/pool` */
  dir: string;
  /** complete entries kept per kind; 0 keeps none (and removes those left from before) */
  size: number;
  kinds: readonly WarmKind[];
  runner: ProcessRunner;
  /** the gid of the runner's user, when it is not the host's own: it alone may traverse the pool */
  group?: number;
  logger: Logger;
  /** after a failed build the kind rests this long before the next try */
  retryMs?: number;
  /** true while creates are under way: no build begins then (one under way finishes) */
  busy?: () => boolean;
  /** how often a pool held back by `busy` asks again; default 250 ms */
  busyPollMs?: number;
}

/** What {@link defaultWarmPoolSize} sizes the pool from. */
export interface HostSize {
  cores: number;
  memoryBytes: number;
  /** free space on the filesystem of the agent's data directory, where the pool lives; unknown: not a bound */
  diskFreeBytes?: number;
}

/** The burst of creates at once a host's pool serves whole when memory and disk allow. */
export const burstCreates = 10;

/**
 * The pool size when none is given: a burst of {@link burstCreates} creates at once, or four
 * entries per core where that is more, but at most one per GiB of memory and one per GiB of free
 * disk, from 2 to 16. A create past the pool's entries runs its engine's install (about a
 * core-second each) beside the burst's engine starts, and is the burst's tail (MariaDB: 3.7 s
 * for a warm create in a burst of ten on 2 cores, 5.1 s for one past the pool): a pool of the
 * burst's size takes that tail off on any host, and a host with more cores fills back, and
 * takes, more. The engines a burst starts all stay in memory, so a host with little memory
 * cannot hold a big burst anyway. Each entry costs disk only while it waits (PostgreSQL 15 ≈ 40
 * MB, MariaDB 10.11 ≈ 50 MB, per engine kind: a pool of 10 ≈ 0.9 GB for both) and nothing of
 * memory: one per GiB free keeps the pool under a tenth of the free disk with two kinds.
 */
export function defaultWarmPoolSize(host: HostSize = thisHost()): number {
  const wanted = Math.max(burstCreates, 4 * Math.max(1, Math.floor(host.cores)));
  const byMemory = Math.floor(host.memoryBytes / 2 ** 30);
  const byDisk = host.diskFreeBytes === undefined ? Infinity : Math.floor(host.diskFreeBytes / 2 ** 30);
  return Math.min(16, Math.max(2, Math.min(wanted, byMemory, byDisk)));
}

/** This host's cores and memory, and the free disk where `dataDir` is (when given). */
export function thisHost(dataDir?: string): HostSize {
  const free = dataDir === undefined ? undefined : diskFreeBytes(dataDir);
  return { cores: availableParallelism(), memoryBytes: totalmem(), ...(free === undefined ? {} : { diskFreeBytes: free }) };
}

/** Free space on the filesystem holding `path` (its nearest existing parent); undefined when it cannot be read. */
export function diskFreeBytes(path: string): number | undefined {
  for (let dir = resolve(path); ; dir = dirname(dir)) {
    try {
      const stats = statfsSync(dir);
      return stats.bavail * stats.bsize;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(dir) === dir) return undefined;
    }
  }
}

const buildingPrefix = '.building-';
const discardPrefix = '.discard-';
const isComplete = (name: string) => /^[0-9a-f]{16}$/.test(name);
const newId = () => randomBytes(8).toString('hex');

/** The host's directories: the pool's user may traverse them (by `group`), no instance's user. */
async function hostDirectory(path: string, mayExist: boolean, group: number | undefined): Promise<void> {
  try {
    await mkdir(path, { mode: 0o700 });
  } catch (err) {
    if (!mayExist || (err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  if (group !== undefined) await chown(path, process.getuid!(), group);
  // mkdir's mode passes through the umask
  await chmod(path, group === undefined ? 0o700 : 0o710);
}

export class WarmPool {
  private readonly logger: Logger;
  private readonly abort = new AbortController();
  /** kinds resting after a failed build, each until its timer fires */
  private readonly resting = new Map<string, NodeJS.Timeout>();
  private readonly retryMs: number;
  private readonly busyPollMs: number;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly options: WarmPoolOptions) {
    this.logger = options.logger.child({ component: 'warm-pool' });
    this.retryMs = options.retryMs ?? 60_000;
    this.busyPollMs = options.busyPollMs ?? 250;
  }

  /** Removes what an earlier run left unfinished or in excess, then fills the pool, in the background. */
  start(): void {
    this.running = this.cleanUp()
      .catch((err) => this.logger.error({ err }, 'warm pool clean-up failed'))
      .then(() => this.fill())
      .finally(() => this.settled());
  }

  /** `handOver`: see {@link take} */
  source(kind: string, handOver?: HandOver): WarmSource | undefined {
    if (this.options.size === 0 || !this.options.kinds.some((k) => k.name === kind)) return undefined;
    return { take: (dest) => this.take(kind, dest, handOver) };
  }

  /**
   * Moves a complete entry of `kind` to `dest`; false when there is none. Refills behind it.
   * `handOver` then gives the entry to the taker (e.g. to the OS user of the instance that
   * takes it) before this resolves; when it fails, the entry is removed and this resolves false.
   */
  async take(kind: string, dest: string, handOver?: HandOver): Promise<boolean> {
    const dir = join(this.options.dir, kind);
    try {
      for (const name of (await readdir(dir).catch(() => [] as string[])).filter(isComplete)) {
        try {
          await rename(join(dir, name), dest);
        } catch (err) {
          // another taker was first
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
          // e.g. EXDEV: the instances live on another filesystem than the pool
          this.logger.warn({ err, kind }, 'could not take a warm cluster');
          return false;
        }
        return await this.handOver(kind, dest, handOver);
      }
      return false;
    } finally {
      this.kick();
    }
  }

  private async handOver(kind: string, dest: string, handOver: HandOver | undefined): Promise<boolean> {
    if (handOver === undefined) return true;
    try {
      await handOver(dest);
      return true;
    } catch (err) {
      this.logger.error({ err, kind }, 'could not hand a warm cluster over: initialising one instead');
      await this.discard(this.options.kinds.find((k) => k.name === kind), dest);
      return false;
    }
  }

  /** Complete entries of `kind` now. */
  async count(kind: string): Promise<number> {
    return (await readdir(join(this.options.dir, kind)).catch(() => [] as string[])).filter(isComplete).length;
  }

  /** Complete entries of every kind now, by kind name. */
  async counts(): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const kind of this.options.kinds) counts[kind.name] = await this.count(kind.name);
    return counts;
  }

  /** Stops filling: a build in progress is killed and its entry removed. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.resting.values()) clearTimeout(timer);
    this.abort.abort();
    await this.running;
  }

  private kick(): void {
    if (this.stopped || this.options.size === 0) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.running = this.fill().finally(() => this.settled());
  }

  private settled(): void {
    this.running = undefined;
    if (this.again) {
      this.again = false;
      this.kick();
    }
  }

  private async fill(): Promise<void> {
    while (!this.stopped) {
      this.again = false;
      const kind = await this.nextShort();
      if (kind === undefined) return;
      if (await this.yieldToCreates()) continue;
      await this.build(kind);
    }
  }

  /** Waits while creates are under way; true when it waited (what is short may have changed meanwhile). */
  private async yieldToCreates(): Promise<boolean> {
    if (this.options.busy?.() !== true) return false;
    const began = performance.now();
    while (!this.stopped && this.options.busy()) {
      await sleep(this.busyPollMs, undefined, { signal: this.abort.signal }).catch(() => undefined);
    }
    this.logger.debug({ ms: Math.round(performance.now() - began) }, 'warm pool waited for creates to finish');
    return true;
  }

  private async nextShort(): Promise<WarmKind | undefined> {
    for (const kind of this.options.kinds) {
      if (this.resting.has(kind.name)) continue;
      if ((await this.count(kind.name)) < this.options.size) return kind;
    }
    return undefined;
  }

  private async build(kind: WarmKind): Promise<void> {
    const dir = join(this.options.dir, kind.name);
    const id = newId();
    const building = join(dir, `${buildingPrefix}${id}`);
    const began = performance.now();
    try {
      for (const path of [this.options.dir, dir]) await hostDirectory(path, true, this.options.group);
      await hostDirectory(building, false, this.options.group);
      // a stop that came while the directories were made: `make` would only see a signal that already fired
      this.abort.signal.throwIfAborted();
      await kind.warm.make(building, kind.binary, this.options.runner, this.abort.signal);
      await rename(building, join(dir, id));
      this.logger.debug({ kind: kind.name, ms: Math.round(performance.now() - began) }, 'warm cluster ready');
    } catch (err) {
      await this.discard(kind, building);
      if (this.stopped) return;
      this.logger.error({ err, kind: kind.name }, `could not make a warm cluster: retrying in ${this.retryMs / 1000} s`);
      // The timer alone ends the rest: comparing clocks instead could find the rest not yet over
      // when the timer fires (timers and Date.now() disagree by a millisecond), and nothing would
      // ever kick the pool again.
      const timer = setTimeout(() => {
        this.resting.delete(kind.name);
        this.kick();
      }, this.retryMs);
      timer.unref();
      this.resting.set(kind.name, timer);
    }
  }

  private async discard(kind: WarmKind | undefined, path: string): Promise<void> {
    try {
      await kind?.warm.discard(path);
      await rm(path, { recursive: true, force: true });
    } catch (err) {
      this.logger.warn({ err, path }, 'could not remove a warm pool entry');
    }
  }

  /** Removes `path` after claiming it by a rename, as a take would: removed in place, it could be taken half-removed. */
  private async claimAndDiscard(kind: WarmKind | undefined, parent: string, path: string): Promise<void> {
    const claimed = join(parent, `${discardPrefix}${newId()}`);
    if (await rename(path, claimed).then(() => true, () => false)) await this.discard(kind, claimed);
  }

  /** Half-made entries go, and so do kinds this host no longer runs and complete entries over the size. */
  private async cleanUp(): Promise<void> {
    const root = this.options.dir;
    for (const name of await readdir(root).catch(() => [] as string[])) {
      const dir = join(root, name);
      const kind = this.options.kinds.find((k) => k.name === name);
      if (name.startsWith(discardPrefix)) await this.discard(undefined, dir);
      else if (kind === undefined) await this.claimAndDiscard(undefined, root, dir);
      else await this.trim(kind, dir);
    }
  }

  private async trim(kind: WarmKind, dir: string): Promise<void> {
    let kept = 0;
    for (const entry of (await readdir(dir).catch(() => [] as string[])).sort()) {
      const path = join(dir, entry);
      if (!isComplete(entry)) {
        this.logger.info({ kind: kind.name, entry }, 'removing a half-made warm cluster');
        await this.discard(kind, path);
      } else if (kept < this.options.size) {
        kept += 1;
      } else {
        await this.claimAndDiscard(kind, dir, path);
      }
    }
  }
}
