import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CofferError, isCofferError } from '../../../common/index.js';
import type { ArchivedLogFile, BackupFacts, PointInTimeSource, RestoreLink } from '../engine.js';
import { aofDirName, chunkName, cutAfterSecond, isChunkName, parseChunkName } from './aof-files.js';

// A point-in-time restore of Redis: the backup (the RDB base of an AOF rewrite, backup.ts)
// rolled forward through the source's archived AOF (aof-archive.ts). The new instance's AOF
// directory is written by the host while the data directory is still its own, as the RDB of a
// plain restore is (restore.ts): the backup as the base, the archived chunks from the backup's
// first one on, concatenated and cut after the target's second, as the one incremental file, and
// a manifest naming both. Redis loads them at its first start, with its AOF on, as it loads its
// own: nothing replays through a client and no rewrite is needed.
//
// `#TS` times have one second's precision, so the target is too: a command stamped in the
// target's second counts as before it.

const baseName = 'appendonly.aof.1.base.rdb';
const incrName = 'appendonly.aof.1.incr.aof';
const manifestName = 'appendonly.aof.manifest';

export interface AofReplayPlan {
  chunks: string[];
  /** the last second kept (unix seconds); undefined: everything fetched */
  lastSecond?: number;
}

export function planAofReplay(files: readonly ArchivedLogFile[], base: BackupFacts, target: Date | undefined): AofReplayPlan {
  const start = base['wal-start'];
  if (base['wal-archiving'] !== 'on' || start === undefined || !isChunkName(start)) {
    throw new CofferError('BadRequest', 'The backup does not record where its AOF begins: it cannot be rolled forward to a point in time.');
  }
  const completedAt = base['completed-at'];
  if (target !== undefined && completedAt !== undefined && target.getTime() < Date.parse(completedAt)) {
    throw new CofferError('BadRequest', `The backup completed at ${completedAt}: it can be rolled forward to a later moment only, not to ${target.toISOString()}.`);
  }
  const lastSecond = target === undefined ? undefined : Math.floor(target.getTime() / 1000);
  const chunks = files
    .filter((file) => isChunkName(file.name) && file.name >= start)
    .map((file) => ({ ...parseChunkName(file.name), file }))
    .sort((a, b) => a.seq - b.seq || a.offset - b.offset);
  const chosen: string[] = [];
  let expected = parseChunkName(start);
  for (const chunk of chunks) {
    if (chunk.seq !== expected.seq || chunk.offset !== expected.offset) {
      throw new CofferError(
        'BadRequest',
        `The archived AOF has a gap: ${chunkName(expected)} is missing, so no moment after ${chosen.length === 0 ? 'the backup' : 'it'} can be restored.`,
      );
    }
    const bytes = Number(chunk.file.facts.bytes);
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new CofferError('BadRequest', `The archived AOF chunk ${chunk.file.name} does not record its length.`);
    chosen.push(chunk.file.name);
    const last = chunk.file.facts['last-commit'];
    // the first chunk with a command after the target holds the cut: nothing after it is needed
    if (lastSecond !== undefined && last !== undefined && Math.floor(Date.parse(last) / 1000) > lastSecond) return { chunks: chosen, lastSecond };
    expected = chunk.file.facts.final === 'yes' ? { seq: chunk.seq + 1, offset: 0 } : { seq: chunk.seq, offset: chunk.offset + bytes };
  }
  // nothing archived after the backup is a backup nothing was written after (the API claims no further than the archive reaches)
  return { chunks: chosen, ...(lastSecond === undefined ? {} : { lastSecond }) };
}

/**
 * Writes the restored AOF directory into `dataDir` (the host's still, and new: every file is
 * created exclusively) and answers the paths written, for the caller to hand over to the engine's user.
 */
export async function writeRestoredAof(dataDir: string, base: RestoreLink, source: PointInTimeSource, plan: AofReplayPlan): Promise<string[]> {
  const dir = join(dataDir, aofDirName);
  await mkdir(dir, { mode: 0o700 });
  const written = [join(dir, baseName), join(dir, incrName), join(dir, manifestName)];
  await pipeline(await base.open(), createWriteStream(written[0]!, { flags: 'wx', mode: 0o600 }));
  // one stream through the cut: it ends after the last command kept, whichever chunk that is in
  const joined = new PassThrough();
  const write = pipeline(joined, plan.lastSecond === undefined ? new PassThrough() : cutAfterSecond(plan.lastSecond), createWriteStream(written[1]!, { flags: 'wx', mode: 0o600 }));
  try {
    for (const name of plan.chunks) {
      const body = await source.open(name);
      await pipeline(body, joined, { end: false });
    }
    joined.end();
    await write;
  } catch (err) {
    joined.destroy();
    await write.catch(() => undefined);
    throw isCofferError(err) ? err : new CofferError('EngineError', `The archived AOF could not be read: ${String(err)}`, { cause: err });
  }
  await writeFile(written[2]!, `file ${baseName} seq 1 type b\nfile ${incrName} seq 1 type i\n`, { flag: 'wx', mode: 0o600 });
  return [dir, ...written];
}
