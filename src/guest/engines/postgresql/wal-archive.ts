import { lstatSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Client } from 'pg';
import { CofferError, isCofferError } from '../../../common/index.js';
import type { ProcessRunner } from '../../process-runner.js';
import type { WalArchive } from '../engine.js';
import { withAdminClient, type AdminEndpoint } from './admin.js';
import {
  formatLsn,
  isArchivedFileName,
  isHistoryName,
  isSegmentName,
  microsOf,
  parseLsn,
  parseSegmentName,
  parseSegmentSize,
  transactionEndTimes,
} from './wal-files.js';

// Continuous WAL archiving, the guest's side. PostgreSQL's own basic_archive module (no shell,
// no credentials) copies each finished WAL file into the instance's spool, fsynced and renamed
// into place, at least every `archive_timeout` (config.ts); the guest's shipper stores each one
// (sealed, under the project's key) and removes it. Everything that touches the spool or the WAL
// runs as the engine's OS user: the spool is that user's, and a name in it could be a symlink to
// anything that user may not read (or may): read as that user, it can only be what that user
// could read anyway, its own instance's data.
//
// What the shipper records with each segment is the time of its last transaction end (commit or
// abort): a restore to a moment T replays segments up to the first one ending a transaction after
// T, and stops there. How far the archive reaches is the first transaction end not yet archived
// (pg_waldump over the WAL after the last archived segment), or now when there is none.

/** archive_timeout: a committed change reaches the spool within this (the recovery point objective) */
export const archiveTimeoutSeconds = 60;
const waldumpTimeoutMs = 60_000;
const fileTimeoutMs = 10 * 60_000;

/** What the archive needs of the instance's lifecycle. */
export interface WalArchiveHost {
  spoolDir: string;
  dataDir: string;
  runner: ProcessRunner;
  program(name: string): string;
  /** undefined while the server is not running */
  runningEndpoint(): Promise<AdminEndpoint | undefined>;
  /**
   * `work` over a connection the host keeps open (the health check's, in `postgres`), undefined
   * when the server does not answer. Without it every reach check logs in a session of its own:
   * on an idle instance a backend forked and a SCRAM exchange every 15 s.
   */
  keptQuery?<T>(work: (client: Client) => Promise<T>): Promise<T | undefined>;
}

export interface WalSizes {
  segmentBytes: number;
  pageBytes: bigint;
}

/** The last look at the WAL after the archive's end that saw all of it, and what it found there. */
interface WalScan {
  lastSegment: string;
  timeline: number;
  insert: bigint;
  firstPending: string | undefined;
}

/** pg_waldump's exit at the end of the WAL written so far, as opposed to a failure to read it */
const endOfWal = /invalid record length at [0-9A-F]+\/[0-9A-F]+: wanted \d+, got 0|could not find file|could not find a valid record after/;

/**
 * The spool directory's identity and times (lstat, in place), when they are settled: its last
 * change more than a second before now, so that any later change (a file renamed in, one removed)
 * gives it other times. Undefined when unsettled or unreadable.
 */
function settledSpoolStamp(dir: string): string | undefined {
  try {
    const stats = lstatSync(dir, { bigint: true, throwIfNoEntry: false });
    if (stats === undefined || !stats.isDirectory()) return undefined;
    const changedMs = Number((stats.mtimeNs > stats.ctimeNs ? stats.mtimeNs : stats.ctimeNs) / 1_000_000n);
    if (Date.now() - changedMs < 1000) return undefined;
    return `${stats.ino}:${stats.mtimeNs}:${stats.ctimeNs}`;
  } catch {
    return undefined;
  }
}

export class PostgresqlWalArchive implements WalArchive {
  private sizes: WalSizes | undefined;
  private lastScan: WalScan | undefined;
  /**
   * The spool's stamp when it was last listed and held nothing to ship: while it holds, nothing
   * was added, and the shipper's round (every 10 s, for every instance) lists nothing. An idle
   * server archives a segment at most every archive_timeout, and only after writes.
   */
  private emptyAt: string | undefined;

  constructor(private readonly host: WalArchiveHost) {}

  async pending(): Promise<string[]> {
    // read before the listing: a file added after it changes the stamp
    const stamp = settledSpoolStamp(this.host.spoolDir);
    if (stamp !== undefined && stamp === this.emptyAt) return [];
    this.emptyAt = undefined;
    const names = await readdir(this.host.spoolDir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [];
      throw err;
    });
    // a restore reads a timeline's history before its segments
    const rank = (name: string) => (isHistoryName(name) ? 0 : 1);
    const archived = names.filter(isArchivedFileName).sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
    if (archived.length === 0) this.emptyAt = stamp;
    return archived;
  }

  async inspect(name: string): Promise<Record<string, string>> {
    if (!isSegmentName(name)) return {};
    const { stdout } = await this.host.runner.run(this.host.program('pg_waldump'), ['--rmgr=Transaction', '--', name], {
      cwd: this.host.spoolDir,
      env: { TZ: 'UTC' },
      timeoutMs: waldumpTimeoutMs,
      lowPriority: true,
    });
    const last = latest(transactionEndTimes(stdout));
    return last === undefined ? {} : { 'last-commit': last };
  }

  read(name: string, signal: AbortSignal): Readable {
    if (!isArchivedFileName(name)) throw new CofferError('EngineError', `${JSON.stringify(name)} is not an archived WAL file.`);
    const cat = this.host.runner.stream('/bin/cat', ['--', name], { cwd: this.host.spoolDir, timeoutMs: fileTimeoutMs, signal, lowPriority: true });
    // a cat that fails (the file vanished) must fail the stream, not end it short
    cat.exited.catch((err: unknown) => cat.stdout.destroy(err instanceof Error ? err : new Error(String(err))));
    return cat.stdout;
  }

  advances(name: string): boolean {
    return isSegmentName(name);
  }

  async remove(name: string): Promise<void> {
    if (!isArchivedFileName(name)) throw new CofferError('EngineError', `${JSON.stringify(name)} is not an archived WAL file.`);
    await this.host.runner.run('/bin/rm', ['-f', '--', name], { cwd: this.host.spoolDir, timeoutMs: waldumpTimeoutMs });
  }

  async archivedThrough(lastSegment: string): Promise<Date | undefined> {
    const endpoint = await this.host.runningEndpoint();
    if (endpoint === undefined || !isSegmentName(lastSegment)) return undefined;
    const sizes = await this.walSizes(endpoint);
    if (sizes === undefined) return undefined;
    const { segmentBytes } = sizes;
    const { timeline, number } = parseSegmentName(lastSegment, segmentBytes);
    const end = (number + 1n) * BigInt(segmentBytes);
    // a commit takes its time just before its WAL is written: one stamped a moment before this
    // check may reach the WAL only after pg_waldump read it, so "now" is claimed a second short
    const checked = new Date(Date.now() - 1000);
    const position = await this.query(endpoint, async (client) => {
      const result = await client.query<{ insert: string; flush: string; timeline: string }>(
        'SELECT pg_current_wal_insert_lsn()::text AS insert, pg_current_wal_flush_lsn()::text AS flush, timeline_id::text AS timeline FROM pg_control_checkpoint()',
      );
      const row = result.rows[0]!;
      return { insert: parseLsn(row.insert), flush: parseLsn(row.flush), timeline: Number(row.timeline) };
    });
    if (position === undefined) return undefined;
    const { insert, flush } = position;
    // another timeline, or a file shipped out of order: nothing can be said this time
    if (position.timeline !== timeline || insert < end) return undefined;
    // WAL only grows: with nothing inserted since a scan that read all of it, pg_waldump would
    // find what it found then (on an idle instance, every check after the first)
    const scan = this.lastScan;
    let firstPending: string | undefined;
    if (scan !== undefined && scan.lastSegment === lastSegment && scan.timeline === timeline && scan.insert === insert) {
      firstPending = scan.firstPending;
    } else {
      const found = await this.firstTransactionEndAfter(end);
      if (found === 'unknown') return undefined;
      firstPending = found;
      // WAL inserted but not yet written out was not there for pg_waldump to read
      this.lastScan = allWritten(insert, flush, sizes) ? { lastSegment, timeline, insert, firstPending } : undefined;
    }
    if (firstPending === undefined) return checked;
    // everything before the first transaction end not archived yet is archived
    const micros = microsOf(firstPending) - 1n;
    return new Date(Number(micros / 1000n));
  }

  /** The first transaction end written at or after `position`, undefined when none, 'unknown' when the WAL could not be read. */
  private async firstTransactionEndAfter(position: bigint): Promise<string | undefined | 'unknown'> {
    const args = ['--rmgr=Transaction', '--path=pg_wal', `--start=${formatLsn(position)}`];
    const waldump = this.host.runner.stream(this.host.program('pg_waldump'), args, {
      cwd: this.host.dataDir,
      env: { TZ: 'UTC' },
      timeoutMs: waldumpTimeoutMs,
      lowPriority: true,
    });
    const chunks: Buffer[] = [];
    waldump.stdin.end();
    const [read, exited] = await Promise.allSettled([
      (async () => {
        for await (const chunk of waldump.stdout) chunks.push(chunk as Buffer);
      })(),
      waldump.exited,
    ]);
    if (read.status === 'rejected') return 'unknown';
    // the usual end: pg_waldump reads on into the WAL not written yet and stops there
    if (exited.status === 'rejected' && !(isCofferError(exited.reason) && endOfWal.test(String(exited.reason.details ?? '')))) return 'unknown';
    const output = Buffer.concat(chunks).toString('utf8');
    return transactionEndTimes(output)[0];
  }

  private async walSizes(endpoint: AdminEndpoint): Promise<WalSizes | undefined> {
    this.sizes ??= await this.query(endpoint, async (client) => {
      const row = (await client.query<{ segment: string; page: string }>("SELECT current_setting('wal_segment_size') AS segment, current_setting('wal_block_size') AS page")).rows[0]!;
      return { segmentBytes: parseSegmentSize(row.segment), pageBytes: BigInt(row.page) };
    });
    return this.sizes;
  }

  /** `work` over the host's kept connection when it has one, else over a session of its own */
  private query<T>(endpoint: AdminEndpoint, work: (client: Client) => Promise<T>): Promise<T | undefined> {
    return this.host.keptQuery !== undefined ? this.host.keptQuery(work) : withAdminClient(endpoint, 'postgres', work);
  }
}

/**
 * Whether everything inserted into the WAL up to `insert` was written out at `flush`. With nothing
 * inserted on a new page yet, the insert position stands past that page's header while the flush
 * position stops at its start: they differ by the header exactly (24 bytes, 40 on a segment's
 * first page, on 64-bit builds). Any more, even the tail of a record begun on the page before, is
 * WAL not written yet.
 */
export function allWritten(insert: bigint, flush: bigint, sizes: WalSizes): boolean {
  if (flush >= insert) return true;
  if (flush % sizes.pageBytes !== 0n) return false;
  return insert - flush === (flush % BigInt(sizes.segmentBytes) === 0n ? 40n : 24n);
}

function latest(times: readonly string[]): string | undefined {
  let best: string | undefined;
  for (const time of times) if (best === undefined || microsOf(time) > microsOf(best)) best = time;
  return best;
}
