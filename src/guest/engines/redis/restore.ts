import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { CofferError } from '../../../common/index.js';
import type { RestoreLink } from '../engine.js';
import { withAdminClient, type AdminEndpoint } from './admin.js';
import { info, sleep } from './backup.js';

// Restoring an RDB (backup.ts) into a new instance, in the steps the lifecycle's prepare runs:
//
// 1. `writeRdb`: the host writes the stream as the new data directory's `dump.rdb` while the
//    directory is still its own, before handing both to the engine's user (as it writes the
//    ACL file there): no program of that user can meddle with the path meanwhile.
// 2. The first start loads it. With the AOF on (Coffer's default) Redis 7 loads only the AOF
//    and would start empty beside the RDB, so that start runs with `appendonly no`, and
//    `enableAof` then turns the AOF on live: Redis rewrites it from the loaded data, and the
//    instance's own configuration (AOF on) is written back once it is complete.
// 3. The ACL file is the new instance's, made by its prepare: the RDB holds no users, so neither
//    the source's passwords nor its root reach the restore.

/** the AOF rewrite after a restore writes the whole dataset once more (~80 MB/s) */
const aofTimeoutMs = 60 * 60 * 1000;
const pollMs = 50;

/** `7.0.15` or `7.0` → [7, 0] */
function majorMinor(version: string): [number, number] | undefined {
  const match = /^(\d+)\.(\d+)/.exec(version);
  return match === null ? undefined : [Number(match[1]), Number(match[2])];
}

/** The one link of a chain a Redis instance of version `version` can restore: an RDB of its version or an older one. */
export function checkRdbChain(links: readonly RestoreLink[], version: string): RestoreLink {
  const [link] = links;
  if (link === undefined || links.length !== 1 || link.kind !== 'full') {
    throw new CofferError('BadRequest', 'Redis restores one full backup (incremental backups are not taken yet).');
  }
  if (link.facts.format !== 'rdb') {
    throw new CofferError('BadRequest', `The backup is not a Redis RDB snapshot (format ${link.facts.format ?? 'unknown'}).`);
  }
  const from = majorMinor(link.facts['redis-version'] ?? '');
  const to = majorMinor(version);
  // Redis reads the RDB formats of older versions, not of newer ones (7.2 writes RDB 11, 7.0 reads up to 10)
  if (from === undefined || to === undefined || from[0] > to[0] || (from[0] === to[0] && from[1] > to[1])) {
    throw new CofferError(
      'BadRequest',
      `The backup is of Redis ${link.facts['redis-version'] ?? 'of an unknown version'}, which this instance's Redis ${version} cannot read: ` +
        'restore it into an instance of the same version or a newer one.',
    );
  }
  return link;
}

/** Writes the link's stream to `path`, which must not exist (step 1). */
export async function writeRdb(link: RestoreLink, path: string): Promise<void> {
  const source = await link.open();
  // `wx`: never through whatever might already be at the path
  await pipeline(source, createWriteStream(path, { flags: 'wx', mode: 0o600 }));
}

/** Turns the AOF on in the running server and resolves once Redis has rewritten it from its data (step 2). */
export async function enableAof(endpoint: AdminEndpoint): Promise<void> {
  const deadline = Date.now() + aofTimeoutMs;
  await withAdminClient(endpoint, async (client) => {
    // starts the rewrite at once, or schedules it behind a running save: either shows in INFO below
    await client.call('CONFIG', ['SET', 'appendonly', 'yes']);
    for (;;) {
      const persistence = await info(client, 'persistence');
      const rewriting = persistence.get('aof_rewrite_in_progress') !== '0' || persistence.get('aof_rewrite_scheduled') !== '0';
      if (!rewriting) {
        if (persistence.get('aof_last_bgrewrite_status') !== 'ok') {
          throw new CofferError('EngineError', 'Redis could not write its AOF from the restored data: see its log, the disk may be full.');
        }
        return;
      }
      if (Date.now() > deadline) throw new CofferError('EngineError', 'Redis did not finish writing its AOF from the restored data in time.');
      await sleep(pollMs);
    }
  });
}
