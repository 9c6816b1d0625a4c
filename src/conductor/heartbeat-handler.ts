import type { z } from 'zod';
import { LogThrottle, type conductorContract, type MessageMeta } from '../bus/index.js';
import { newUuid } from '../common/index.js';
import type { Logger } from '../common/index.js';
import type { GuestReport, InstanceTls, Repositories, ServiceStatusRow, StateStore } from '../db/index.js';
import type { StatusChange } from './instance-status-publisher.js';

type Heartbeat = z.output<typeof conductorContract.methods.heartbeat.input>;

function sameTls(stored: InstanceTls | null, reported: InstanceTls): boolean {
  return (
    stored !== null &&
    stored.caCertificate === reported.caCertificate &&
    stored.expiresAt === reported.expiresAt &&
    stored.port === reported.port
  );
}

/** statuses whose message is a fault: the engine failed, or (BLOCKED) refuses writes, its volume full */
const failing = new Set(['FAILED', 'CRASHED', 'BLOCKED']);

/**
 * What the beat carried that the stored status row lacks. Most beats carry nothing new (usage
 * rides along every few minutes, a health detail only with a failure): they write nothing more.
 * A measurement is as old as the message that carried it (it may have waited in a queue), but
 * never newer than now: a guest's clock running ahead must not make it look fresh.
 */
function guestReport(beat: Heartbeat, meta: MessageMeta, now: Date, stored: ServiceStatusRow | undefined): GuestReport {
  const measuredAt = new Date(Math.min(Math.floor(meta.sentAt), now.getTime()));
  const detail = healthDetail(beat);
  return {
    ...(beat.volumeUsedBytes === undefined ? {} : { volumeUsage: { usedBytes: beat.volumeUsedBytes, measuredAt } }),
    ...(detail === undefined || detail === (stored?.healthDetail ?? null) ? {} : { healthDetail: detail }),
    ...(beat.engineMetrics === undefined ? {} : { engineMetrics: { values: beat.engineMetrics, measuredAt } }),
  };
}

/**
 * A failure's message, null once the engine reports anything but a failure. A guest failing the
 * same way again says so without repeating the message (undefined): the last one stands. A
 * healthy engine's message is a warning (its volume nearly full), null once it is gone.
 */
function healthDetail(beat: Heartbeat): string | null | undefined {
  return failing.has(beat.status) ? beat.message : (beat.message ?? null);
}

type Outcome = 'unknown' | 'stale' | 'kept' | 'written' | 'changed';

/**
 * One beat written within `tx`. The staleness check locks the instance's last-seen row until the
 * status is written, so two heartbeats handled at once (prefetch, competing conductors) cannot
 * end with the older one's status.
 */
async function writeBeat(tx: Repositories, beat: Heartbeat, meta: MessageMeta, now: Date): Promise<Outcome> {
  const instance = await tx.instances.get(beat.instanceId);
  if (instance === undefined) return 'unknown'; // deleted meanwhile
  if (!(await tx.conductorLastSeen.recordIfNewer(beat.instanceId, 'heartbeat', meta.sentAt))) return 'stale';
  // a guest reports its TLS on a change (a new certificate or CA) and now and then again,
  // whatever its status; only a change is written (it moves the instance's `updated`)
  if (beat.tls !== undefined && !sameTls(instance.tls, beat.tls)) await tx.instances.update(beat.instanceId, { tls: beat.tls });
  const current = await tx.serviceStatuses.get(beat.instanceId);
  if (current?.status !== 'RESTART_REQUIRED') {
    await tx.serviceStatuses.set({ instanceId: beat.instanceId, status: beat.status, updatedAt: now });
  }
  // kept even while the status waits for a restart: views read usage from here, not the guest
  await tx.serviceStatuses.report(beat.instanceId, guestReport(beat, meta, now, current));
  if (current?.status === 'RESTART_REQUIRED') return 'kept';
  const changed = current?.status !== beat.status;
  // The guest puts what a tenant may read on the first line, the engine's log after it.
  const readable = beat.message === undefined ? null : (beat.message.split('\n', 1)[0] ?? '').slice(0, 255);
  const failed = failing.has(beat.status);
  if (failed && beat.message !== undefined) {
    // A guest that keeps failing the same way says so on every beat: one fault row is enough.
    const latest = current?.status === beat.status ? await tx.faults.latest(beat.instanceId) : undefined;
    if (latest?.details !== beat.message) {
      await tx.faults.record({ id: newUuid(), instanceId: beat.instanceId, message: readable ?? '', details: beat.message, createdAt: now });
    }
  }
  // a warning is recorded when it appears (the guest repeats it on every beat while it holds)
  if (!failed && beat.message !== undefined && beat.message !== (current?.healthDetail ?? null)) {
    await tx.instanceEvents.record({ instanceId: beat.instanceId, type: 'warning', name: beat.status, message: readable, createdAt: now });
  }
  if (changed) {
    await tx.instanceEvents.record({
      instanceId: beat.instanceId,
      type: 'status',
      name: beat.status,
      message: failed ? readable : null,
      createdAt: now,
    });
  }
  return changed ? 'changed' : 'written';
}

/**
 * A guest heartbeat becomes the instance's service status, and what it carries (volume usage,
 * the engine's health) is kept beside it, so views are served from the state DB alone. Messages
 * can arrive late or twice (redelivery, competing conductors): one older than the newest seen for
 * the instance is dropped, as Trove's conductor does with its `sent` stamp. The periodic beats of
 * a host's guests come together (`heartbeats`): one transaction for all of them, each beat then
 * written alone should that fail, so that one beat that cannot be written silences no other.
 */
export function heartbeatHandlers(store: StateStore, logger: Logger, onStatusChange: (change: StatusChange) => void = () => {}) {
  // Queue names are global on a vhost: a second deployment there shows up as a stream of
  // heartbeats from instances this state database never had. One line a minute says so.
  const strangers = new LogThrottle(60_000);
  const after = async (beat: Heartbeat, meta: MessageMeta, now: Date, outcome: Outcome): Promise<void> => {
    if (outcome === 'changed') onStatusChange({ instanceId: beat.instanceId, status: beat.status, at: now, requestId: meta.context.requestId });
    if (outcome === 'stale') logger.debug({ instanceId: beat.instanceId }, 'stale heartbeat dropped');
    if (outcome === 'unknown') {
      if ((await store.instances.get(beat.instanceId, { includeDeleted: true })) !== undefined) {
        logger.debug({ instanceId: beat.instanceId }, 'heartbeat of a deleted instance dropped');
        return;
      }
      const { log, suppressed } = strangers.take('unknown-instance');
      if (log) {
        logger.warn(
          { instanceId: beat.instanceId.slice(0, 80), ...(suppressed > 0 ? { suppressedSinceLastLine: suppressed } : {}) },
          'heartbeat from an instance this state database never had: another Coffer deployment (different bus key) is using this vhost?',
        );
      }
    }
  };
  const one = async (beat: Heartbeat, meta: MessageMeta): Promise<void> => {
    const now = new Date();
    const outcome = await store.transaction((tx) => writeBeat(tx, beat, meta, now));
    await after(beat, meta, now, outcome);
  };
  const many = async ({ beats }: { beats: Heartbeat[] }, meta: MessageMeta): Promise<void> => {
    const now = new Date();
    let outcomes: Outcome[];
    try {
      outcomes = await store.transaction(async (tx) => {
        const written: Outcome[] = [];
        for (const beat of beats) written.push(await writeBeat(tx, beat, meta, now));
        return written;
      });
    } catch (err) {
      logger.warn({ err, beats: beats.length }, 'heartbeats not written together: writing each alone');
      for (const beat of beats) {
        await one(beat, meta).catch((beatErr: unknown) => logger.error({ err: beatErr, instanceId: beat.instanceId }, 'heartbeat not written'));
      }
      return;
    }
    for (const [i, beat] of beats.entries()) await after(beat, meta, now, outcomes[i]!);
  };
  return { one, many };
}

/** The handler of single beats alone (`heartbeat`). */
export function heartbeatHandler(store: StateStore, logger: Logger, onStatusChange: (change: StatusChange) => void = () => {}) {
  return heartbeatHandlers(store, logger, onStatusChange).one;
}
