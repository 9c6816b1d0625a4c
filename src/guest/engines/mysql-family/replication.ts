import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import type { RowDataPacket } from 'mysql2/promise';
import { escape } from 'mysql2';
import type { PrepareInput } from '../../../bus/index.js';
import { CofferError } from '../../../common/index.js';
import type { Logger } from '../../../common/index.js';
import type {
  InstancePlacement,
  PrepareProgress,
  ReplicationAdmin,
  ReplicationGrant,
  PointInTimeSource,
  ReplicationStatus,
  ReplicaSeed,
  ReplicaTimings,
  RestoreLink,
} from '../engine.js';
import type { ReplicationModule } from '../engine-modules.js';
import { fileExists } from '../engine-files.js';
import type { EngineSpec } from '../engine-spec-file.js';
import type { MysqlFamilyAdmin } from './admin.js';
import { applyReceived, changeMasterStatement, MysqlFailover, replicaPosition, slaveStatus, sourcePosition } from './failover.js';
import { account, adminUser, replicationUserPrefix } from './sql.js';

// The replication module of MariaDB: asynchronous GTID replication (MASTER_USE_GTID=slave_pos).
//
// The primary writes a row-based binary log in GTID strict mode from its very first start
// (config.ts replicationOptions; `.binlog-from-start` records that), with a server id of its
// own. Each replica gets an account `os_repl_<id>` at the address its connections come from,
// with REPLICATION SLAVE alone (it reads the binary log, never a table) and a strong password
// made for it, handed over once and never logged.
//
// The initial copy: the replica initialises itself exactly as the primary did (the same
// install-db and init SQL, with the primary's administrative password, which is all of the
// primary's state the binary log does not hold) and replays the primary's whole binary log
// from the empty GTID position. Why not a mariabackup stream of the primary: mariabackup reads
// the primary's data files, which only the primary's guest can reach, and the contract carries
// no bytes from it to the replica's guest; the replica's engine user reaches nothing of the
// primary but its SQL port, where the replication account sees the binary log and nothing
// else. The price: a primary whose binary log no longer starts at its creation (made before
// replication existed, or whose archive purged files) cannot get replicas this way (addReplica
// says so), and a replica's first sync replays the primary's history.
//
// Where the primary has a completed backup, the replica starts from that instead (the taskmanager
// sends it as prepare's restore, and addReplica then skips the check above): the chain restored
// as a restore does, the guest's account given the primary's administrative password without a
// word in the replica's binary log (which must hold the primary's transactions alone, or a
// failover would find it diverged), the primary's archived binary log since the backup replayed
// with its GTIDs (binlog-replay.ts: the archive purges what it shipped from the primary), and
// replication started where that ends. A seed that fails (the backup unreadable here, the
// primary's log purged past it) falls back to the replay from nothing.
//
// The replica runs read_only: tenants' writes are refused with the engine's own error. A root
// the tenant enabled on the primary is root on the replica too (its accounts come from the
// primary) and keeps READ ONLY ADMIN: it can still write on its own replica and so break it;
// that harms nobody but the tenant, and the API refuses root changes on a replica.
//
// The role is part of the engine's spec: a restarted or adopted replica renders read_only
// again, and its server resumes replication from its own master.info.
//
// Switchover and failover (fence, follow, setSynchronous, positions) are failover.ts.

const connectTimeoutMs = 60_000;

type Row = RowDataPacket & Record<string, unknown>;

/** What the replication module needs of the instance's lifecycle. */
export interface MysqlReplicationHost {
  placement: InstancePlacement;
  logger: Logger;
  admin: MysqlFamilyAdmin;
  /** the marker of a binary log on since initialisation */
  binlogFromStart: string;
  /** the marker of a finished prepare */
  initialised: string;
  spec(): Promise<EngineSpec>;
  /** renders my.cnf from `spec` and saves it; a running server reads it at its next start */
  applySpec(spec: EngineSpec): Promise<void>;
  /** a fresh data directory, as prepare makes it, its server not started */
  initialise(adminPassword: string, spec: EngineSpec): Promise<void>;
  /**
   * The data directory from the primary's backup `chain` (rolled forward through the primary's
   * archived binary log `log` where it follows the backup), with the primary's administrative
   * password, the server stopped and not yet initialised: answers the GTID position replication
   * goes on from
   */
  restoreReplica(chain: readonly RestoreLink[], adminPassword: string, spec: EngineSpec, log?: PointInTimeSource): Promise<string>;
  /** the administrative password the guest logs in with */
  adminPassword(): Promise<string>;
  setAdminPassword(password: string): Promise<void>;
  /** whether plaintext clients are refused, from `access` (rendered into my.cnf from then on) */
  saveTlsRequirement(access: EngineSpec['access']): Promise<void>;
  start(): Promise<void>;
  /** starts the server for `spec` with no TCP listener and no replication thread (my.cnf is rendered for that start only) */
  startIsolated(spec: EngineSpec): Promise<void>;
  stop(): Promise<void>;
  running(): Promise<boolean>;
  /** the binary log's state file a clean shutdown leaves (`<binlog>.state`); undefined while running or after a crash */
  binlogState(): Promise<string | undefined>;
}

function nameFor(replicaId: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,49}$/.test(replicaId)) throw new CofferError('BadRequest', `"${replicaId}" is not an instance id.`);
  return replicaId.toLowerCase().replace(/-/g, '_');
}

export function replicationUser(replicaId: string): string {
  return `${replicationUserPrefix}${nameFor(replicaId)}`;
}

/** On one host the replica's connections come from the loopback route's source, 127.0.0.1 (see postgresql/replication.ts). */
export function replicaSourceAddress(address: string): string {
  return isIPv4(address) && address.startsWith('127.') ? '127.0.0.1' : address;
}

function strongPassword(): string {
  return randomBytes(32).toString('base64url');
}

export class MysqlFamilyReplicationAdmin implements ReplicationAdmin {
  private readonly failover: MysqlFailover;

  constructor(private readonly host: MysqlReplicationHost) {
    this.failover = new MysqlFailover(host);
  }

  async addReplica(replica: { id: string; address: string; fromBackup?: boolean }): Promise<ReplicationGrant> {
    const user = replicationUser(replica.id);
    if (!isIPv4(replica.address)) throw new CofferError('BadRequest', `"${replica.address}" is not a replica address.`);
    const spec = await this.host.spec();
    if (spec.replication?.role === 'replica') throw new CofferError('BadRequest', 'A replica cannot be the source of another replica.');
    // a replica from a backup replays the binary log from the backup's position on, not from the start
    const fromStart = replica.fromBackup !== true;
    if (fromStart && !(await fileExists(this.host.binlogFromStart))) {
      throw new CofferError('BadRequest', "This instance's binary log does not go back to its creation: it cannot be the source of a replica.");
    }
    const password = strongPassword();
    const from = replicaSourceAddress(replica.address);
    await this.host.admin.run(async (connection) => {
      // the binary log's first file must still start with no GTID before it (its Gtid_list
      // event lists none): nothing was purged
      const [logs] = await connection.query<Row[]>('SHOW BINARY LOGS');
      const first = logs[0]?.Log_name;
      const [events] = first === undefined ? [[]] : await connection.query<Row[]>(`SHOW BINLOG EVENTS IN ${escape(String(first))} LIMIT 4`);
      const gtidList = events.find((event) => event.Event_type === 'Gtid_list');
      if (fromStart && (gtidList === undefined || String(gtidList.Info) !== '[]')) {
        throw new CofferError('BadRequest', "This instance's binary log no longer starts at its creation: it cannot be the source of a replica.");
      }
      // not in the replicas' binary log: the account is the primary's alone
      await connection.query('SET SESSION sql_log_bin = 0');
      await connection.query(`CREATE OR REPLACE USER ${account(user, from)} IDENTIFIED BY ${escape(password)}`);
      await connection.query(`GRANT REPLICATION SLAVE ON *.* TO ${account(user, from)}`);
    });
    const source = spec.replication?.role === 'source' ? spec.replication : { role: 'source' as const, replicas: [] };
    const others = source.replicas.filter((known) => known.id !== replica.id);
    await this.host.applySpec({ ...spec, replication: { ...source, replicas: [...others, { id: replica.id, address: replica.address, user, slot: user }] } });
    const { address, port } = this.host.placement;
    return { address, port, user, password, slot: user, adminPassword: await this.host.adminPassword() };
  }

  async removeReplica(replicaId: string): Promise<void> {
    const user = replicationUser(replicaId);
    const spec = await this.host.spec();
    const known = spec.replication?.role === 'source' ? spec.replication.replicas.find((replica) => replica.id === replicaId) : undefined;
    await this.host.admin.run(async (connection) => {
      await connection.query('SET SESSION sql_log_bin = 0');
      const [hosts] = await connection.query<Row[]>('SELECT Host AS host FROM mysql.user WHERE User = ?', [user]);
      for (const row of hosts) await connection.query(`DROP USER IF EXISTS ${account(user, String(row.host))}`);
      // its binlog dump thread ends too: the account no longer exists, the stream must not go on
      const [threads] = await connection.query<Row[]>("SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = ? AND COMMAND LIKE 'Binlog Dump%'", [user]);
      for (const thread of threads) await connection.query(`KILL CONNECTION ${Number(thread.id)}`).catch(() => undefined);
    });
    if (known !== undefined && spec.replication?.role === 'source') {
      const replicas = spec.replication.replicas.filter((replica) => replica.id !== replicaId);
      // a synchronous source stays one with no replica left: its commits wait for the next
      const keep = replicas.length > 0 || spec.replication.synchronous === true;
      await this.host.applySpec({ ...spec, replication: keep ? { ...spec.replication, replicas } : undefined });
    }
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
    const fresh = !(await fileExists(this.host.initialised));
    if (fresh && seed !== undefined) {
      progress('restoring');
      if (await this.seeded(seed, grant, spec, input.access)) {
        return { initMs: performance.now() - began, startMs: 0, setupMs: 0, copiedFrom: 'backup' };
      }
    }
    if (fresh) {
      progress('initialising');
      // as the primary was made: the binary log then brings everything it did since
      await this.host.initialise(grant.adminPassword, spec);
    }
    const initialised = performance.now();
    await this.host.saveTlsRequirement(input.access);
    await this.host.applySpec(spec);
    progress('starting');
    await this.host.start();
    const started = performance.now();
    if (fresh || (await this.host.admin.run(slaveStatus)) === undefined) await this.replicateFrom(grant, '');
    await this.waitConnected();
    return {
      initMs: initialised - began,
      startMs: started - initialised,
      setupMs: performance.now() - started,
      ...(fresh ? { copiedFrom: 'source' as const } : {}),
    };
  }

  /**
   * Whether the replica came up replicating from its primary's backup: the chain restored, and
   * replication started at the GTID position the backup ends at (the primary's binary log must
   * still hold what followed). When not, it says why, and the replica is made as its primary
   * was instead. `.initialised` is written last: a prepare interrupted before restores anew.
   */
  private async seeded(seed: ReplicaSeed, grant: ReplicationGrant, spec: EngineSpec, access: PrepareInput['access']): Promise<boolean> {
    try {
      const position = await this.host.restoreReplica(seed.chain, grant.adminPassword, spec, seed.log);
      await this.host.saveTlsRequirement(access);
      await this.host.applySpec(spec);
      await this.host.start();
      await this.replicateFrom(grant, position);
      await this.waitConnected();
      await writeFile(this.host.initialised, new Date().toISOString());
      return true;
    } catch (err) {
      this.host.logger.warn({ err }, "the replica could not be made from its primary's backup: making it as its primary was made instead");
      await this.host.stop().catch(() => undefined);
      return false;
    }
  }

  private async replicateFrom(grant: ReplicationGrant, position: string): Promise<void> {
    await this.host.admin.run(async (connection) => {
      await connection.query('STOP SLAVE').catch(() => undefined);
      await connection.query(`SET GLOBAL gtid_slave_pos = ${escape(position)}`);
      await connection.query(changeMasterStatement(grant));
      await connection.query('START SLAVE');
    });
  }

  /**
   * Until the IO thread has connected and the primary began sending (its first event names the
   * binary log file: a position the primary no longer holds gets error 1236 instead, which
   * fails the prepare, as a refused login does)
   */
  private async waitConnected(): Promise<void> {
    const deadline = Date.now() + connectTimeoutMs;
    for (;;) {
      const status = await this.host.admin.run(slaveStatus);
      if (status?.Slave_IO_Running === 'Yes' && String(status.Master_Log_File ?? '') !== '') return;
      const error = String(status?.Last_IO_Error ?? '') || String(status?.Last_SQL_Error ?? '');
      if (error !== '' && (Date.now() > deadline || /1236|denied/i.test(error) || String(status?.Slave_SQL_Running) === 'No')) {
        const advice = /1236/.test(error)
          ? ' Take a backup of the primary and create the replica again: a replica starts from its primary\'s newest backup and needs its binary log from there on only.'
          : '';
        throw new CofferError('EngineError', `The replica could not replicate from its primary: ${error}${advice}`);
      }
      if (Date.now() > deadline) throw new CofferError('EngineError', 'The replica did not connect to its primary within 60 s.');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async detach(): Promise<void> {
    const spec = await this.host.spec();
    if (spec.replication?.role !== 'replica') return;
    const password = strongPassword();
    await this.host.admin.run(async (connection) => {
      // what it received is applied first: a promotion keeps all its position counted
      await applyReceived(connection);
      await connection.query('STOP SLAVE');
      await connection.query('RESET SLAVE ALL');
      await connection.query('SET GLOBAL read_only = OFF');
      // a password of its own: its primary's, which it kept until now, must no longer open it
      await connection.query(`ALTER USER ${account(adminUser, 'localhost')} IDENTIFIED BY ${escape(password)}`);
    });
    await this.host.setAdminPassword(password);
    const { replication: _dropped, ...standalone } = spec;
    await this.host.applySpec(standalone);
  }

  fence(): Promise<{ position: number }> {
    return this.failover.fence();
  }

  follow(grant: ReplicationGrant): Promise<void> {
    return this.failover.follow(grant);
  }

  setSynchronous(synchronous: boolean): Promise<void> {
    return this.failover.setSynchronous(synchronous);
  }

  async status(): Promise<ReplicationStatus> {
    const spec = await this.host.spec();
    const replication = spec.replication;
    if (replication === undefined) return { role: 'standalone' };
    const running = await this.host.running();
    if (replication.role === 'replica') {
      const source = { address: replication.source.address, port: replication.source.port };
      if (!running) return { role: 'replica', source, streaming: false };
      const { row, position } = await this.host.admin.run(async (connection) => {
        const status = await slaveStatus(connection);
        return { row: status, position: await replicaPosition(connection, status) };
      });
      const seconds = row?.Seconds_Behind_Master;
      return {
        role: 'replica',
        source,
        streaming: row?.Slave_IO_Running === 'Yes' && row.Slave_SQL_Running === 'Yes',
        ...(seconds === null || seconds === undefined ? {} : { lagSeconds: Number(seconds) }),
        position,
      };
    }
    if (!running) {
      // a fenced source answers what it wrote
      const position = await this.failover.positionAtRest();
      return {
        role: 'source',
        replicas: replication.replicas.map((replica) => ({ replicaId: replica.id, connected: false })),
        ...(position === undefined ? {} : { position }),
      };
    }
    const { connected, position } = await this.host.admin.run(async (connection) => {
      const [rows] = await connection.query<Row[]>(
        "SELECT DISTINCT USER AS user FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'",
      );
      return { connected: new Set(rows.map((row) => String(row.user))), position: await sourcePosition(connection) };
    });
    return {
      role: 'source',
      replicas: replication.replicas.map((replica) => ({ replicaId: replica.id, connected: connected.has(replica.user) })),
      position,
    };
  }
}

export const mysqlFamilyReplication: ReplicationModule<{ replicationHost(): MysqlReplicationHost }> = {
  create: (lifecycle) => new MysqlFamilyReplicationAdmin(lifecycle.replicationHost()),
};
