import { z } from 'zod';
import { configurationParameter, engineCapabilities, engineMetrics } from '../../common/index.js';
import { call, cast, defineService } from '../contract.js';

// Shared with the state database, which stores them with each datastore version.
export {
  configurationParameter,
  engineCapabilities,
  type ConfigurationParameter,
  type EngineCapabilities,
} from '../../common/index.js';

export const guestServiceStatus = z.enum([
  'BUILDING',
  'HEALTHY',
  // since 1.5: the engine runs but refuses writes, its volume full (Trove's BLOCKED)
  'BLOCKED',
  'RUNNING',
  'SHUTDOWN',
  'CRASHED',
  'FAILED',
  'RESTARTING',
  'UNKNOWN',
]);
export type GuestServiceStatus = z.infer<typeof guestServiceStatus>;

export const engineVersionReport = z.object({
  /** datastore name, e.g. "postgresql" */
  datastore: z.string(),
  /** engine module that runs it, e.g. "postgresql" */
  manager: z.string(),
  /** version name users pick, e.g. "15" */
  name: z.string(),
  /** full engine version, e.g. "15.19" */
  version: z.string(),
  active: z.boolean(),
  /** why the version cannot run here, when inactive */
  inactiveReason: z.string().nullable(),
  capabilities: engineCapabilities,
  parameters: z.array(configurationParameter),
});
export type EngineVersionReport = z.infer<typeof engineVersionReport>;

/** How an engine version is named where agents are matched to instances: `<manager>/<version name>`. */
export function engineVersionKey(manager: string, versionName: string): string {
  return `${manager}/${versionName}`;
}

/** An instance's TLS: the CA that signed its certificate, when that expires, and the port TLS clients use. */
export const instanceTlsReport = z.object({
  caCertificate: z.string().max(20_000),
  expiresAt: z.iso.datetime(),
  port: z.number().int().min(1).max(65_535),
});
export type InstanceTlsReport = z.infer<typeof instanceTlsReport>;

export const backupState = z.enum(['BUILDING', 'COMPLETED', 'FAILED']);

// Topic `conductor`, competing consumers: the only path from guests to the state database.
// 1.2: reportProgress. Heartbeats keep their 1.1 stamp, so a conductor still on 1.1 takes them
// from newer guests; it refuses their progress reports (logged there), which the guests never wait on.
// 1.3: updateBackup.
// 1.4: walArchived.
// 1.5: heartbeat status BLOCKED (a full volume), and a warning message with HEALTHY. A conductor
// on 1.4 refuses a BLOCKED beat (logged there); the guest's next beats say it again.
// 1.6: renewLease, the one call: a primary's guest waits for its answer.
// 1.7: heartbeat's engineMetrics. A conductor on 1.6 refuses a beat that carries them (logged there);
//      the beats between carry none.
// 1.8: agentHeartbeat's adopting.
// 1.9: heartbeats, the periodic beats of a host's guests in one message. A conductor on 1.8
//      refuses it (logged there), and those instances show silent after the expiry: upgrade the
//      conductors before the agents.
const heartbeatInput = z.object({
  instanceId: z.string(),
  status: guestServiceStatus,
  /** bytes used in the instance's volume: with the first HEALTHY beat, then every few minutes; the views show what the conductor kept */
  volumeUsedBytes: z.number().int().nonnegative().optional(),
  /**
   * what went wrong, with FAILED, CRASHED or BLOCKED: becomes the instance's fault message;
   * with HEALTHY a warning (e.g. a nearly full volume), recorded as an event once
   */
  message: z.string().max(1000).optional(),
  /** the instance's TLS as its clients see it, sent when it changed (a new certificate or CA) */
  tls: instanceTlsReport.optional(),
  /** since 1.7: what the guest measured of its engine, with a healthy beat, every minute at most */
  engineMetrics: engineMetrics.optional(),
});
export type HeartbeatInput = z.infer<typeof heartbeatInput>;

export const conductorContract = defineService('conductor', '1.9', {
  heartbeat: cast(heartbeatInput, { since: '1.1' }),
  /**
   * The periodic beats of the guests of one host that checked their engines together
   * (check-round.ts): one message and one state-database transaction instead of one each. Each
   * is handled as a `heartbeat` would be, all as old as the message.
   */
  heartbeats: cast(z.object({ beats: z.array(heartbeatInput).min(1).max(1000) }), { since: '1.9' }),
  /**
   * An agent announces itself (so the taskmanager can place instances on it) and the engine
   * versions its host can run (registered as datastore versions; missing binaries as inactive).
   */
  agentHeartbeat: cast(
    z.object({
      host: z.string(),
      engines: z.array(engineVersionReport),
      /** since 1.1: contract name to the version the agent and its guests serve (servesVersion) */
      contracts: z.record(z.string(), z.string()).optional(),
      /**
       * since 1.8: the instances the agent found when it started and has not taken up again yet
       * (sent only while there are some, so that an older conductor hears every other beat)
       */
      adopting: z.array(z.string()).optional(),
    }),
    { since: '1.1' },
  ),
  /**
   * How far a long operation (prepare, resize, restart, applying a configuration) got: shown with
   * the instance while its task runs. One older than the newest stored is dropped.
   */
  reportProgress: cast(
    z.object({
      instanceId: z.string(),
      step: z.string().min(1).max(100),
      percent: z.number().int().min(0).max(100),
    }),
    { since: '1.2' },
  ),
  /**
   * A backup's state as its guest saw it (Trove's update_backup): BUILDING once the engine tool
   * runs (with bytes stored so far, now and then), COMPLETED only once the object is stored whole
   * (with its size, SHA-256 and the engine's facts), FAILED with the reason. Reports for a backup
   * that already ended are dropped.
   */
  updateBackup: cast(
    z.object({
      instanceId: z.string(),
      backupId: z.string(),
      state: backupState,
      /** bytes stored so far (BUILDING) or in all (COMPLETED) */
      bytes: z.number().int().nonnegative().optional(),
      sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
      facts: z.record(z.string(), z.string()).optional(),
      /** the instance's data size when the backup started, in bytes (Trove's backup size) */
      dataBytes: z.number().int().nonnegative().optional(),
      message: z.string().max(1000).optional(),
    }),
    { since: '1.3' },
  ),
  /**
   * How far an instance's archived log reaches: every change committed up to `through` (ISO
   * 8601) is stored, so a point-in-time restore can reach it. Reports that would move it back
   * are dropped.
   */
  walArchived: cast(z.object({ instanceId: z.string(), through: z.string().datetime({ offset: true }) }), { since: '1.4' }),
  /**
   * A primary with replicas renews its lease (common/primary-lease.ts): `held` for `ttlMs`
   * counted from when the guest sent the request; `none` when it needs none (failover off, no
   * replicas, gone); `fenced` when a failover replaces or replaced it: its engine must not run.
   * `holdMs`: a longer lease asked for once by a guest whose agent is stopping for a restart
   * (capped by the conductor), so a restart that takes a few seconds fails nothing over.
   */
  renewLease: call(
    z.object({ instanceId: z.string(), holdMs: z.number().int().positive().optional() }),
    z.discriminatedUnion('lease', [
      z.object({ lease: z.literal('held'), ttlMs: z.number().int().positive() }),
      z.object({ lease: z.literal('none') }),
      z.object({ lease: z.literal('fenced') }),
    ]),
    2_000,
  ),
});

export const conductorTopic = 'conductor';
