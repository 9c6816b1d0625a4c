import { Transform, type TransformCallback } from 'node:stream';
import { CofferError } from '../../../common/index.js';

// Redis 7's multi-part AOF as point in time reads it. The AOF directory holds a manifest
// (`file <name> seq <n> type <b|h|i>` per line: the base, history, and incremental files), and
// each incremental file is RESP commands (`*<argc>` then `$<len>` bulk strings), each run of
// commands of a new second preceded by an annotation `#TS:<unix seconds>` when
// aof-timestamp-enabled is on. Every incremental file opens with a SELECT, but with an annotation
// only when its first write is in another second than the last one written: the commands before
// a file's first annotation belong to the previous file's last second. A command is stamped with
// the second its annotation names, so times have one second's precision: a restore to a moment
// keeps everything stamped in that moment's second.
//
// The archive is the incremental files' bytes in order, cut into chunks named by where they
// start (`incr-<seq>-<offset>`, zero-padded so that names sort in log order, as the archive's
// retention compares them); each chunk ends where a command or annotation ends.

/** the AOF directory in the data directory (redis.conf's appenddirname) */
export const aofDirName = 'appendonlydir';

export interface ManifestEntry {
  name: string;
  seq: number;
  type: 'b' | 'h' | 'i';
}

/** The manifest's lines; Coffer's file names never need Redis's quoting. */
export function parseManifest(text: string): ManifestEntry[] {
  const entries: ManifestEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const match = /^file (\S+) seq (\d+) type ([bhi])$/.exec(line.trim());
    if (match === null) throw new CofferError('EngineError', `Unexpected line in Redis's AOF manifest: ${JSON.stringify(line.slice(0, 200))}`);
    entries.push({ name: match[1]!, seq: Number(match[2]), type: match[3] as ManifestEntry['type'] });
  }
  return entries;
}

/** An incremental file of the manifest: `appendonly.aof.<seq>.incr.aof` as Coffer's redis.conf names them. */
export const isIncrementalName = (name: string): boolean => /^appendonly\.aof\.\d+\.incr\.aof$/.test(name);
export const isBaseRdbName = (name: string): boolean => /^appendonly\.aof\.\d+\.base\.rdb$/.test(name);

const chunkPattern = /^incr-(\d{10})-(\d{16})$/;

export interface ChunkPosition {
  seq: number;
  offset: number;
}

export function chunkName({ seq, offset }: ChunkPosition): string {
  if (!Number.isSafeInteger(seq) || seq < 0 || !Number.isSafeInteger(offset) || offset < 0) {
    throw new CofferError('EngineError', `No AOF chunk starts at file ${seq}, offset ${offset}.`);
  }
  return `incr-${String(seq).padStart(10, '0')}-${String(offset).padStart(16, '0')}`;
}

export const isChunkName = (name: string): boolean => chunkPattern.test(name);

export function parseChunkName(name: string): ChunkPosition {
  const match = chunkPattern.exec(name);
  if (match === null) throw new CofferError('EngineError', `${JSON.stringify(name)} is not an archived AOF chunk of Coffer's.`);
  return { seq: Number(match[1]), offset: Number(match[2]) };
}

/** the longest header or annotation line accepted: real ones are a few dozen bytes */
const maxLineBytes = 64 * 1024;

/**
 * Reads AOF bytes as they stream, chunk by chunk, without holding bulk payloads: where the last
 * complete item (command or annotation) ends, and each `#TS` annotation with where it starts.
 * Offsets count from the first byte fed.
 */
export class AofScanner {
  /** bytes fed so far */
  position = 0;
  /** where the last complete command or annotation ends */
  boundary = 0;
  firstStamp: number | undefined;
  lastStamp: number | undefined;
  private line: Buffer[] | undefined;
  private lineBytes = 0;
  private lineStart = 0;
  /** bulk strings still to come in the current command */
  private argsLeft = 0;
  /** payload bytes and CRLF still to come in the current bulk string */
  private bulkLeft = 0;

  constructor(private readonly onStamp?: (second: number, offset: number) => void) {}

  feed(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.bulkLeft > 0) {
        const n = Math.min(this.bulkLeft, chunk.length - i);
        i += n;
        this.position += n;
        this.bulkLeft -= n;
        if (this.bulkLeft === 0) {
          this.argsLeft -= 1;
          if (this.argsLeft === 0) this.boundary = this.position;
        }
        continue;
      }
      if (this.line === undefined) {
        this.line = [];
        this.lineBytes = 0;
        this.lineStart = this.position;
      }
      const newline = chunk.indexOf(0x0a, i);
      const end = newline === -1 ? chunk.length : newline + 1;
      this.line.push(chunk.subarray(i, end));
      this.lineBytes += end - i;
      this.position += end - i;
      i = end;
      if (this.lineBytes > maxLineBytes) throw notAof('a line longer than any AOF writes');
      if (newline === -1) continue;
      const text = Buffer.concat(this.line).toString('latin1');
      this.line = undefined;
      this.onLine(text);
    }
  }

  /** where the line being read began, while one is: an annotation's stamp is known once its line is whole */
  get openLineStart(): number | undefined {
    return this.line === undefined ? undefined : this.lineStart;
  }

  /** the AOF fed so far ends where a command or annotation ends */
  get complete(): boolean {
    return this.boundary === this.position;
  }

  private onLine(text: string): void {
    if (!text.endsWith('\r\n')) throw notAof('a line without CRLF');
    if (this.argsLeft > 0) {
      const bulk = /^\$(\d+)\r\n$/.exec(text);
      if (bulk === null) throw notAof(`${JSON.stringify(text.slice(0, 40))} where a bulk string was due`);
      this.bulkLeft = Number(bulk[1]) + 2;
      return;
    }
    if (text.startsWith('#')) {
      const stamp = /^#TS:(\d+)\r\n$/.exec(text);
      if (stamp !== null) {
        const second = Number(stamp[1]);
        this.firstStamp ??= second;
        this.lastStamp = second;
        this.onStamp?.(second, this.lineStart);
      }
      this.boundary = this.position;
      return;
    }
    const array = /^\*(\d+)\r\n$/.exec(text);
    if (array === null || Number(array[1]) < 1) throw notAof(`${JSON.stringify(text.slice(0, 40))} where a command was due`);
    this.argsLeft = Number(array[1]);
  }
}

function notAof(what: string): CofferError {
  return new CofferError('EngineError', `The archived AOF is not one Redis wrote: ${what}.`);
}

/**
 * Passes AOF bytes through up to the first annotation stamped after `lastSecond` (unix seconds),
 * and nothing from there on: the commands of `lastSecond` and before. What follows the cut is
 * read and dropped, so the source streams to its end.
 */
export function cutAfterSecond(lastSecond: number): Transform {
  let cut: number | undefined;
  const scanner = new AofScanner((second, offset) => {
    if (cut === undefined && second > lastSecond) cut = offset;
  });
  // the bytes of a line not read whole yet (a few dozen): it may be the annotation to cut at
  let held = Buffer.alloc(0);
  let done = false;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      if (done) return callback();
      const heldFrom = scanner.position - held.length;
      try {
        scanner.feed(chunk);
      } catch (err) {
        return callback(err as Error);
      }
      const data = held.length === 0 ? chunk : Buffer.concat([held, chunk]);
      const keepUpTo = cut ?? scanner.openLineStart ?? scanner.position;
      held = cut === undefined ? Buffer.from(data.subarray(keepUpTo - heldFrom)) : Buffer.alloc(0);
      done = cut !== undefined;
      callback(null, data.subarray(0, keepUpTo - heldFrom));
    },
    flush(callback: TransformCallback) {
      // what is kept must end with a whole command, or Redis would refuse (or truncate) it
      if (!done && !scanner.complete) return callback(notAof('it ends inside a command'));
      callback();
    },
  });
}
