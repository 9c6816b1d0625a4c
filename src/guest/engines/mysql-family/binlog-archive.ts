import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { RowDataPacket } from 'mysql2/promise';
import { CofferError } from '../../../common/index.js';
import type { ProcessRunner } from '../../process-runner.js';
import type { WalArchive } from '../engine.js';
import type { MysqlFamilyAdmin } from './admin.js';
import { beginsTransaction, beginsTransactionType, binlogEvents, endsTransaction, isBinlogName, nextBinlogName } from './binlog-files.js';

// Binary log archiving, the guest's side (PostgreSQL's is wal-archive.ts). The server writes its
// binary log into the data directory (config: log-bin); the closed files are the spool: the
// shipper stores each one and then purges it, so the server keeps every file until it is shipped
// (no expiry is configured). A log with changes is closed (FLUSH BINARY LOGS) once it has been
// open for `rotateAfterMs`, so that a change reaches the archive within about a minute, as
// PostgreSQL's archive_timeout. Files are read as the engine's OS user, like everything in the
// data directory: a name there could be a link to anything, and read as that user it can only
// be what that user could read anyway.

/** a change is archived within about this long (the recovery point objective) */
export const rotateAfterMs = 60_000;
const binlogTimeoutMs = 60_000;
const fileTimeoutMs = 10 * 60_000;

type Row = RowDataPacket & Record<string, unknown>;

/** What the archive needs of the instance's lifecycle. */
export interface BinlogArchiveHost {
  dataDir: string;
  runner: ProcessRunner;
  admin: MysqlFamilyAdmin;
  /** the flavor's binary log reader (mariadb-binlog, MySQL's mysqlbinlog) */
  binlogTool(): Promise<string>;
  running(): Promise<boolean>;
}

export class BinlogArchive implements WalArchive {
  /** the active log and when the guest first saw it active */
  private active: { name: string; since: number } | undefined;

  constructor(private readonly host: BinlogArchiveHost) {}

  async pending(): Promise<string[]> {
    if (!(await this.host.running())) return [];
    const names = await this.host.admin.run(async (connection) => {
      const [logs] = await connection.query<Row[]>('SHOW BINARY LOGS');
      const listed = logs.map((row) => String(row.Log_name)).filter(isBinlogName);
      const current = listed.at(-1);
      if (current === undefined) return [];
      if (this.active?.name !== current) this.active = { name: current, since: Date.now() };
      if (Date.now() - this.active.since >= rotateAfterMs) {
        const [events] = await connection.query<Row[]>(`SHOW BINLOG EVENTS IN ${connection.escape(current)} LIMIT 20`);
        if (events.some((event) => beginsTransactionType(event.Event_type))) {
          await connection.query('FLUSH BINARY LOGS');
          return [...listed];
        }
      }
      return listed.slice(0, -1);
    });
    return names;
  }

  async inspect(name: string): Promise<Record<string, string>> {
    checkName(name);
    // streamed line by line: a file of a bulk load prints far more than a run's output keeps
    const dump = this.host.runner.stream(await this.host.binlogTool(), ['--base64-output=decode-rows', '--', name], {
      cwd: this.host.dataDir,
      env: { TZ: 'UTC' },
      timeoutMs: fileTimeoutMs,
      lowPriority: true,
    });
    dump.stdin.end();
    let last: Date | undefined;
    const read = (async () => {
      for await (const line of createInterface({ input: dump.stdout, crlfDelay: Infinity })) {
        if (!line.startsWith('#')) continue;
        const event = binlogEvents(line)[0];
        if (event !== undefined && endsTransaction(event)) last = event.at;
      }
    })();
    await Promise.all([read, dump.exited]);
    return last === undefined ? {} : { 'last-commit': last.toISOString() };
  }

  read(name: string, signal: AbortSignal): Readable {
    checkName(name);
    const cat = this.host.runner.stream('/bin/cat', ['--', name], { cwd: this.host.dataDir, timeoutMs: fileTimeoutMs, signal, lowPriority: true });
    // a cat that fails (the file vanished) must fail the stream, not end it short
    cat.exited.catch((err: unknown) => cat.stdout.destroy(err instanceof Error ? err : new Error(String(err))));
    return cat.stdout;
  }

  advances(name: string): boolean {
    return isBinlogName(name);
  }

  async remove(name: string): Promise<void> {
    checkName(name);
    // purges every file before the next one: the shipper stores them in order
    await this.host.admin.run((connection) => connection.query(`PURGE BINARY LOGS TO ${connection.escape(nextBinlogName(name))}`));
  }

  async archivedThrough(lastFile: string): Promise<Date | undefined> {
    if (!isBinlogName(lastFile) || !(await this.host.running())) return undefined;
    // An event is stamped (in whole seconds) when its statement starts, a moment before it is
    // written, and a restore to a moment replays everything stamped in that moment's second
    // (binlog-replay.ts): what is claimed ends before the second holding "now" less a second,
    // and before the second of the first transaction not archived.
    const wholeSecondBefore = (ms: number) => new Date(Math.floor(ms / 1000) * 1000 - 1);
    const checked = wholeSecondBefore(Date.now() - 1000);
    const found = await this.host.admin.run(async (connection) => {
      const [logs] = await connection.query<Row[]>('SHOW BINARY LOGS');
      const active = logs.map((row) => String(row.Log_name)).at(-1);
      if (active === undefined) return undefined;
      const [events] = await connection.query<Row[]>(`SHOW BINLOG EVENTS IN ${connection.escape(active)} LIMIT 20`);
      const gtid = events.find((event) => beginsTransactionType(event.Event_type));
      return { active, firstTransactionEnd: gtid === undefined ? undefined : Number(gtid.End_log_pos) };
    });
    // files not shipped yet between the last shipped and the active one: nothing can be said this time
    if (found === undefined || found.active !== nextBinlogName(lastFile)) return undefined;
    if (found.firstTransactionEnd === undefined) return checked;
    // the event's header carries its time: read only up to it, not the whole active log
    const first = binlogEvents(await this.dump(found.active, [`--stop-position=${found.firstTransactionEnd}`])).find(beginsTransaction);
    return first === undefined ? undefined : wholeSecondBefore(first.at.getTime());
  }

  private async dump(name: string, extraArgs: readonly string[] = []): Promise<string> {
    checkName(name);
    const { stdout } = await this.host.runner.run(await this.host.binlogTool(), ['--base64-output=decode-rows', ...extraArgs, '--', name], {
      cwd: this.host.dataDir,
      env: { TZ: 'UTC' },
      timeoutMs: binlogTimeoutMs,
      lowPriority: true,
    });
    return stdout;
  }
}

function checkName(name: string): void {
  if (!isBinlogName(name)) throw new CofferError('EngineError', `${JSON.stringify(name)} is not a binary log file of Coffer's.`);
}
