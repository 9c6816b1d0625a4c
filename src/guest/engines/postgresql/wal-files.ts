import { CofferError } from '../../../common/index.js';

// PostgreSQL's WAL file names and positions, as archiving and point-in-time restores need them:
// a segment is named by its timeline and number (`TTTTTTTTXXXXXXXXYYYYYYYY`, 24 hex digits), a
// timeline's history by its timeline (`TTTTTTTT.history`), and a position (LSN) is `X/Y`, the
// byte offset into the log.

const segmentPattern = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;
const historyPattern = /^[0-9A-F]{8}\.history$/;
/** the files basic_archive leaves finished in its directory: segments, histories, the partial segment of a promotion, backup history files */
const archivedPattern = /^[0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?$|^[0-9A-F]{8}\.history$/;

export const isArchivedFileName = (name: string): boolean => archivedPattern.test(name);
export const isSegmentName = (name: string): boolean => segmentPattern.test(name);
export const isHistoryName = (name: string): boolean => historyPattern.test(name);

/** A segment's timeline and number, for segments of `segmentBytes` (a power of two up to 1 GiB). */
export function parseSegmentName(name: string, segmentBytes: number): { timeline: number; number: bigint } {
  const match = segmentPattern.exec(name);
  if (match === null) throw new CofferError('EngineError', `${JSON.stringify(name)} is not a WAL segment name.`);
  const perLogId = 0x1_0000_0000n / BigInt(segmentBytes);
  return { timeline: parseInt(match[1]!, 16), number: BigInt(`0x${match[2]!}`) * perLogId + BigInt(`0x${match[3]!}`) };
}

export function segmentName(timeline: number, number: bigint, segmentBytes: number): string {
  const perLogId = 0x1_0000_0000n / BigInt(segmentBytes);
  const hex = (value: bigint | number) => value.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(timeline)}${hex(number / perLogId)}${hex(number % perLogId)}`;
}

/** `X/Y` as a byte position. */
export function parseLsn(lsn: string): bigint {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn);
  if (match === null) throw new CofferError('EngineError', `${JSON.stringify(lsn)} is not a WAL position.`);
  return (BigInt(`0x${match[1]!}`) << 32n) + BigInt(`0x${match[2]!}`);
}

export function formatLsn(position: bigint): string {
  return `${(position >> 32n).toString(16).toUpperCase()}/${(position & 0xffff_ffffn).toString(16).toUpperCase()}`;
}

/** The number of the segment holding byte `position`. */
export const segmentOf = (position: bigint, segmentBytes: number): bigint => position / BigInt(segmentBytes);

/** `SHOW wal_segment_size`'s answer (e.g. `16MB`) in bytes. */
export function parseSegmentSize(shown: string): number {
  const match = /^(\d+)(kB|MB|GB)$/.exec(shown.trim());
  if (match === null) throw new CofferError('EngineError', `Unexpected wal_segment_size ${JSON.stringify(shown)}.`);
  const unit = { kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[match[2] as 'kB' | 'MB' | 'GB'];
  return Number(match[1]) * unit;
}

/**
 * The times of the transaction ends (commits and aborts: the records a recovery target time can
 * stop at) in `pg_waldump --rmgr=Transaction` output run with TZ=UTC, as ISO 8601 with the
 * microseconds PostgreSQL keeps (`2026-12-03T17:47:35.671231Z`): a restore compares them with its
 * target to the microsecond.
 */
export function transactionEndTimes(waldumpOutput: string): string[] {
  const times = [...waldumpOutput.matchAll(/desc: (?:COMMIT|ABORT)(?:_PREPARED \d+:)? (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d{1,6}))? UTC/g)];
  return times.map((m) => `${m[1]!}T${m[2]!}.${(m[3] ?? '').padEnd(6, '0')}Z`);
}

/** Microseconds since the epoch of a time written by transactionEndTimes, or of a Date. */
export function microsOf(time: string | Date): bigint {
  if (time instanceof Date) return BigInt(time.getTime()) * 1000n;
  const match = /^(.*)\.(\d{6})Z$/.exec(time);
  if (match === null) throw new CofferError('EngineError', `${JSON.stringify(time)} is not a transaction time.`);
  return BigInt(Date.parse(`${match[1]!}Z`)) * 1000n + BigInt(match[2]!);
}
