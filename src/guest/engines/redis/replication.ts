import { randomBytes } from 'node:crypto';
import { isIPv4 } from 'node:net';
import type { Redis } from 'ioredis';
import type { PrepareInput } from '../../../bus/index.js';
import { CofferError } from '../../../common/index.js';
import type { PrepareProgress, PrepareTimings, ReplicaLag, ReplicationAdmin, ReplicationGrant, ReplicationStatus } from '../engine.js';
import type { ReplicationModule } from '../engine-modules.js';
import { passwordHash, replicationUserPrefix } from './acl.js';
import { applyAcl, withAdminClient } from './admin.js';
import { applySynchronous, fence, follow, setSynchronous } from './failover.js';
import { setLive } from './live-config.js';
import {
  connectedReplicas,
  replicationInfo,
  replicationOverTls,
  replicationPlaintext,
  replicationPosition,
  syncReplicaUsers,
  waitForLink,
  type RedisReplicationHost,
} from './replication-host.js';
import { redisTlsPort } from './tls.js';

// The replication module of Redis: asynchronous replication (REPLICAOF), the replica read-only.
//
// On the primary each replica gets an ACL user of its own, `os_repl_<id>`, whose strong
// generated password is handed to the replica once and never logged (the primary stores only
// its SHA-256), with nothing but what a replica's connection runs: PING, REPLCONF and PSYNC
// (Redis's own recipe for a replication user). No keys, no channels, no other command: it
// cannot read a key, write one or look at the configuration. removeReplica deletes it and
// closes its connections.
//
// The replica is a new, empty instance (its own ACL file and admin secret, as any) started with
// `replicaof`, `masteruser`/`masterauth` and `replica-read-only yes` in its redis.conf: it loads
// a full copy from its primary, then follows its stream, and Redis itself refuses every write
// with READONLY. Its password is in the host's file beside the spec, never in the spec; Redis
// cannot keep it out of CONFIG GET, so an enabled root (which has CONFIG GET) of the replica can
// read it: what it opens is PSYNC on the primary, the same data the replica already serves.
//
// Transport: the primary's TLS port with `tls-replication yes` whenever the primary has its
// certificate (every instance a guest prepares has one), the replica checking the primary's
// certificate against its own CA file (the deployment's CA signed both); the plaintext port only
// for a primary without a certificate. The grant's `slot` (Redis has no slots) says which, so the
// replica's spec keeps it across restarts.
//
// ACL users are not replicated (Redis keeps them per server): the replica's guest copies its
// primary's root and tenant users (replica-users.ts) when the replica is made, at its health
// checks (every 15 s at most) and when its replication status is asked for. For that the
// replication user may also list users and read their password hashes (ACL USERS, ACL GETUSER).
//
// The role is part of the engine's spec, from which every render starts: a restarted or
// adopted replica is a replica again. Switchover and failover (fence, follow, synchronous):
// failover.ts.

/** Instance ids become user names: lower case, digits and underscores. */
export function replicationUser(replicaId: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,49}$/.test(replicaId)) throw new CofferError('BadRequest', `"${replicaId}" is not an instance id.`);
  return `${replicationUserPrefix}${replicaId.toLowerCase().replace(/-/g, '_')}`;
}


/**
 * What a replication user may do: a replica's handshake and stream, and list the users with
 * their password hashes (the replica copies them, replica-users.ts); no key, no channel, no
 * other command.
 */
export function replicationUserArguments(user: string, password: string): string[] {
  return [user, 'reset', 'on', `#${passwordHash(password)}`, '+ping', '+replconf', '+psync', '+acl|users', '+acl|getuser'];
}

function strongPassword(): string {
  return randomBytes(32).toString('base64url');
}

export class RedisReplicationAdmin implements ReplicationAdmin {
  constructor(private readonly host: RedisReplicationHost) {}

  private async admin<T>(work: (client: Redis) => Promise<T>): Promise<T> {
    return withAdminClient(await this.host.endpoint(), work);
  }

  async addReplica(replica: { id: string; address: string }): Promise<ReplicationGrant> {
    const user = replicationUser(replica.id);
    if (!isIPv4(replica.address)) throw new CofferError('BadRequest', `"${replica.address}" is not a replica address.`);
    const spec = await this.host.readSpec();
    if (spec.replication?.role === 'replica') {
      throw new CofferError('BadRequest', 'A replica cannot be the source of another replica.');
    }
    const password = strongPassword();
    await this.admin((client) => applyAcl(client, [['SETUSER', ...replicationUserArguments(user, password)]]));
    const others = spec.replication?.role === 'source' ? spec.replication.replicas.filter((known) => known.id !== replica.id) : [];
    // over TLS whenever the primary has its certificate (the guest installs one before every
    // prepare): encrypted, and unaffected by the primary later closing its plaintext port
    const tls = await this.host.tlsInstalled();
    const slot = tls ? replicationOverTls : replicationPlaintext;
    const synchronous = spec.replication?.role === 'source' && spec.replication.synchronous === true ? { synchronous: true } : {};
    await this.host.saveSpec({ ...spec, replication: { role: 'source', replicas: [...others, { id: replica.id, address: replica.address, user, slot }], ...synchronous } });
    const { address, port } = this.host.placement;
    // the replica keeps no copy of the primary's users (ACL users are not replicated): it has an
    // admin secret of its own from the start, and the primary's never leaves its host
    return { address, port: tls ? redisTlsPort(port) : port, user, password, slot, adminPassword: strongPassword() };
  }

  async removeReplica(replicaId: string): Promise<void> {
    const user = replicationUser(replicaId);
    const spec = await this.host.readSpec();
    if (spec.replication?.role === 'source') {
      const replicas = spec.replication.replicas.filter((known) => known.id !== replicaId);
      // a synchronous source stays one with no replica left: its writes wait for the next
      const synchronous = spec.replication.synchronous === true;
      const replication = replicas.length === 0 && !synchronous ? undefined : { role: 'source' as const, replicas, ...(synchronous ? { synchronous } : {}) };
      await this.host.saveSpec({ ...spec, replication });
    }
    await this.admin(async (client) => {
      await applyAcl(client, [['DELUSER', user]]);
      // deleting a user closes its connections in Redis 7; said again for older servers
      await client.call('CLIENT', ['KILL', 'USER', user]).catch(() => undefined);
    });
  }

  /** A seed (the primary's backup) is not used: Redis's replication begins with a full copy whatever the replica holds. */
  async prepareReplica(input: PrepareInput, grant: ReplicationGrant, progress: PrepareProgress = () => undefined): Promise<PrepareTimings> {
    if (input.databases.length > 0 || input.users.length > 0) {
      throw new CofferError('BadRequest', 'A replica takes its data from its primary: it is created without databases or users.');
    }
    if (grant.slot !== replicationOverTls && grant.slot !== replicationPlaintext) {
      throw new CofferError('BadRequest', 'The replication grant is not one of a Redis primary.');
    }
    if (grant.slot === replicationOverTls && !(await this.host.tlsInstalled())) {
      throw new CofferError('EngineError', 'The primary serves TLS only, and this replica has no certificate to replicate over TLS with.');
    }
    // the password first: redis.conf is rendered from it
    await this.host.writeReplicationSecret(grant.password);
    const timings = await this.host.prepare(
      input,
      {
        memoryMb: input.memoryMb,
        access: input.access,
        overrides: input.overrides,
        replication: { role: 'replica', source: { address: grant.address, port: grant.port, user: grant.user, slot: grant.slot } },
      },
      progress,
    );
    const started = performance.now();
    // ready means serving the primary's data, as a PostgreSQL replica is once its base backup is done
    await waitForLink(this.host);
    progress('creating users');
    await syncReplicaUsers(this.host);
    return { ...timings, setupMs: timings.setupMs + (performance.now() - started) };
  }

  async detach(): Promise<void> {
    const spec = await this.host.readSpec();
    if (spec.replication?.role !== 'replica') return;
    const { replication: _dropped, ...standalone } = spec;
    // redis.conf first: a restart from here on starts a primary
    await this.host.render(standalone);
    if (await this.host.isRunning()) {
      await this.admin(async (client) => {
        await client.call('REPLICAOF', ['NO', 'ONE']);
        // no credentials for a primary it no longer has; writes taken from now on
        await setLive(client, [
          ['masteruser', ''],
          ['masterauth', ''],
        ]);
        // a former source made a replica keeps the min-replicas-to-write it ran with: a
        // standalone refuses no write for want of replicas
        await applySynchronous(client, false);
      });
    }
    await this.host.saveSpec(standalone);
    await this.host.removeReplicationSecret();
  }

  fence(): Promise<{ position: number }> {
    return fence(this.host);
  }

  follow(grant: ReplicationGrant): Promise<void> {
    return follow(this.host, grant);
  }

  setSynchronous(synchronous: boolean): Promise<void> {
    return setSynchronous(this.host, synchronous);
  }

  async status(): Promise<ReplicationStatus> {
    const spec = await this.host.readSpec();
    const replication = spec.replication;
    if (replication === undefined) return { role: 'standalone' };
    const fenced = replication.role === 'source' && !(await this.host.isRunning()) ? await this.host.readFencedPosition() : undefined;
    if (replication.role === 'source' && fenced !== undefined) {
      // a fenced source is held stopped: what it wrote is what it answered the fence
      const replicas = replication.replicas.map((replica): ReplicaLag => ({ replicaId: replica.id, connected: false }));
      return { role: 'source', replicas, position: fenced };
    }
    const fields = await this.admin(replicationInfo);
    const position = replicationPosition(fields);
    if (replication.role === 'replica') {
      // Users changed on the primary since the last copy come along now (as at each health
      // check), waited for 1 s at most: a failover asks a lost primary's replicas for their
      // status, and must not wait on a connection to a host that is gone (a cut link still reads
      // "up" until the replication timeout). A copy that takes longer goes on by itself.
      const copied = syncReplicaUsers(this.host).catch((err: unknown) => this.host.logger.warn({ err }, "could not copy the primary's users"));
      await Promise.race([copied, new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
      // a replica cannot know its primary's offset: how far it trails is reported by its primary
      return {
        role: 'replica',
        source: { address: replication.source.address, port: replication.source.port },
        streaming: fields.get('master_link_status') === 'up' && fields.get('master_sync_in_progress') === '0',
        ...(position === undefined ? {} : { position }),
      };
    }
    const primaryOffset = Number(fields.get('master_repl_offset') ?? '0');
    // each replica announces its own address (config.ts), so that replicas on one host differ
    const connected = connectedReplicas(fields);
    const replicas: ReplicaLag[] = replication.replicas.map((replica) => {
      const line = connected.find((candidate) => candidate.ip === replica.address);
      if (line === undefined) return { replicaId: replica.id, connected: false };
      const online = line.state === 'online';
      return {
        replicaId: replica.id,
        connected: online,
        ...(online && line.offset !== undefined ? { lagBytes: Math.max(0, primaryOffset - Number(line.offset)) } : {}),
        // seconds since the replica's last acknowledgement (it sends one each second)
        ...(online && line.lag !== undefined ? { lagSeconds: Number(line.lag) } : {}),
      };
    });
    return { role: 'source', replicas, ...(position === undefined ? {} : { position }) };
  }
}

export const redisReplication: ReplicationModule<{ replicationHost(): RedisReplicationHost }> = {
  create: (lifecycle) => new RedisReplicationAdmin(lifecycle.replicationHost()),
};
