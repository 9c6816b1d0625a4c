import { chmod, open, readFile, rename, writeFile, type FileHandle } from 'node:fs/promises';
import { constants, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { z } from 'zod';
import type { BackupStorage } from '../backup/index.js';
import type { GuestLogActionInput, GuestLogState } from '../bus/index.js';
import { CofferError } from '../common/index.js';
import type { Logger } from '../common/index.js';
import type { LogControl } from './engines/engine.js';

// Trove's guest logs: the engine's log files, listed with their state, turned on and off (the
// tenant's USER logs, through the engine's LogControl) and published: what a file gained since
// the last publish is stored in the deployment's backup storage under
// `<instance id>/<manager>-<log>/`, in objects of at most `objectBytes`, numbered in order.
//
// The files live in the instance directory, where the engine's user (the tenant, who may run
// programs as it) can put anything: they are opened without following a link, without blocking
// on a FIFO, and refused unless a regular file with one name, so the host never reads or
// truncates anything but the engine's own log. Each file is held under `limitBytes`: one that
// grew past it is truncated (the engine appends, so it writes on at the new end), and what was
// not published by then is lost, as the status Rotated says until the next publish.

const stateFile = 'guest-logs.json';
/** Trove's guest_log_limit: bytes per stored object */
const objectBytes = 1_000_000;
export const defaultLogLimitBytes = 50 * 1024 * 1024;

const logRecord = z.object({
  /** the file's position published up to */
  offset: z.number().int().nonnegative(),
  /** bytes stored since the last discard */
  published: z.number().int().nonnegative(),
  /** the number the next object gets */
  next: z.number().int().nonnegative(),
  /** truncated with bytes not published since the last publish */
  rotated: z.boolean(),
});
type LogRecord = z.infer<typeof logRecord>;
const logRecords = z.record(z.string(), logRecord);

const emptyRecord: LogRecord = { offset: 0, published: 0, next: 0, rotated: false };

export interface GuestLogsOptions {
  dir: string;
  instanceId: string;
  manager: string;
  /** the engine's log files by name (EngineLifecycle.logFiles) */
  files: () => Record<string, string>;
  /** absent: every log is SYS */
  control: LogControl | undefined;
  /** absent: nothing is published (NotImplemented) */
  storage: BackupStorage | undefined;
  logger: Logger;
  limitBytes?: number;
}

/** The object prefix of one log, as Trove names it. */
export function guestLogPrefix(instanceId: string, manager: string, name: string): string {
  return `${instanceId}/${manager}-${name}/`;
}

export class GuestLogs {
  private readonly limitBytes: number;

  constructor(private readonly options: GuestLogsOptions) {
    this.limitBytes = options.limitBytes ?? defaultLogLimitBytes;
  }

  async list(): Promise<GuestLogState[]> {
    const records = await this.readRecords();
    const enabled = (await this.options.control?.enabled()) ?? new Set<string>();
    const states: GuestLogState[] = [];
    for (const name of Object.keys(this.options.files()).sort()) {
      states.push(await this.state(name, records[name] ?? emptyRecord, enabled.has(name)));
    }
    return states;
  }

  async act(input: GuestLogActionInput, log: Logger): Promise<GuestLogState> {
    const { name } = input;
    const path = this.options.files()[name];
    if (path === undefined) throw new CofferError('BadRequest', `No log ${name} on this instance; its logs are ${Object.keys(this.options.files()).sort().join(', ')}.`);
    if (input.enable === true && input.disable === true) throw new CofferError('BadRequest', 'A log cannot be enabled and disabled at once.');
    const user = this.options.control?.userLogs.includes(name) === true;
    // publish turns a tenant's log on, as in Trove, unless the same request turns it off
    const enable = input.enable === true || (input.publish === true && input.disable !== true && user);
    if ((input.enable === true || input.disable === true) && !user) {
      throw new CofferError('BadRequest', `Log ${name} is a SYS log: it is always written and cannot be turned on or off.`);
    }
    if ((input.publish === true || input.discard === true) && this.options.storage === undefined) {
      throw new CofferError('NotImplemented', 'Logs are not available: this deployment has no backup storage to publish them to.');
    }
    const control = this.options.control;
    if (control !== undefined && user && (enable || input.disable === true)) {
      const on = enable;
      if ((await control.enabled()).has(name) !== on) {
        log.info({ log: name, on }, 'turning a log on or off');
        await control.setEnabled(name, on);
      }
    }
    if (input.discard === true) await this.discard(name, input.container);
    if (input.publish === true) await this.publish(name, path, input.container, log);
    const record = (await this.readRecords())[name] ?? emptyRecord;
    return this.state(name, record, (await control?.enabled())?.has(name) === true);
  }

  /** Truncates each log file grown past the limit; run now and then by the guest. */
  async trim(): Promise<void> {
    for (const [name, path] of Object.entries(this.options.files())) {
      // every guest's logs are looked at once a minute: one under its limit (nearly always) is
      // read in place, with no open, stat and close through the thread pool; anything else (over
      // its limit, not a plain file, gone) goes the careful way below
      if (underLimit(path, this.limitBytes)) continue;
      const handle = await openLogFile(path, constants.O_WRONLY).catch((err: unknown) => {
        this.options.logger.warn({ err, log: name }, 'log file not checked against its limit');
        return undefined;
      });
      if (handle === undefined) continue;
      try {
        const { size } = await handle.stat();
        if (size <= this.limitBytes) continue;
        await handle.truncate(0);
        const records = await this.readRecords();
        const record = records[name] ?? emptyRecord;
        await this.writeRecords({ ...records, [name]: { ...record, offset: 0, rotated: record.rotated || record.offset < size } });
        this.options.logger.info({ log: name, bytes: size }, 'log file truncated: it outgrew its limit');
      } finally {
        await handle.close();
      }
    }
  }

  private async state(name: string, record: LogRecord, enabled: boolean): Promise<GuestLogState> {
    const type = this.options.control?.userLogs.includes(name) === true ? 'USER' : 'SYS';
    const size = await fileSize(this.options.files()[name]!);
    const truncated = size !== undefined && size < record.offset;
    const pending = size === undefined ? 0 : truncated ? size : size - record.offset;
    const base = { name, type, published: record.published, pending, stored: record.published > 0 } as const;
    if (type === 'USER' && !enabled) return { ...base, status: 'Disabled' };
    if (size === undefined) return { ...base, status: 'Unavailable' };
    if (record.rotated || truncated) return { ...base, status: 'Rotated' };
    if (record.published > 0) return { ...base, status: pending > 0 ? 'Partial' : 'Published' };
    return { ...base, status: type === 'USER' ? 'Enabled' : 'Ready' };
  }

  /** stores what the file gained since the last publish, one object at a time, recording each */
  private async publish(name: string, path: string, container: string, log: Logger): Promise<void> {
    const storage = this.options.storage!;
    const handle = await openLogFile(path, constants.O_RDONLY);
    if (handle === undefined) throw new CofferError('BadRequest', `Log ${name} has no file yet: the engine has not written it.`);
    try {
      const { size } = await handle.stat();
      let record = (await this.readRecords())[name] ?? emptyRecord;
      let position = size < record.offset ? 0 : record.offset;
      await storage.ensureContainer(container);
      const prefix = guestLogPrefix(this.options.instanceId, this.options.manager, name);
      // the bytes present now; what is written meanwhile waits for the next publish
      while (position < size) {
        const length = Math.min(objectBytes, size - position);
        const buffer = Buffer.alloc(length);
        const { bytesRead } = await handle.read(buffer, 0, length, position);
        if (bytesRead === 0) break;
        const body = buffer.subarray(0, bytesRead);
        await storage.put(container, `${prefix}${String(record.next).padStart(8, '0')}`, Readable.from([body]), {
          metadata: { lines: String(countLines(body)) },
        });
        position += bytesRead;
        record = { offset: position, published: record.published + bytesRead, next: record.next + 1, rotated: false };
        await this.updateRecord(name, record);
      }
      // nothing new, but a Rotated status has been seen: the next publish starts afresh
      if (record.rotated) await this.updateRecord(name, { ...record, rotated: false, offset: position });
      log.info({ log: name, bytes: record.published }, 'log published');
    } finally {
      await handle.close();
    }
  }

  private async discard(name: string, container: string): Promise<void> {
    const storage = this.options.storage!;
    const prefix = guestLogPrefix(this.options.instanceId, this.options.manager, name);
    const objects = await storage.list(container, prefix).catch((err: unknown) => {
      // a container never written to holds nothing to discard
      if (err instanceof CofferError && err.code === 'NotFound') return [];
      throw err;
    });
    for (const object of objects) await storage.delete(container, object.name);
    const record = (await this.readRecords())[name] ?? emptyRecord;
    await this.updateRecord(name, { ...record, published: 0 });
  }

  private async updateRecord(name: string, record: LogRecord): Promise<void> {
    await this.writeRecords({ ...(await this.readRecords()), [name]: record });
  }

  private async readRecords(): Promise<Record<string, LogRecord>> {
    const text = await readFile(join(this.options.dir, stateFile), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    return text === undefined ? {} : logRecords.parse(JSON.parse(text));
  }

  /** the host's file, written aside and renamed over */
  private async writeRecords(records: Record<string, LogRecord>): Promise<void> {
    const temporary = join(this.options.dir, `.${stateFile}.tmp`);
    await writeFile(temporary, `${JSON.stringify(records)}\n`, { mode: 0o600 });
    await chmod(temporary, 0o600);
    await rename(temporary, join(this.options.dir, stateFile));
  }
}

/**
 * Opens an engine's log file as the host may: never through a link, never blocking on a FIFO,
 * and only a regular file with no other name (a hard link the engine's user made to a file it
 * may not write would otherwise be truncated by the host). Undefined when there is none.
 */
async function openLogFile(path: string, mode: number): Promise<FileHandle | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, mode | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw new CofferError('BadRequest', `${path} is a link, not the engine's log: it is left alone.`);
    throw err;
  }
  const stats = await handle.stat();
  if (!stats.isFile() || stats.nlink !== 1) {
    await handle.close();
    throw new CofferError('BadRequest', `${path} is not the engine's log file (not a regular file with one name): it is left alone.`);
  }
  return handle;
}

/** A regular file of at most `limitBytes` at `path` (not through a link): nothing to trim. */
function underLimit(path: string, limitBytes: number): boolean {
  const stats = lstatSync(path, { throwIfNoEntry: false });
  return stats !== undefined && stats.isFile() && stats.size <= limitBytes;
}

async function fileSize(path: string): Promise<number | undefined> {
  const handle = await openLogFile(path, constants.O_RDONLY).catch(() => undefined);
  if (handle === undefined) return undefined;
  try {
    return (await handle.stat()).size;
  } finally {
    await handle.close();
  }
}

function countLines(buffer: Buffer): number {
  let lines = 0;
  for (const byte of buffer) if (byte === 0x0a) lines += 1;
  return lines;
}
