import { chmod, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { backupKeyId, decodeBackup, encodeBackup, unwrapKey } from '../backup/index.js';
import type { conductorContract, PrepareInput, RpcClient } from '../bus/index.js';
import type { Logger } from '../common/index.js';
import type { GuestBackupHost } from './backup-runner.js';
import type { RoundOfChecks } from './check-round.js';
import type { ArchivedLogFile, PointInTimeSource, WalArchive } from './engines/engine.js';

// The guest's side of continuous log archiving: the engine copies each finished log file into
// its spool (WalArchive), and the shipper stores each one (compressed and sealed with the
// project's key, as backups are) under the instance's archive prefix, then removes it from the
// spool. The storage's credentials and the keys stay in the guest's process.
//
// The log goes somewhere only once a full backup asked for it (the backup's `walArchive`), since
// a log without a backup to replay it onto restores nothing; until then each file is discarded
// as it arrives, so the spool never grows. Where it goes is the host's own file in the instance
// directory, so a restarted agent ships on to the same place.

const targetFile = 'wal-archive.json';
const reachCheckMs = 15_000;

const walTarget = z.object({ projectId: z.string(), container: z.string(), prefix: z.string(), wrappedKey: z.string() });
export type WalTarget = z.infer<typeof walTarget>;

export async function readWalTarget(dir: string): Promise<WalTarget | undefined> {
  const text = await readFile(join(dir, targetFile), 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  return text === undefined ? undefined : walTarget.parse(JSON.parse(text));
}

/** Written aside and renamed over; the host's alone (the wrapped key opens nothing without the master key, but it is nobody else's). */
export async function writeWalTarget(dir: string, target: WalTarget): Promise<void> {
  const temporary = join(dir, `.${targetFile}.tmp`);
  await writeFile(temporary, `${JSON.stringify(walTarget.parse(target))}\n`, { mode: 0o600 });
  await chmod(temporary, 0o600);
  await rename(temporary, join(dir, targetFile));
}

/** The log of the engine now in `dir` goes nowhere until a full backup names a place for it (after an upgrade: another cluster's log). */
export async function forgetWalTarget(dir: string): Promise<void> {
  await rm(join(dir, targetFile), { force: true });
}

export interface WalShipperOptions {
  archive: WalArchive;
  host: GuestBackupHost;
  /** the instance directory, where the target is kept */
  dir: string;
  instanceId: string;
  conductor: RpcClient<typeof conductorContract>;
  log: Logger;
  intervalMs: number;
  /**
   * The host's round of checks, whose interval is `intervalMs`: the shipper's rounds then start in
   * its turns instead of on a timer of the shipper's own (at a thousand instances, a thousand
   * timers waking the agent at moments nothing arranged, nearly always to find nothing to ship).
   * Absent: a timer of its own.
   */
  round?: RoundOfChecks;
}

export class WalShipper {
  private timer: NodeJS.Timeout | undefined;
  private leaveRound: (() => void) | undefined;
  /** a round started from the host's round is still under way: the next turn starts none */
  private shipping = false;
  private readonly abort = new AbortController();
  private running: Promise<void> = Promise.resolve();
  private target: WalTarget | undefined;
  private targetLoaded = false;
  private lastShipped: string | undefined;
  private reported = 0;
  private checkedAt = 0;
  private stopped = false;

  constructor(private readonly options: WalShipperOptions) {}

  start(): void {
    const round = this.options.round;
    if (round !== undefined) {
      // the turn only starts the round: a shipment (an upload, pg_waldump) must not hold one of
      // the host's check places, and a round still under way is not doubled
      this.leaveRound = round.join(async () => {
        if (this.shipping || this.stopped) return;
        this.shipping = true;
        const run = this.running.then(() => this.ship());
        this.running = run.finally(() => {
          this.shipping = false;
        });
      });
      return;
    }
    const loop = () => {
      this.timer = setTimeout(() => {
        this.running = this.ship().finally(() => {
          if (!this.stopped) loop();
        });
      }, this.options.intervalMs);
    };
    loop();
  }

  /** From now on the log goes to `target`; the files waiting in the spool already go there. */
  async setTarget(target: WalTarget): Promise<void> {
    await writeWalTarget(this.options.dir, target);
    this.target = target;
    this.targetLoaded = true;
  }

  /** Ships whatever waits in the spool now (after any round already running). */
  async flush(): Promise<void> {
    await this.running;
    this.running = this.ship();
    await this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.leaveRound?.();
    this.abort.abort();
    await this.running;
  }

  private async ship(): Promise<void> {
    const { archive, log } = this.options;
    try {
      if (!this.targetLoaded) {
        this.target = await readWalTarget(this.options.dir);
        this.targetLoaded = true;
      }
      let shipped = false;
      for (const name of await archive.pending()) {
        if (this.abort.signal.aborted) return;
        const target = this.target;
        if (target === undefined) {
          await archive.remove(name);
          continue;
        }
        await this.store(target, name);
        await archive.remove(name);
        log.debug({ file: name }, 'archived log file shipped');
        if (archive.advances(name)) {
          this.lastShipped = name;
          shipped = true;
        }
      }
      await this.report(shipped);
    } catch (err) {
      // the files stay in the spool and go with the next round
      if (!this.abort.signal.aborted) log.warn({ err }, 'archived log not shipped; retrying');
    }
  }

  private async store(target: WalTarget, name: string): Promise<void> {
    const { archive, host } = this.options;
    const facts = await archive.inspect(name);
    const key = unwrapKey(host.masterKey, target.wrappedKey, target.projectId);
    const signal = this.abort.signal;
    const body = encodeBackup(archive.read(name, signal), { compression: 'zstd', key, keyId: backupKeyId(key), signal });
    await host.storage.put(target.container, `${target.prefix}/${name}`, body, { metadata: facts, signal });
  }

  /**
   * How far the archive reaches, told to the conductor when it moved: at once after a file was
   * shipped, else at most every `reachCheckMs` (a check reads the WAL written since).
   */
  private async report(shipped: boolean): Promise<void> {
    if (this.target === undefined || this.lastShipped === undefined) return;
    if (!shipped && Date.now() - this.checkedAt < reachCheckMs) return;
    this.checkedAt = Date.now();
    const through = await this.options.archive.archivedThrough(this.lastShipped);
    this.options.log.debug({ lastShipped: this.lastShipped, through }, 'archive reach');
    if (through === undefined || through.getTime() <= this.reported) return;
    await this.options.conductor.walArchived(
      { instanceId: this.options.instanceId, through: through.toISOString() },
      { requestId: `req-wal-${this.options.instanceId}`, instanceId: this.options.instanceId },
    );
    this.reported = through.getTime();
  }
}

/** Where a point-in-time restore reads the source's archived log: listed and read from the storage, each file's checksum checked as it streams. */
export function pointInTimeSource(
  host: GuestBackupHost,
  projectId: string,
  pointInTime: NonNullable<NonNullable<PrepareInput['restore']>['pointInTime']>,
  signal: AbortSignal,
): PointInTimeSource {
  const { container, prefix, wrappedKey } = pointInTime;
  let listed: Map<string, { sha256: string; facts: Record<string, string> }> | undefined;
  const list = async () => {
    const objects = await host.storage.list(container, `${prefix}/`);
    listed = new Map(objects.map((o) => [o.name.slice(prefix.length + 1), { sha256: o.sha256, facts: o.metadata }]));
    return listed;
  };
  return {
    ...(pointInTime.time === undefined ? {} : { target: new Date(pointInTime.time) }),
    list: async (): Promise<ArchivedLogFile[]> => [...(await list())].map(([name, { facts }]) => ({ name, facts })),
    open: async (name: string): Promise<Readable> => {
      const entry = (listed ?? (await list())).get(name);
      const key = unwrapKey(host.masterKey, wrappedKey, projectId);
      const stored = await host.storage.get(container, `${prefix}/${name}`, { signal, ...(entry === undefined ? {} : { expectedSha256: entry.sha256 }) });
      return decodeBackup(stored, { key, signal });
    },
  };
}
