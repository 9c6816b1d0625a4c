import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CofferError } from '../../../common/index.js';
import type { ReplicaSeed } from '../engine.js';
import { writeEngineFile } from '../engine-files.js';
import { withAdminClient } from './admin.js';
import { fetchArchivedFiles, planCatchUp, removeRecoveryFiles, restoreCommand } from './point-in-time.js';
import type { ReplicationHost } from './replication.js';
import { checkRestoreChain, clearSourceState, extractBaseBackup } from './restore.js';

// A replica made from its primary's latest backup instead of a fresh pg_basebackup: the base
// backup is unpacked (restore.ts), the primary's archived WAL since it is fetched beside it, and
// the standby replays that through restore_command before it streams the rest from its slot. A
// large primary is then read once for its backup, not again for each replica.
//
// The slot was made when the primary granted the replica (before this runs), so the primary
// keeps everything from then on; what lies between the archive's end and the slot's start may be
// gone (a segment recycled before the shipper stored it). A standby that stops making progress
// without streaming is given up on, and the replica is copied from its primary as before.
//
// restore_command lives in postgresql.auto.conf (read after Coffer's postgresql.conf, which is
// rendered from the spec alone) only until the standby streams: then it goes, with the files.

/** a standby whose replay has not moved for this long, and that does not stream, has stalled */
const stallMs = 30_000;
/** a receiver streaming this long under one pid was not refused its start */
const steadyMs = 2_000;
const pollMs = 250;
const autoConf = 'postgresql.auto.conf';

/**
 * Fills the empty data directory from `seed` and starts it as a standby of the source the spec
 * names (the spec applied before): answers once it streams, with the primary's admin password
 * in place (the backup carries the primary's roles). Fails, leaving it running, when it cannot.
 */
export async function seedReplica(host: ReplicationHost, seed: ReplicaSeed, adminPassword: string): Promise<void> {
  const { full } = checkRestoreChain(seed.chain, host.versionName());
  await host.discardDataDir();
  await host.setAdminPassword(adminPassword);
  // as for initdb: the host makes the directory and hands it over before the engine's user fills it
  await mkdir(host.dataDir, { mode: 0o700 });
  await host.runner.handOver(host.dataDir);
  await extractBaseBackup(host.runner, host.dataDir, full, host.program('pg_verifybackup'));
  await clearSourceState(host.dataDir);
  if (seed.log !== undefined) {
    await fetchArchivedFiles(host.runner, host.dataDir, seed.log, planCatchUp(await seed.log.list(), full.facts));
    await writeEngineFile(host.runner, join(host.dataDir, autoConf), `restore_command = '${restoreCommand}'\n`);
  }
  await host.start();
  await waitStreaming(host);
  await rm(join(host.dataDir, autoConf), { force: true });
  await removeRecoveryFiles(host.dataDir);
  await withAdminClient(await host.endpoint(), 'postgres', (client) => client.query('SELECT pg_reload_conf()'));
}

/**
 * Until the standby's WAL receiver streams, steadily: a receiver whose start position the primary
 * no longer has shows `streaming` for a moment (the primary answers START_REPLICATION before it
 * finds the segment missing) and then exits, to be started anew 5 s later with another pid; one
 * that keeps its pid streaming for `steadyMs` has what it needs. Fails once replay stalled for
 * `stallMs` without that.
 */
async function waitStreaming(host: ReplicationHost): Promise<void> {
  let replayed: string | undefined;
  let movedAt = Date.now();
  let streaming: { pid: number; since: number } | undefined;
  for (;;) {
    const state = await withAdminClient(await host.endpoint(), 'postgres', async (client) => {
      const result = await client.query<{ receiver: string | null; pid: number | null; replayed: string | null }>(
        'SELECT r.status AS receiver, r.pid, pg_last_wal_replay_lsn()::text AS replayed FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS r ON true',
      );
      return result.rows[0]!;
    }).catch(() => undefined);
    const now = Date.now();
    if (state?.receiver === 'streaming' && state.pid !== null) {
      if (streaming?.pid !== state.pid) streaming = { pid: state.pid, since: now };
      if (now - streaming.since >= steadyMs) return;
    } else {
      streaming = undefined;
    }
    if (state !== undefined && state.replayed !== replayed) {
      replayed = state.replayed ?? undefined;
      movedAt = now;
    }
    if (streaming === undefined && now - movedAt > stallMs) {
      throw new CofferError('EngineError', `The replica restored from a backup did not catch up with its primary (replay stalled at ${replayed ?? 'its start'}).`);
    }
    await sleep(pollMs);
  }
}
