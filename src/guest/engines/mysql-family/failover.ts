import type { Connection, RowDataPacket } from 'mysql2/promise';
import { escape } from 'mysql2';
import { CofferError } from '../../../common/index.js';
import type { ReplicationGrant } from '../engine.js';
import type { EngineSpec } from '../engine-spec-file.js';
import { semiSyncTimeoutMs } from './config.js';
import type { MysqlReplicationHost } from './replication.js';
import { account, adminUser, replicationUserPrefix } from './sql.js';

// Switchover and failover for MariaDB (ReplicationAdmin.fence, follow, setSynchronous; the
// positions status reports). Replication is by GTID in strict mode, and every instance has a
// server id of its own (config.ts serverIdOf): a promoted replica's writes continue the
// sequence numbers of domain 0 under its own id, so a position is one number, the sequence
// number of the last GTID in domain 0.
//
// Fencing: `SHUTDOWN WAIT FOR ALL SLAVES` ends every client session at once (a tenant's root
// included: read_only would not stop it, and FLUSH TABLES WITH READ LOCK is released by anyone
// who may KILL the guest's session), then sends the connected replicas all the binary log
// before the server exits. The position is then read from the state file the server writes at
// a clean shutdown (`<binlog>.state`, the last GTID of each domain and server); after a crash
// there is none, and a start with no TCP listener recovers the binary log and answers it.
//
// Following: the instance is set to replicate from everything it holds (gtid_slave_pos =
// gtid_binlog_pos: a former source's own writes included), so that the new source, in strict
// mode, refuses it when it lacks any of them (error 1236: "not in the master's binlog"): MariaDB
// has no rewind, and a former source that wrote after its replicas were cut off cannot follow.
// That is a Conflict, and the engine stays stopped. A stopped instance is re-pointed started
// with no TCP listener and no replication thread of its own, so nobody writes to it before it
// is a replica, then started as one; a running replica is re-pointed in place (it stays
// read-only). Its administrative password becomes the new source's, as prepareReplica's: the
// new source's own ALTER USER (detach) reaches it through the binary log.

type Row = RowDataPacket & Record<string, unknown>;

const followTimeoutMs = 60_000;
const shutdownTimeoutMs = 120_000;
/** a promotion applies what its replica received; one that takes longer fails, and a retry resumes */
const applyTimeoutMs = 10 * 60_000;

/** The sequence number of the last GTID of domain 0 in a GTID list (`0-11-6,1-11-3`, a state file's lines); 0 when none. */
export function domainZeroSeq(gtids: string): number {
  let last = 0;
  for (const gtid of gtids.split(/[\s,]+/)) {
    const match = /^0-\d+-(\d+)$/.exec(gtid);
    // strict mode: within a domain the highest number is the last
    if (match !== null) last = Math.max(last, Number(match[1]));
  }
  return last;
}

export async function slaveStatus(connection: Connection): Promise<Row | undefined> {
  const [rows] = await connection.query<Row[]>('SHOW SLAVE STATUS');
  return rows[0];
}

async function globalValue(connection: Connection, name: 'gtid_binlog_pos' | 'gtid_slave_pos'): Promise<string> {
  const [rows] = await connection.query<Row[]>(`SELECT @@GLOBAL.${name} AS value`);
  return String(rows[0]?.value ?? '');
}

/** A source's position: the last GTID it wrote to its binary log. */
export async function sourcePosition(connection: Connection): Promise<number> {
  return domainZeroSeq(await globalValue(connection, 'gtid_binlog_pos'));
}

/**
 * A replica's position: what a promotion would apply, which is what its IO thread received
 * (Gtid_IO_Pos, complete transactions in the relay log; detach applies them before it resets)
 * while its SQL thread can apply it, else what it applied. The relay log does not outlive the
 * replica's own server: after a restart the IO thread starts again from what was applied, and
 * the position says so.
 */
export async function replicaPosition(connection: Connection, status: Row | undefined): Promise<number> {
  const applied = domainZeroSeq(await globalValue(connection, 'gtid_slave_pos'));
  if (status?.Slave_SQL_Running !== 'Yes') return applied;
  return Math.max(applied, domainZeroSeq(String(status.Gtid_IO_Pos ?? '')));
}

export function changeMasterStatement(grant: ReplicationGrant): string {
  return (
    `CHANGE MASTER TO MASTER_HOST = ${escape(grant.address)}, MASTER_PORT = ${Number(grant.port)}, ` +
    `MASTER_USER = ${escape(grant.user)}, MASTER_PASSWORD = ${escape(grant.password)}, ` +
    // every instance serves TLS (its certificate is installed before its first start), and one
    // that requires it refuses plaintext replication as any other client; the wall keeps the peer
    `MASTER_SSL = 1, MASTER_CONNECT_RETRY = 5, MASTER_USE_GTID = slave_pos`
  );
}

/**
 * Before a replica is reset: its SQL thread applies all its IO thread received, so that a
 * promotion keeps every transaction its position counted. The IO thread is stopped first.
 */
export async function applyReceived(connection: Connection): Promise<void> {
  await connection.query('STOP SLAVE IO_THREAD');
  const deadline = Date.now() + applyTimeoutMs;
  for (;;) {
    const status = await slaveStatus(connection);
    const received = String(status?.Gtid_IO_Pos ?? '');
    // nothing received, or a SQL thread stopped (by an error) applies nothing more: the position said so
    if (received === '' || status?.Slave_SQL_Running !== 'Yes') return;
    const [rows] = await connection.query<Row[]>('SELECT MASTER_GTID_WAIT(?, 5) AS done', [received]);
    if (Number(rows[0]?.done) === 0) return;
    if (Date.now() > deadline) {
      throw new CofferError('EngineError', `The replica did not apply what it received from its primary (up to ${received}) within ${applyTimeoutMs / 60_000} minutes.`);
    }
  }
}

export class MysqlFailover {
  constructor(private readonly host: MysqlReplicationHost) {}

  async fence(): Promise<{ position: number }> {
    const spec = await this.host.spec();
    if (spec.replication?.role === 'replica') throw new CofferError('BadRequest', 'A replica takes no writes of its own: there is no source to fence.');
    if (await this.host.running()) {
      await this.host.admin
        .run((connection) => connection.query('SHUTDOWN WAIT FOR ALL SLAVES'))
        // the server may close the session before it answers; whether it goes down is watched below
        .catch((err: unknown) => this.host.logger.warn({ err }, 'SHUTDOWN WAIT FOR ALL SLAVES did not answer'));
      const deadline = Date.now() + shutdownTimeoutMs;
      while ((await this.host.running()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      // one that is still up (a replica that never takes the end of the log) is stopped as any other
      await this.host.stop();
    }
    return { position: await this.stoppedPosition(spec) };
  }

  /** The last GTID of a stopped server: from the state file of a clean shutdown, or else asked of a recovering start. */
  private async stoppedPosition(spec: EngineSpec): Promise<number> {
    const state = await this.host.binlogState();
    if (state !== undefined) return domainZeroSeq(state);
    this.host.logger.info('no binary log state from a clean shutdown: the server is started alone to recover it');
    try {
      await this.host.startIsolated(spec);
      return await this.host.admin.run(sourcePosition);
    } finally {
      await this.host.stop();
      await this.host.applySpec(spec);
    }
  }

  /** The stopped server's position where it can be read without starting it; undefined otherwise. */
  async positionAtRest(): Promise<number | undefined> {
    const state = await this.host.binlogState();
    return state === undefined ? undefined : domainZeroSeq(state);
  }

  async follow(grant: ReplicationGrant): Promise<void> {
    const spec = await this.host.spec();
    const replicaSpec: EngineSpec = {
      ...spec,
      replication: { role: 'replica', source: { address: grant.address, port: grant.port, user: grant.user, slot: grant.slot } },
    };
    if (spec.replication?.role === 'replica' && (await this.host.running())) {
      try {
        await this.repoint(grant, true);
      } catch (err) {
        if ((err as { code?: string }).code === 'Conflict') await this.host.stop();
        throw err;
      }
      await this.host.applySpec(replicaSpec);
      return;
    }
    await this.host.stop();
    try {
      await this.host.startIsolated(replicaSpec);
      await this.repoint(grant, spec.replication?.role === 'replica');
    } catch (err) {
      await this.host.stop();
      // my.cnf as the saved spec renders it: the instance is what it was
      await this.host.applySpec(spec);
      throw err;
    }
    await this.host.stop();
    await this.host.applySpec(replicaSpec);
    await this.host.start();
  }

  /** `replica`: it was one already, and one that cannot connect yet stays pointed at its new source */
  private async repoint(grant: ReplicationGrant, replica: boolean): Promise<void> {
    const source = `${grant.address}:${grant.port}`;
    await this.host.admin.run(async (connection) => {
      await connection.query('STOP SLAVE');
      await connection.query('SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_binlog_pos');
      // a semi-synchronous source counts only replicas that said so when they connected
      await connection.query('SET GLOBAL rpl_semi_sync_slave_enabled = ON');
      await connection.query(changeMasterStatement(grant));
      await connection.query('START SLAVE');
      const fault = await waitStreaming(connection, source);
      if (fault !== undefined) {
        if (replica && fault.code !== 'Conflict') throw fault;
        // no replication left configured: a server started later (a source again) does not try by itself
        await connection.query('STOP SLAVE');
        await connection.query('RESET SLAVE ALL');
        throw fault;
      }
      // local only, never in the binary log its own replicas could read
      await connection.query('SET SESSION sql_log_bin = 0');
      // what it kept as a source for its own replicas
      const [users] = await connection.query<Row[]>('SELECT User AS user, Host AS host FROM mysql.user WHERE User LIKE ?', [
        `${replicationUserPrefix.replace(/_/g, '\\_')}%`,
      ]);
      for (const row of users) await connection.query(`DROP USER IF EXISTS ${account(String(row.user), String(row.host))}`);
      await connection.query(`ALTER USER ${account(adminUser, 'localhost')} IDENTIFIED BY ${escape(grant.adminPassword)}`);
    });
    await this.host.setAdminPassword(grant.adminPassword);
  }

  async setSynchronous(synchronous: boolean): Promise<void> {
    const spec = await this.host.spec();
    const replication = spec.replication;
    if (replication?.role === 'replica') throw new CofferError('BadRequest', 'A replica commits nothing of its own: only a source can be synchronous.');
    const replicas = replication?.replicas ?? [];
    if (await this.host.running()) {
      await this.host.admin.run(async (connection) => {
        if (synchronous) {
          await connection.query("SET GLOBAL rpl_semi_sync_master_wait_point = 'AFTER_SYNC'");
          await connection.query('SET GLOBAL rpl_semi_sync_master_wait_no_slave = ON');
          await connection.query(`SET GLOBAL rpl_semi_sync_master_timeout = ${semiSyncTimeoutMs}`);
        }
        // off: commits waiting now go on
        await connection.query(`SET GLOBAL rpl_semi_sync_master_enabled = ${synchronous ? 'ON' : 'OFF'}`);
      });
    }
    const next: EngineSpec['replication'] = synchronous
      ? { role: 'source', replicas, synchronous: true }
      : replicas.length === 0
        ? undefined
        : { role: 'source', replicas };
    await this.host.applySpec({ ...spec, replication: next });
  }
}

/**
 * Until the IO thread streams from the new source (it received the source's first event, a
 * rotate naming its binary log: `Master_Log_File` is empty until then); undefined then, else the
 * error to throw. The source's refusal comes a moment after the IO thread reports it running.
 */
async function waitStreaming(connection: Connection, source: string): Promise<CofferError | undefined> {
  const deadline = Date.now() + followTimeoutMs;
  for (;;) {
    const status = await slaveStatus(connection);
    const ioErrno = Number(status?.Last_IO_Errno ?? 0);
    const sqlErrno = Number(status?.Last_SQL_Errno ?? 0);
    if (ioErrno === 1236) {
      return new CofferError(
        'Conflict',
        `This instance cannot follow ${source}: it holds transactions the new source does not have (written after its replicas were cut off, ` +
          `or the new source no longer has the log this instance would continue from). It stays stopped. The source said: ${String(status?.Last_IO_Error)}`,
      );
    }
    if (sqlErrno !== 0) {
      return new CofferError('Conflict', `This instance's data differs from its new source ${source}: it stays stopped. ${String(status?.Last_SQL_Error)}`);
    }
    if (status?.Slave_IO_Running === 'Yes' && String(status.Master_Log_File ?? '') !== '') return undefined;
    const ioError = String(status?.Last_IO_Error ?? '');
    if (Date.now() > deadline || /denied/i.test(ioError)) {
      return new CofferError('EngineError', `This instance did not connect to its new source ${source}${ioError === '' ? '' : `: ${ioError}`}.`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
