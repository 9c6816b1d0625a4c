import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import type { Client } from 'pg';
import { escapeIdentifier, escapeLiteral } from 'pg';
import type { PrepareInput } from '../../../bus/index.js';
import { CofferError } from '../../../common/index.js';
import type { Logger } from '../../../common/index.js';
import type { ProcessRunner } from '../../process-runner.js';
import type {
  InstancePlacement,
  PrepareProgress,
  ReplicaLag,
  ReplicationAdmin,
  ReplicationGrant,
  ReplicationStatus,
  ReplicaSeed,
  ReplicaTimings,
} from '../engine.js';
import type { ReplicationModule } from '../engine-modules.js';
import { fileExists, writeEngineFile } from '../engine-files.js';
import type { EngineSpec, ReplicationSpec } from '../engine-spec-file.js';
import { passwordSql, rotateAdminPassword, withAdminClient, type AdminEndpoint } from './admin.js';
import type { ReplicaAccess, StandbySource } from './config.js';
import { lsnToNumber, PostgresqlFailover } from './failover.js';
import { copySource, passfileLine } from './replica-copy.js';
import { seedReplica } from './replica-seed.js';

// The replication module of PostgreSQL: physical streaming replication, asynchronous unless
// the source is set synchronous (then a commit waits until any one replica flushed it), one
// replication slot per replica so the primary keeps the WAL a replica has not received yet.
// Switchover and failover (fence, follow) are failover.ts.
//
// On the primary each replica gets a role of its own (REPLICATION, a strong generated password
// handed to the replica once, never logged) that pg_hba lets open replication connections from
// the replica's address and nothing else, and a physical slot. The replica is a base backup of
// the primary (pg_basebackup run as the replica's engine user, `-X stream` through its slot,
// so no WAL goes missing between the backup and the first streaming), started with
// standby.signal as a hot standby: it answers reads, and PostgreSQL itself refuses every write.
// Its password sits in a libpq passfile beside the configuration, never in postgresql.conf,
// where `SHOW primary_conninfo` would give it away. Detaching promotes it (pg_promote); its
// primary then drops the role, the slot and the pg_hba line.
//
// The role (replica of a source, or source of replicas) is part of the engine's spec
// (engine-spec-file.ts), from which every render starts: a restarted or adopted replica is a
// replica again, and a source keeps its replicas' access rules through any access update.

/** how long a detached replica's walsender may take to let go of its slot */
const slotReleaseMs = 10_000;

/** What the replication module needs of the instance's lifecycle. */
export interface ReplicationHost {
  placement: InstancePlacement;
  runner: ProcessRunner;
  logger: Logger;
  dataDir: string;
  /** the postmaster's log (stderr), the host's to read */
  logFile: string;
  /** the replica's libpq passfile (the engine user's, mode 0600) */
  passfile: string;
  /** written once the data directory is complete: a later prepare resumes rather than starts over */
  initialisedMarker: string;
  program(name: string): string;
  /** the major version of the instance's binaries (a backup restores into its own only) */
  versionName(): string;
  endpoint(): Promise<AdminEndpoint>;
  readSpec(): Promise<EngineSpec>;
  /** renders postgresql.conf and pg_hba.conf from `spec`, saves it, reloads a running server */
  applySpec(spec: EngineSpec): Promise<void>;
  /** the administrative password the guest logs in with from now on */
  setAdminPassword(password: string): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
  running(): Promise<number | undefined>;
  /** stops whatever runs in the data directory and removes it */
  discardDataDir(): Promise<void>;
}

/** Instance ids become role and slot names: lower case, digits and underscores, under 64 bytes. */
function nameFor(replicaId: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,49}$/.test(replicaId)) throw new CofferError('BadRequest', `"${replicaId}" is not an instance id.`);
  return replicaId.toLowerCase().replace(/-/g, '_');
}

export function replicationRole(replicaId: string): string {
  return `os_repl_${nameFor(replicaId)}`;
}

export function replicationSlot(replicaId: string): string {
  return `coffer_${nameFor(replicaId)}`;
}

/**
 * The address a replica's connections to its primary come from. On one host every instance
 * listens on a loopback address of its own, but the kernel gives a connection to any of them
 * the loopback route's source, 127.0.0.1 (libpq cannot bind another), so that is what pg_hba
 * sees. What keeps other instances' engines away from the primary is then the network wall
 * (only the replica's engine user may reach its primary's address and port) and the replica's
 * own role and password.
 */
export function replicaSourceAddress(address: string): string {
  return isIPv4(address) && address.startsWith('127.') ? '127.0.0.1' : address;
}

/** A source's replicas as its pg_hba lets them in. */
export function replicaAccessOf(replication: ReplicationSpec | undefined): ReplicaAccess[] {
  if (replication?.role !== 'source') return [];
  return replication.replicas.map((replica) => ({ user: replica.user, from: replicaSourceAddress(replica.address) }));
}

/** A replica's standby settings (config.ts), none for anything else. */
export function standbySourceOf(replication: ReplicationSpec | undefined, passfile: string): { standbyOf?: StandbySource } {
  if (replication?.role !== 'replica') return {};
  return { standbyOf: { ...replication.source, passfile } };
}

/** A source's replicas whose flush a commit waits for, in synchronous mode (config.ts). */
export function synchronousStandbysOf(replication: ReplicationSpec | undefined): { synchronousStandbys?: string[] } {
  if (replication?.role !== 'source' || replication.synchronous !== true) return {};
  return { synchronousStandbys: replication.replicas.map((replica) => replica.slot) };
}

function strongPassword(): string {
  return randomBytes(32).toString('base64url');
}

export class PostgresqlReplicationAdmin implements ReplicationAdmin {
  constructor(private readonly host: ReplicationHost) {}

  private admin<T>(work: (client: Client) => Promise<T>): Promise<T> {
    return this.host.endpoint().then((endpoint) => withAdminClient(endpoint, 'postgres', work));
  }

  async addReplica(replica: { id: string; address: string }): Promise<ReplicationGrant> {
    const user = replicationRole(replica.id);
    const slot = replicationSlot(replica.id);
    if (!isIPv4(replica.address)) throw new CofferError('BadRequest', `"${replica.address}" is not a replica address.`);
    const spec = await this.host.readSpec();
    if (spec.replication?.role === 'replica') {
      throw new CofferError('BadRequest', 'A replica cannot be the source of another replica.');
    }
    const password = strongPassword();
    const verifier = await passwordSql(password);
    await this.admin(async (client) => {
      // a synchronous source with no replica connected would wait forever for this session's commits
      await client.query('SET synchronous_commit = local');
      const known = (await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [user])).rowCount === 1;
      await client.query(
        `${known ? 'ALTER' : 'CREATE'} ROLE ${escapeIdentifier(user)} WITH REPLICATION LOGIN NOSUPERUSER NOINHERIT PASSWORD ${escapeLiteral(verifier)}`,
      );
      // reserved at once: the primary keeps its WAL from here on, before the replica's backup starts
      await client.query(
        'SELECT pg_create_physical_replication_slot($1, true) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)',
        [slot],
      );
    });
    const others = spec.replication?.role === 'source' ? spec.replication.replicas.filter((known) => known.id !== replica.id) : [];
    const synchronous = spec.replication?.role === 'source' && spec.replication.synchronous === true ? { synchronous: true } : {};
    await this.host.applySpec({
      ...spec,
      replication: { role: 'source', replicas: [...others, { id: replica.id, address: replica.address, user, slot }], ...synchronous },
    });
    const { address, port } = this.host.placement;
    return { address, port, user, password, slot, adminPassword: (await this.host.endpoint()).password };
  }

  async removeReplica(replicaId: string): Promise<void> {
    const user = replicationRole(replicaId);
    const slot = replicationSlot(replicaId);
    const spec = await this.host.readSpec();
    if (spec.replication?.role === 'source') {
      const replicas = spec.replication.replicas.filter((known) => known.id !== replicaId);
      // a synchronous source stays one without replicas: its commits wait until one comes
      const synchronous = spec.replication.synchronous === true;
      // first shut the door: the replica cannot connect again while its slot goes
      await this.host.applySpec({
        ...spec,
        replication: replicas.length === 0 && !synchronous ? undefined : { role: 'source', replicas, ...(synchronous ? { synchronous } : {}) },
      });
    }
    await this.admin(async (client) => {
      await client.query('SET synchronous_commit = local');
      const deadline = Date.now() + slotReleaseMs;
      for (;;) {
        await client.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL', [slot]);
        const dropped = await client
          .query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot])
          .then(
            () => true,
            // 55006: the walsender has not let go of it yet
            (err: { code?: string }) => {
              if (err.code !== '55006' || Date.now() > deadline) throw err;
              return false;
            },
          );
        if (dropped) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await client.query(`DROP ROLE IF EXISTS ${escapeIdentifier(user)}`);
    });
  }

  async prepareReplica(input: PrepareInput, grant: ReplicationGrant, progress: PrepareProgress = () => undefined, seed?: ReplicaSeed): Promise<ReplicaTimings> {
    if (input.databases.length > 0 || input.users.length > 0) {
      throw new CofferError('BadRequest', 'A replica takes its databases and users from its primary.');
    }
    const began = performance.now();
    const spec: EngineSpec = {
      memoryMb: input.memoryMb,
      access: input.access,
      overrides: input.overrides,
      replication: { role: 'replica', source: { address: grant.address, port: grant.port, user: grant.user, slot: grant.slot } },
    };
    // the password first: libpq reads it from here, for the base backup as for streaming
    await writeEngineFile(this.host.runner, this.host.passfile, passfileLine(grant));
    // the spec before any start: the standby settings and standby.signal come from it
    await this.host.applySpec(spec);
    let copiedFrom: ReplicaTimings['copiedFrom'];
    if (!(await fileExists(this.host.initialisedMarker))) {
      progress('restoring');
      copiedFrom = seed !== undefined && (await this.seeded(seed, grant)) ? 'backup' : 'source';
      if (copiedFrom === 'source') await copySource(this.host, grant);
    }
    const copied = performance.now();
    progress('starting');
    if ((await this.host.running()) === undefined) await this.host.start();
    const started = performance.now();
    await writeFile(this.host.initialisedMarker, new Date().toISOString());
    return { initMs: copied - began, startMs: started - copied, setupMs: performance.now() - started, ...(copiedFrom === undefined ? {} : { copiedFrom }) };
  }

  /** Whether the replica came up streaming from `seed` (replica-seed.ts); when not, it says why and copies its primary instead. */
  private async seeded(seed: ReplicaSeed, grant: ReplicationGrant): Promise<boolean> {
    try {
      await seedReplica(this.host, seed, grant.adminPassword);
      return true;
    } catch (err) {
      this.host.logger.warn({ err }, "the replica could not be made from its primary's backup: copying the primary instead");
      return false;
    }
  }

  async detach(): Promise<void> {
    const spec = await this.host.readSpec();
    if (spec.replication?.role !== 'replica') return;
    const promoted = await this.admin(async (client) => {
      const recovering = (await client.query<{ recovering: boolean }>('SELECT pg_is_in_recovery() AS recovering')).rows[0]!.recovering;
      if (!recovering) return true;
      return (await client.query<{ done: boolean }>('SELECT pg_promote(true, 60) AS done')).rows[0]!.done;
    });
    if (!promoted) throw new CofferError('EngineError', 'PostgreSQL did not finish its promotion within 60 s.');
    // a password of its own: its primary's, which it kept until now, must no longer open it
    const password = strongPassword();
    await rotateAdminPassword(await this.host.endpoint(), password);
    await this.host.setAdminPassword(password);
    const { replication: _dropped, ...standalone } = spec;
    await this.host.applySpec(standalone);
    await rm(this.host.passfile, { force: true });
  }

  fence(): Promise<{ position: number }> {
    return new PostgresqlFailover(this.host).fence();
  }

  follow(grant: ReplicationGrant): Promise<void> {
    return new PostgresqlFailover(this.host).follow(grant);
  }

  /** Rendered from the spec (config.ts) and reloaded: synchronous_standby_names needs no restart. */
  async setSynchronous(synchronous: boolean): Promise<void> {
    const spec = await this.host.readSpec();
    if (spec.replication?.role === 'replica') throw new CofferError('BadRequest', 'A replica has no replicas to wait for.');
    const replicas = spec.replication?.role === 'source' ? spec.replication.replicas : [];
    if (!synchronous && replicas.length === 0) {
      await this.host.applySpec({ ...spec, replication: undefined });
      return;
    }
    await this.host.applySpec({ ...spec, replication: { role: 'source', replicas, ...(synchronous ? { synchronous } : {}) } });
  }

  async status(): Promise<ReplicationStatus> {
    const spec = await this.host.readSpec();
    const replication = spec.replication;
    if (replication === undefined) return { role: 'standalone' };
    if (replication.role === 'replica') {
      const row = await this.admin(async (client) => {
        // received and flushed, what a promotion replays; GREATEST because after a restart the receive
        // position starts at the segment streaming resumes from, behind what was replayed (NULL until then)
        const result = await client.query<{ streaming: boolean; lag_bytes: string | null; lag_seconds: number | null; position: string | null }>(
          `SELECT EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') AS streaming,
                  GREATEST(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::text AS position,
                  pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::text AS lag_bytes,
                  CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                       ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END AS lag_seconds`,
        );
        return result.rows[0]!;
      });
      return {
        role: 'replica',
        source: { address: replication.source.address, port: replication.source.port },
        streaming: row.streaming,
        ...(row.lag_bytes === null ? {} : { lagBytes: Number(row.lag_bytes) }),
        ...(row.lag_seconds === null ? {} : { lagSeconds: row.lag_seconds }),
        ...(row.position === null ? {} : { position: lsnToNumber(row.position) }),
      };
    }
    const { rows, position } = await this.admin(async (client) => {
      const written = (await client.query<{ position: string }>('SELECT pg_current_wal_lsn()::text AS position')).rows[0]!.position;
      const result = await client.query<{ slot: string; connected: boolean; lag_bytes: string | null; lag_seconds: number | null }>(
        `SELECT s.slot_name AS slot, r.pid IS NOT NULL AS connected,
                pg_wal_lsn_diff(pg_current_wal_lsn(), COALESCE(r.replay_lsn, s.restart_lsn))::text AS lag_bytes,
                extract(epoch FROM r.replay_lag)::float8 AS lag_seconds
           FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
          WHERE s.slot_name = ANY($1)`,
        [replication.replicas.map((replica) => replica.slot)],
      );
      return { rows: result.rows, position: lsnToNumber(written) };
    });
    const replicas: ReplicaLag[] = replication.replicas.map((replica) => {
      const row = rows.find((candidate) => candidate.slot === replica.slot);
      return {
        replicaId: replica.id,
        connected: row?.connected ?? false,
        ...(row?.lag_bytes == null ? {} : { lagBytes: Number(row.lag_bytes) }),
        // null while the replica is idle and caught up: nothing to trail
        ...(row === undefined ? {} : { lagSeconds: row.lag_seconds ?? 0 }),
      };
    });
    return { role: 'source', replicas, position };
  }
}

export const postgresqlReplication: ReplicationModule<{ replicationHost(): ReplicationHost }> = {
  create: (lifecycle) => new PostgresqlReplicationAdmin(lifecycle.replicationHost()),
};
