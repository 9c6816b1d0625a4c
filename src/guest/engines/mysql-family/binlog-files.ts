import { CofferError } from '../../../common/index.js';

// The binary log's files as mariadb-binlog and MySQL's mysqlbinlog print them, run with TZ=UTC
// (both print and read times in the local time zone): each event has a header
// `#YYMMDD HH:MM:SS server id N  end_log_pos P ...` followed by its type. Binlog times have one
// second's precision: an event stamped 12:00:05 happened somewhere in [12:00:05, 12:00:06).
// Each transaction begins with a GTID event: MariaDB's `GTID 0-1-4 trans`, MySQL's
// `GTID\tlast_committed=...` (gtid_mode ON) or `Anonymous_GTID\tlast_committed=...` (OFF, its
// default, which Coffer keeps).

/** the binary log's basename, in the data directory (config: log-bin) */
export const binlogBasename = 'coffer-binlog';
const binlogName = /^coffer-binlog\.(\d{6,})$/;

export function isBinlogName(name: string): boolean {
  return binlogName.test(name);
}

export function binlogNumber(name: string): number {
  const match = binlogName.exec(name);
  if (match === null) throw new CofferError('EngineError', `${JSON.stringify(name)} is not a binary log file of Coffer's.`);
  return Number(match[1]);
}

/** the file that follows `name` (the server numbers them with at least six digits) */
export function nextBinlogName(name: string): string {
  return `${binlogBasename}.${String(binlogNumber(name) + 1).padStart(6, '0')}`;
}

export interface BinlogEvent {
  /** the event's time, whole seconds */
  at: Date;
  /** what follows the header's positions: `Xid = 3`, `GTID 0-1-4 trans`, `Query ...` */
  kind: string;
}

const header = /^#(\d{2})(\d{2})(\d{2}) +(\d{1,2}):(\d{2}):(\d{2}) server id \d+ +end_log_pos \d+(?: CRC32 0x[0-9a-f]+)? *\t(.*)$/;

export function binlogEvents(output: string): BinlogEvent[] {
  const events: BinlogEvent[] = [];
  for (const line of output.split('\n')) {
    const match = header.exec(line);
    if (match === null) continue;
    const [, yy, mo, dd, hh, mi, ss, kind] = match as unknown as string[];
    events.push({ at: new Date(Date.UTC(2000 + Number(yy), Number(mo) - 1, Number(dd), Number(hh), Number(mi), Number(ss))), kind: kind! });
  }
  return events;
}

/**
 * an event that ends a transaction or is one on its own (DDL); MySQL's `BEGIN` is a Query event
 * too, which its header does not tell apart, but the transaction's own end always follows it
 */
export const endsTransaction = (event: BinlogEvent): boolean => /^(Xid = |Query\t)/.test(event.kind);
/** the event that begins each transaction */
export const beginsTransaction = (event: BinlogEvent): boolean => /^(Anonymous_)?GTID[ \t]/.test(event.kind);
/** the same event as SHOW BINLOG EVENTS names its type (`Event_type`) */
export const beginsTransactionType = (type: unknown): boolean => type === 'Gtid' || type === 'Anonymous_Gtid';
