import { lstatSync, opendirSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { CofferError, type Logger } from '../../../common/index.js';
import type { ProcessRunner } from '../../process-runner.js';
import type { WalArchive } from '../engine.js';
import { infoFields, withAdminClient, type AdminEndpoint } from './admin.js';
import { aofDirName, AofScanner, chunkName, isIncrementalName, parseManifest, type ChunkPosition, type ManifestEntry } from './aof-files.js';

// AOF archiving, the guest's side (PostgreSQL's is wal-archive.ts, MariaDB's binlog-archive.ts).
// Redis appends every write to its current incremental AOF file; an AOF rewrite (automatic, root's
// BGREWRITEAOF, or a backup's, backup.ts) closes it and opens the next. The spool is those files
// read by byte ranges: a closed file's rest is shipped at once, the current file's new bytes once
// they have waited `shipAfterMs` (the recovery point objective, as PostgreSQL's archive_timeout)
// or grown past `chunkBytes`. Each chunk ends where a command ends, so every chunk stands on its
// own, and how far the shipped bytes go is kept in the host's file `aof-archive.json`.
//
// Redis deletes the files a rewrite replaced (its "history") unless aof-disable-auto-gc is on,
// which Coffer's redis.conf sets while the host archives: the guest lets Redis clean up (turning
// the setting off and on again) only once every closed file is shipped, and notices when a rewrite
// ran meanwhile. Files are read as the engine's OS user (dd, cat), like everything in the data
// directory.

/** a write reaches the archive within about this long (the recovery point objective) */
export const shipAfterMs = 50_000;
/** the current file's bytes go in chunks of about this much at most, even sooner */
const chunkBytes = 64 * 1024 * 1024;
const fileTimeoutMs = 10 * 60_000;
const quickTimeoutMs = 60_000;
const stateFileName = 'aof-archive.json';
const manifestName = 'appendonly.aof.manifest';

const archiveState = z.object({
  /** the next byte to ship: in file `seq` at `offset` */
  seq: z.number().int().nonnegative(),
  offset: z.number().int().nonnegative(),
  /** the last `#TS` second shipped: commands at the next byte without an annotation of their own are stamped with it */
  lastStamp: z.number().int().optional(),
});
type ArchiveState = z.infer<typeof archiveState>;

/** What the archive needs of the instance's lifecycle. */
export interface AofArchiveHost {
  /** the instance directory, where the host keeps the archive's state */
  dir: string;
  dataDir: string;
  runner: ProcessRunner;
  logger: Logger;
  endpoint(): Promise<AdminEndpoint>;
  running(): Promise<boolean>;
  /**
   * INFO's server and persistence fields, asked over a connection the host keeps (the health
   * check's); undefined when the server does not answer. Without it every round reads the files.
   */
  persistence?(): Promise<Map<string, string> | undefined>;
}

/**
 * What Redis says of its AOF that changes whenever the files could have: a write appended
 * (aof_current_size), a rewrite begun or ended (which opens a new incremental file and closes the
 * last), another server (run_id: a restart). Undefined while a rewrite runs or when AOF is off:
 * the files are read then.
 */
function aofFingerprint(fields: Map<string, string> | undefined): string | undefined {
  if (fields === undefined || fields.get('aof_enabled') !== '1' || fields.get('aof_rewrite_in_progress') !== '0') return undefined;
  const parts = ['run_id', 'aof_rewrites', 'aof_current_size', 'aof_base_size'].map((name) => fields.get(name));
  return parts.some((part) => part === undefined || part === '') ? undefined : parts.join(' ');
}

/**
 * The most entries a round reads of the AOF directory in place: Redis keeps a manifest, a base
 * and a few incremental files there. The directory is the engine user's, who could fill it; the
 * reads run on the agent's thread, so past this many Redis is asked instead.
 */
const directoryEntriesRead = 256;

/** The directory's names, sorted; throws when it holds more than `most`, without reading the rest. */
function listAtMost(dir: string, most: number): string[] {
  const handle = opendirSync(dir);
  try {
    const names: string[] = [];
    for (let entry = handle.readSync(); entry !== null; entry = handle.readSync()) {
      if (names.length === most) throw new Error(`more than ${most} entries`);
      names.push(entry.name);
    }
    return names.sort();
  } finally {
    handle.closeSync();
  }
}

/**
 * What the AOF directory says of itself, read in place (no program, no round trip to Redis): each
 * entry's name, inode, size and times, and the directory's own. A write grows the current file, a
 * rewrite opens a new one and renames a new manifest over the old, a restart that replays a torn
 * tail truncates the file: each changes it. The names are listed again only when something
 * changed. Undefined where the directory cannot be read here (its owner's alone) or holds more
 * than directoryEntriesRead entries: Redis is asked instead.
 */
class DirectoryFingerprint {
  /** the names last listed, and the fingerprint read with them */
  private listed: { names: string[]; fingerprint: string } | undefined;

  constructor(private readonly dir: string) {}

  read(): string | undefined {
    try {
      // a directory's times are coarse (a change in the same tick as the listing keeps them): the
      // kept names are trusted only while nothing at all changed (none gone either), else listed again
      const again = this.kept();
      if (again !== undefined) return again;
      const names = listAtMost(this.dir, directoryEntriesRead);
      const fingerprint = this.with(names);
      this.listed = { names, fingerprint };
      return fingerprint;
    } catch {
      this.listed = undefined;
      return undefined;
    }
  }

  private kept(): string | undefined {
    if (this.listed === undefined) return undefined;
    try {
      const fingerprint = this.with(this.listed.names);
      return fingerprint === this.listed.fingerprint ? fingerprint : undefined;
    } catch {
      return undefined;
    }
  }

  private with(names: string[]): string {
    const top = lstatSync(this.dir, { bigint: true });
    if (!top.isDirectory()) throw new Error('not a directory');
    const parts = [`${top.ino}:${top.mtimeNs}:${top.ctimeNs}`];
    for (const name of names) {
      const entry = lstatSync(join(this.dir, name), { bigint: true });
      parts.push(`${name}:${entry.ino}:${entry.size}:${entry.mtimeNs}:${entry.ctimeNs}`);
    }
    return parts.join(' ');
  }
}

interface PlannedChunk extends ChunkPosition {
  /** the file the chunk is read from */
  file: string;
  /** where the chunk ends in its file */
  end: number;
  /** the file is closed and this is its end */
  final: boolean;
  lastStamp: number | undefined;
}

export class RedisAofArchive implements WalArchive {
  private readonly planned = new Map<string, PlannedChunk>();
  /** when the guest first saw the current file's bytes waiting */
  private waiting: { seq: number; offset: number; since: number } | undefined;
  private state: ArchiveState | undefined;
  /**
   * The AOF's fingerprint when a round last found nothing to ship and nothing waiting: while it
   * is the same, the files are as they were and a round reads none of them (each read runs a
   * program as the engine's user, which cost an idle host of a thousand instances most of its
   * CPU). The directory's own (directoryFingerprint) where it can be read, so that an idle
   * round asks Redis nothing either; else what Redis reports of its AOF.
   */
  private quietAt: string | undefined;

  private readonly shipAfterMs: number;
  private readonly directory: DirectoryFingerprint;

  constructor(
    private readonly host: AofArchiveHost,
    options: { shipAfterMs?: number } = {},
  ) {
    this.shipAfterMs = options.shipAfterMs ?? shipAfterMs;
    this.directory = new DirectoryFingerprint(join(host.dataDir, aofDirName));
  }

  private get aofDir(): string {
    return join(this.host.dataDir, aofDirName);
  }

  async pending(): Promise<string[]> {
    this.planned.clear();
    if (!(await this.host.running())) return [];
    // read before the files: a write that lands after it changes the next round's fingerprint
    const fingerprint = this.directory.read() ?? aofFingerprint(await this.host.persistence?.());
    if (fingerprint !== undefined && fingerprint === this.quietAt) return [];
    this.quietAt = undefined;
    const { names, settled } = await this.plan();
    // nothing to ship and nothing waiting for its time: the same fingerprint next round means the same files
    if (names.length === 0 && settled) this.quietAt = fingerprint;
    return names;
  }

  /** the chunks to ship now; `settled` when every byte of the files is shipped (none waits) */
  private async plan(): Promise<{ names: string[]; settled: boolean }> {
    const files = await this.incrementals();
    if (files.length === 0) return { names: [], settled: true };
    const current = files.at(-1)!;
    let state = await this.readState();
    // first run, or files gone before they were shipped (a gap the restore planner will see)
    if (state === undefined || !files.some((f) => f.seq === state!.seq)) {
      const first = files.find((f) => state === undefined || f.seq > state.seq) ?? current;
      if (state !== undefined) this.host.logger.error({ expected: state.seq, found: first.seq }, 'AOF files were removed before they were archived');
      state = { seq: first.seq, offset: 0 };
      await this.writeState(state);
    }
    const names: string[] = [];
    const plan = (chunk: PlannedChunk) => {
      const name = chunkName(chunk);
      this.planned.set(name, chunk);
      names.push(name);
    };
    for (const file of files) {
      if (file.seq < state.seq) continue;
      let offset = file.seq === state.seq ? state.offset : 0;
      const size = await this.size(file.name);
      if (size < offset) {
        // not what Redis does to a file (it truncates only a torn command, never shipped): what was
        // shipped of it may differ from what it holds, so the archive goes on after it, leaving a
        // gap a restore refuses to cross, and the next backup starts a sound one
        this.host.logger.error({ file: file.name, size, shipped: offset }, 'an AOF file is shorter than what was archived of it');
        if (file.seq === current.seq) break;
        state = { seq: file.seq + 1, offset: 0, ...(state.lastStamp === undefined ? {} : { lastStamp: state.lastStamp }) };
        await this.writeState(state);
        continue;
      }
      if (file.seq !== current.seq) {
        plan((await this.scan(file.name, file.seq, offset, size, true))!);
        continue;
      }
      if (size <= offset) return { names, settled: true };
      if (this.waiting?.seq !== file.seq || this.waiting.offset !== offset) this.waiting = { seq: file.seq, offset, since: Date.now() };
      const due = Date.now() - this.waiting.since >= this.shipAfterMs;
      // what has waited goes whole, in chunks of at most chunkBytes; a full chunk goes at once
      while (size > offset && (due || size - offset >= chunkBytes)) {
        // a single command larger than a chunk is a chunk of its own; one not written whole yet waits
        const chunk =
          (await this.scan(file.name, file.seq, offset, Math.min(size, offset + chunkBytes), false)) ??
          (size > offset + chunkBytes ? await this.scan(file.name, file.seq, offset, size, false) : undefined);
        if (chunk === undefined) break;
        plan(chunk);
        offset = chunk.end;
      }
    }
    return { names, settled: false };
  }

  async inspect(name: string): Promise<Record<string, string>> {
    const chunk = this.chunk(name);
    return {
      bytes: String(chunk.end - chunk.offset),
      final: chunk.final ? 'yes' : 'no',
      ...(chunk.lastStamp === undefined ? {} : { 'last-commit': new Date(chunk.lastStamp * 1000).toISOString() }),
    };
  }

  read(name: string, signal: AbortSignal): Readable {
    const chunk = this.chunk(name);
    const dd = this.host.runner.stream('/bin/dd', ddArgs(chunk.file, chunk.offset, chunk.end - chunk.offset), {
      cwd: this.aofDir,
      timeoutMs: fileTimeoutMs,
      signal,
      lowPriority: true,
    });
    dd.stdin.end();
    // a dd that fails (the file vanished) must fail the stream, not end it short
    dd.exited.catch((err: unknown) => dd.stdout.destroy(err instanceof Error ? err : new Error(String(err))));
    return dd.stdout;
  }

  advances(): boolean {
    return true;
  }

  async remove(name: string): Promise<void> {
    const chunk = this.chunk(name);
    const previous = await this.readState();
    const lastStamp = chunk.lastStamp ?? previous?.lastStamp;
    const next: ArchiveState = chunk.final ? { seq: chunk.seq + 1, offset: 0 } : { seq: chunk.seq, offset: chunk.end };
    await this.writeState({ ...next, ...(lastStamp === undefined ? {} : { lastStamp }) });
    this.planned.delete(name);
    if (chunk.final) await this.collectShippedFiles(next.seq);
  }

  async archivedThrough(): Promise<Date | undefined> {
    if (!(await this.host.running())) return undefined;
    const state = await this.readState();
    if (state === undefined) return undefined;
    const checked = Date.now();
    const persistence = await withAdminClient(await this.host.endpoint(), async (client) => {
      const reply = (await client.call('CONFIG', ['GET', 'aof-timestamp-enabled'])) as string[];
      return { stamped: reply[1] === 'yes', fields: infoFields(String(await client.call('INFO', ['persistence']))) };
    });
    // unstamped commands cannot be placed in time; commands still in Redis's buffer are not in the file yet
    if (!persistence.stamped || persistence.fields.get('aof_buffer_length') !== '0') return undefined;
    const files = (await this.incrementals()).filter((f) => f.seq >= state.seq);
    if (files[0]?.seq !== state.seq) return undefined;
    for (const file of files) {
      const offset = file.seq === state.seq ? state.offset : 0;
      const head = await this.head(file.name, offset);
      if (head.length === 0) continue;
      const stamp = /^#TS:(\d+)\r\n/.exec(head);
      const second = stamp !== null ? Number(stamp[1]) : state.lastStamp;
      // everything stamped before the first command not shipped yet is shipped
      return second === undefined ? undefined : new Date(second * 1000 - 1);
    }
    // nothing waits: Redis runs one command at a time, so with its buffer empty at the INFO every
    // command before it is in the file, and shipped; a command of the check's own second may
    // still come after it, so what is claimed ends before that second
    return new Date(Math.floor(checked / 1000) * 1000 - 1);
  }

  private chunk(name: string): PlannedChunk {
    const chunk = this.planned.get(name);
    if (chunk === undefined) throw new CofferError('EngineError', `${JSON.stringify(name)} is not an AOF chunk waiting to be archived.`);
    return chunk;
  }

  /** the manifest's incremental files (history ones too, while they are kept), in log order */
  private async incrementals(): Promise<ManifestEntry[]> {
    const { stdout } = await this.host.runner.run('/bin/cat', ['--', manifestName], { cwd: this.aofDir, timeoutMs: quickTimeoutMs });
    return parseManifest(stdout)
      .filter((entry) => entry.type !== 'b' && isIncrementalName(entry.name))
      .sort((a, b) => a.seq - b.seq);
  }

  private async size(file: string): Promise<number> {
    const { stdout } = await this.host.runner.run('/usr/bin/stat', ['-c', '%s', '--', file], { cwd: this.aofDir, timeoutMs: quickTimeoutMs });
    const size = Number(stdout.trim());
    if (!Number.isSafeInteger(size)) throw new CofferError('EngineError', `Unexpected size of ${file}: ${stdout.trim()}.`);
    return size;
  }

  /** the first bytes at `offset` of `file`: enough for an annotation */
  private async head(file: string, offset: number): Promise<string> {
    const { stdout } = await this.host.runner.run('/bin/dd', ddArgs(file, offset, 32), { cwd: this.aofDir, timeoutMs: quickTimeoutMs });
    return stdout;
  }

  /** Reads [offset, end) of `file` and answers the chunk up to its last whole command, undefined when it holds none. */
  private async scan(file: string, seq: number, offset: number, end: number, closed: boolean): Promise<PlannedChunk | undefined> {
    const scanner = new AofScanner();
    if (end > offset) {
      const dd = this.host.runner.stream('/bin/dd', ddArgs(file, offset, end - offset), { cwd: this.aofDir, timeoutMs: fileTimeoutMs, lowPriority: true });
      dd.stdin.end();
      const read = (async () => {
        for await (const piece of dd.stdout) scanner.feed(piece as Buffer);
      })();
      const [scanned, exited] = await Promise.allSettled([read, dd.exited]);
      if (scanned.status === 'rejected') {
        dd.kill();
        throw scanned.reason;
      }
      if (exited.status === 'rejected') throw exited.reason;
    }
    // a closed file ends with a whole command (Redis truncates a torn one when it loads it)
    if (closed) {
      if (!scanner.complete) throw new CofferError('EngineError', `The closed AOF file ${file} ends inside a command.`);
      return { seq, offset, file, end, final: true, lastStamp: scanner.lastStamp };
    }
    if (scanner.boundary === 0) return undefined;
    return { seq, offset, file, end: offset + scanner.boundary, final: false, lastStamp: scanner.lastStamp };
  }

  /**
   * Lets Redis remove the files its rewrites replaced once every closed file up to `nextSeq` is
   * shipped: aof-disable-auto-gc off and on again, in one transaction that also says whether a
   * rewrite ran since the check (its closed file would be gone unshipped: logged, and seen as a
   * gap by a restore).
   */
  private async collectShippedFiles(nextSeq: number): Promise<void> {
    await withAdminClient(await this.host.endpoint(), async (client) => {
      // read before the manifest: a rewrite that ends after it shows in the transaction's count
      const before = infoFields(String(await client.call('INFO', ['persistence'])));
      if (before.get('aof_rewrite_in_progress') !== '0') return;
      const entries = parseManifest(
        (await this.host.runner.run('/bin/cat', ['--', manifestName], { cwd: this.aofDir, timeoutMs: quickTimeoutMs })).stdout,
      );
      const history = entries.filter((e) => e.type === 'h');
      if (history.length === 0 || history.some((e) => isIncrementalName(e.name) && e.seq >= nextSeq)) return;
      const replies =
        (await client
          .multi()
          .call('INFO', 'persistence')
          .call('CONFIG', 'SET', 'aof-disable-auto-gc', 'no')
          .call('CONFIG', 'SET', 'aof-disable-auto-gc', 'yes')
          .exec()) ?? [];
      const failed = replies.find(([err]) => err !== null);
      if (failed !== undefined) throw failed[0] as Error;
      const during = infoFields(String(replies[0]?.[1]));
      if (during.get('aof_rewrites') !== before.get('aof_rewrites')) {
        this.host.logger.error('an AOF rewrite ran while shipped AOF files were removed: a closed file may be gone unshipped');
      }
    });
  }

  private async readState(): Promise<ArchiveState | undefined> {
    if (this.state !== undefined) return this.state;
    const text = await readFile(join(this.host.dir, stateFileName), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    this.state = text === undefined ? undefined : archiveState.parse(JSON.parse(text));
    return this.state;
  }

  /** written aside and renamed over: the host's file, never the engine user's */
  private async writeState(state: ArchiveState): Promise<void> {
    const path = join(this.host.dir, stateFileName);
    await writeFile(`${path}.tmp`, `${JSON.stringify(archiveState.parse(state))}\n`, { mode: 0o600 });
    await rename(`${path}.tmp`, path);
    this.state = state;
  }
}

function ddArgs(file: string, offset: number, count: number): string[] {
  return [`if=${file}`, 'iflag=skip_bytes,count_bytes', `skip=${offset}`, `count=${count}`, 'bs=1M', 'status=none'];
}
