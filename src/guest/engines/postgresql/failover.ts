import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CofferError } from '../../../common/index.js';
import type { ReplicationGrant } from '../engine.js';
import { writeEngineFile } from '../engine-files.js';
import type { EngineSpec } from '../engine-spec-file.js';
import { withAdminClient } from './admin.js';
import { copySource, passfileLine } from './replica-copy.js';
import type { ReplicationHost } from './replication.js';

// Switchover and failover, PostgreSQL's part (ReplicationAdmin.fence and .follow).
//
// Fencing is a fast shutdown: PostgreSQL's walsenders send every connected standby the WAL up to
// and including the shutdown checkpoint and wait until each confirms it wrote it before they exit.
// The position answered is the END of that checkpoint record (its start, pg_controldata's "Latest
// checkpoint location", plus its length as pg_waldump reads it, page headers counted), because a
// standby's position (pg_last_wal_receive_lsn()) is the end of what it received: a replica whose
// position is >= this holds every record the source wrote, the checkpoint included, and a caught-up
// replica is there exactly. The checkpoint's start would not do: a replica there lacks the
// checkpoint record, and once promoted its timeline begins before the old source's end of WAL,
// which then could not follow it without being copied anew.
//
// Following decides by trying, cheapest first. A running replica is re-pointed by a reload
// (primary_conninfo and primary_slot_name are reloadable since PostgreSQL 13, and
// recovery_target_timeline 'latest' makes it follow the new source's timeline). A stopped
// instance or a former source is started as a standby of the new source: a cleanly fenced source
// ends its WAL where the promoted replica's timeline begins and follows it; a source whose host
// died finishes its crash recovery as a standby. One whose WAL went past the start of the new
// timeline (a dead source's writes no replica received, a replica that received more than the
// promoted one) says so in its log at once, and is then copied anew from the new source
// (pg_basebackup through its slot, as a new replica), which undoes what it alone had. Only that
// fork discards data: one the new source refuses (its log says so at once) or that does not
// stream within followWaitMs fails the follow with its data kept, a former source stopped again.
//
// Not pg_rewind, which would copy only what changed: with a source server it copies every file
// of the source's data directory that is not a relation, and the socket PostgreSQL keeps there
// (lifecycle.ts: the one directory the engine's user owns) cannot be read (ENXIO), so every rewind
// that has anything to do fails. Once the socket lives elsewhere, pg_rewind (wal_log_hints = on,
// the replication role granted pg_ls_dir, pg_stat_file and pg_read_binary_file, which read no
// more than its base backup may, and a pg_hba line for its session) can take the copy's place.

/** how long a standby may take to stream from its new source, unless its log says why it cannot, before the follow fails */
const followWaitMs = 30_000;
/** how long a fresh copy may take to stream and replay the new source's catalog (its admin password) */
const catchUpWaitMs = 120_000;
const toolTimeoutMs = 30_000;

/** An LSN (`16/B374D848`) as the number Coffer compares positions with: hi * 2^32 + lo. */
export function lsnToNumber(lsn: string): number {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn.trim());
  if (match === null) throw new CofferError('EngineError', `"${lsn}" is not a WAL position.`);
  return parseInt(match[1]!, 16) * 2 ** 32 + parseInt(match[2]!, 16);
}

/** pg_controldata's `Name: value` lines. */
export function parseControlData(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const at = line.indexOf(':');
    if (at > 0) fields.set(line.slice(0, at).trim(), line.slice(at + 1).trim());
  }
  return fields;
}

/**
 * Where a WAL record of `length` bytes starting at `start` ends, as the standby that received it
 * reports it: records are MAXALIGNed (8 bytes), and a record that crosses a page boundary
 * continues after the next page's header (a long one at a segment's first page). A record
 * ending exactly at a page boundary ends there.
 */
export function recordEnd(start: number, length: number, pageSize: number, segmentSize: number): number {
  const shortHeader = 24;
  const longHeader = 40;
  let position = start;
  let remaining = Math.ceil(length / 8) * 8;
  for (;;) {
    const room = pageSize - (position % pageSize);
    if (remaining <= room) return position + remaining;
    position += room;
    remaining -= room;
    position += position % segmentSize === 0 ? longHeader : shortHeader;
  }
}

/**
 * What a standby logs when it cannot follow a new source: the new timeline began before the end
 * of its own WAL (the startup process), or the source refuses the point it asks to stream from.
 */
const forkedPast = /forked off current database system timeline|is not in this server's history|is ahead of the WAL flush position of this server/;
/** What it logs when the new source refuses it: the grant is not (or no longer) the one the source made. */
const refused = /password authentication failed for user "os_repl_|no pg_hba\.conf entry for replication connection/;

type FollowOutcome = 'streaming' | 'forked' | 'stalled';

export class PostgresqlFailover {
  constructor(private readonly host: ReplicationHost) {}

  private async tool(name: string, args: string[], timeoutMs = toolTimeoutMs): Promise<string> {
    // C locale: the labels parsed below are the untranslated ones
    const result = await this.host.runner.run(this.host.program(name), args, { timeoutMs, env: { LC_ALL: 'C', LANG: 'C' } });
    return result.stdout;
  }

  private async controlData(): Promise<Map<string, string>> {
    return parseControlData(await this.tool('pg_controldata', ['-D', this.host.dataDir]));
  }

  async fence(): Promise<{ position: number }> {
    const spec = await this.host.readSpec();
    if (spec.replication?.role !== 'source') {
      throw new CofferError('BadRequest', 'Only the source of replicas can be fenced.');
    }
    // a fast shutdown: sessions are cut, and the walsenders hand the shutdown checkpoint to every connected replica
    await this.host.stop();
    const control = await this.controlData();
    const state = control.get('Database cluster state');
    if (state !== 'shut down') {
      throw new CofferError(
        'Conflict',
        `PostgreSQL did not shut down cleanly (its cluster state is "${state ?? 'unknown'}"): its last position is unknown; fail over instead.`,
      );
    }
    const checkpoint = control.get('Latest checkpoint location');
    const timeline = control.get("Latest checkpoint's TimeLineID");
    const pageSize = Number(control.get('WAL block size'));
    const segmentSize = Number(control.get('Bytes per WAL segment'));
    if (checkpoint === undefined || timeline === undefined || !(pageSize > 0) || !(segmentSize > 0)) {
      throw new CofferError('EngineError', 'pg_controldata did not report the latest checkpoint.');
    }
    const dump = await this.tool('pg_waldump', [
      `--path=${join(this.host.dataDir, 'pg_wal')}`,
      `--timeline=${timeline}`,
      `--start=${checkpoint}`,
      '--limit=1',
    ]);
    const length = /len \(rec\/tot\):\s*\d+\/\s*(\d+)/.exec(dump)?.[1];
    if (length === undefined || !/CHECKPOINT_SHUTDOWN/.test(dump)) {
      throw new CofferError('EngineError', `pg_waldump did not show the shutdown checkpoint at ${checkpoint}.`);
    }
    return { position: recordEnd(lsnToNumber(checkpoint), Number(length), pageSize, segmentSize) };
  }

  async follow(grant: ReplicationGrant): Promise<void> {
    const spec = await this.host.readSpec();
    // a former source forgets its replicas: their access rules and synchronous mode go with this spec, their slots below
    const following: EngineSpec = {
      ...spec,
      replication: { role: 'replica', source: { address: grant.address, port: grant.port, user: grant.user, slot: grant.slot } },
    };
    await writeEngineFile(this.host.runner, this.host.passfile, passfileLine(grant));
    if (spec.replication?.role === 'replica' && (await this.host.running()) !== undefined) {
      const mark = await this.logSize();
      // reloaded with the admin password the standby's catalog still holds; the new source's arrives by streaming
      await this.host.applySpec(following);
      await this.host.setAdminPassword(grant.adminPassword);
      // stalled: still a standby, of the new source, which it streams from once it can reach it
      if (this.settled(await this.follows(grant, mark, followWaitMs), grant)) return this.dropSlots();
    } else {
      // a running former source shuts down fast; a dead host's leftovers are cleared
      await this.host.stop();
      await this.host.applySpec(following);
      await this.host.setAdminPassword(grant.adminPassword);
      const mark = await this.logSize();
      // standby.signal comes with the start (the spec says replica); crash recovery, if needed, is part of it
      await this.host.start();
      const outcome = await this.follows(grant, mark, followWaitMs);
      // held down as it came, until a later follow
      if (outcome === 'stalled') await this.host.stop();
      if (this.settled(outcome, grant)) return this.dropSlots();
    }
    this.host.logger.warn(
      { source: `${grant.address}:${grant.port}` },
      "its WAL went past the point where the new source's timeline began: copying the new source's data anew",
    );
    await this.host.stop();
    await copySource(this.host, grant).catch((err: unknown) => {
      const why = err instanceof CofferError ? ` ${err.message}` : '';
      throw new CofferError('Conflict', `This instance cannot follow its new source as it is, and copying that source's data failed; it stays stopped.${why}`, {
        cause: err,
      });
    });
    await this.host.start();
    this.settled(await this.follows(grant, undefined, catchUpWaitMs), grant);
    await this.dropSlots();
  }

  /**
   * True once it streams, false when it forked and must be copied anew. Only a fork seen in the
   * log discards data: a source that cannot be reached (yet) fails the follow, data kept.
   */
  private settled(outcome: FollowOutcome, grant: ReplicationGrant): boolean {
    if (outcome === 'stalled') {
      throw new CofferError('EngineError', `PostgreSQL does not stream from its new source ${grant.address}:${grant.port}; see its log. Its data is kept: follow again.`);
    }
    return outcome === 'streaming';
  }

  private async logSize(): Promise<number> {
    return (await stat(this.host.logFile).catch(() => undefined))?.size ?? 0;
  }

  /** What the postmaster logged since `mark`. */
  private async logSince(mark: number): Promise<string> {
    const file = await open(this.host.logFile, 'r').catch(() => undefined);
    if (file === undefined) return '';
    try {
      const { size } = await file.stat();
      if (size <= mark) return '';
      const buffer = Buffer.alloc(Math.min(size - mark, 1 << 20));
      const { bytesRead } = await file.read(buffer, 0, buffer.length, Math.max(mark, size - buffer.length));
      return buffer.subarray(0, bytesRead).toString('utf8');
    } finally {
      await file.close();
    }
  }

  /**
   * Whether the standby streams from `grant`'s source with its catalog replayed from there (the
   * guest logs in with the new source's admin password, which only that replay brings); `forked`
   * at once when the log (since `mark`) shows it cannot: its WAL went past the new timeline's start.
   */
  private async follows(grant: ReplicationGrant, mark: number | undefined, waitMs: number): Promise<FollowOutcome> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const streaming = await withAdminClient(
        await this.host.endpoint(),
        'postgres',
        async (client) =>
          (
            await client.query<{ streaming: boolean }>(
              `SELECT EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming' AND sender_host = $1 AND sender_port = $2) AS streaming`,
              [grant.address, grant.port],
            )
          ).rows[0]!.streaming,
        2_000,
      ).catch(() => false);
      if (streaming) return 'streaming';
      const logged = mark === undefined ? '' : await this.logSince(mark);
      if (forkedPast.test(logged)) return 'forked';
      if (refused.test(logged)) return 'stalled';
      if (Date.now() > deadline) return 'stalled';
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** A standby keeps no slots: a former source's would hold WAL for replicas that now follow another. */
  private async dropSlots(): Promise<void> {
    await withAdminClient(await this.host.endpoint(), 'postgres', async (client) => {
      await client.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active');
    });
  }
}
