import type { Redis } from 'ioredis';
import { CofferError } from '../../../common/index.js';
import type { Logger } from '../../../common/index.js';
import type { ReplicationGrant } from '../engine.js';
import type { EngineSpec } from '../engine-spec-file.js';
import { replicationUserPrefix } from './acl.js';
import { applyAcl, withAdminClient } from './admin.js';
import { synchronousSettings, writeRefusingReplicas } from './config.js';
import { readLiveSettings, setLive } from './live-config.js';
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

// Redis's part of switchover and failover (guest contract 1.9): fence a source, make any
// instance follow a new source, and whether a source's writes need a replica in sync.
//
// Position: Redis's replication offset, one counter on a source (what it wrote) and on a
// replica (what it applied of its primary's stream); a promoted replica continues it.
//
// Fence: CLIENT PAUSE WRITE first, so that no write is acknowledged after the answer (a client
// writing meanwhile waits, and loses its connection with the stop: never acknowledged), then the
// offset read, then a bounded wait until each connected replica acknowledged it (a replica
// acknowledges once a second), then the stop Redis does on SIGTERM (its AOF flushed, a final
// snapshot). The offset is kept in the host's file beside the spec, so that a fence asked again
// of the stopped source answers the same; a start (follow's, or its owner's) removes it.
//
// Follow: the role in the spec and redis.conf first (a restart from there on is a replica of the
// new source), then either REPLICAOF on the running server or a start. Redis then asks the new
// source to continue from its own replication id and offset (PSYNC): a replica of the old source
// continues without a copy, since a promoted replica accepts its former primary's id up to the
// offset it promoted at (replid2). A former source whose stream went further than that (writes
// its replicas never received, before a crash or when cut off from them) or that restarted
// (Redis loads the AOF, which keeps no replication id) is copied anew in full: what it wrote
// that the new source never received is gone, which is what a failover means (the new source's
// history wins). What it kept for its own replicas (their ACL users, their place in the spec,
// synchronous) is dropped. As in prepareReplica, the grant's adminPassword is not used: the
// instance keeps its own admin secret, and its tenant users and root are copied from the new
// source (replica-users.ts).

/** how long a fence waits for its replicas to acknowledge the last write before it stops anyway */
const catchUpMs = 5_000;
const catchUpPollMs = 20;
/** longer than any fence takes: the pause ends with the server's stop */
const fencePauseMs = 24 * 60 * 60 * 1000;

/** what a running server is told when it becomes a replica; the rest of the rendered settings need a restart or are the same */
const replicaLiveSettings = new Set(['masteruser', 'masterauth', 'replica-read-only', 'replica-announce-ip', 'replica-announce-port', 'tls-ca-cert-file']);

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function admin<T>(host: RedisReplicationHost, work: (client: Redis) => Promise<T>): Promise<T> {
  return host.endpoint().then((endpoint) => withAdminClient(endpoint, work));
}

/** Until every connected replica acknowledged `position`, for `catchUpMs` at most. */
async function waitForReplicas(client: Redis, position: number, logger: Logger): Promise<void> {
  const deadline = Date.now() + catchUpMs;
  for (;;) {
    const behind = connectedReplicas(await replicationInfo(client)).filter((line) => line.state === 'online' && !(Number(line.offset) >= position));
    if (behind.length === 0) return;
    if (Date.now() > deadline) {
      logger.warn({ replicas: behind.map((line) => `${line.ip}:${line.port}`), position }, 'replicas still behind the fenced source: stopping it anyway');
      return;
    }
    await sleep(catchUpPollMs);
  }
}

export async function fence(host: RedisReplicationHost): Promise<{ position: number }> {
  const spec = await host.readSpec();
  if (spec.replication?.role === 'replica') throw new CofferError('BadRequest', 'A replica is not a source: there is nothing to fence.');
  if (!(await host.isRunning())) {
    const recorded = await host.readFencedPosition();
    if (recorded !== undefined) return { position: recorded };
    throw new CofferError('Conflict', 'The source is stopped and was not fenced, so its position is unknown: start it, then fence it.');
  }
  const position = await admin(host, async (client) => {
    await client.call('CLIENT', ['PAUSE', String(fencePauseMs), 'WRITE']);
    const written = replicationPosition(await replicationInfo(client));
    if (written === undefined) throw new CofferError('EngineError', 'Redis did not report its replication offset.');
    await host.writeFencedPosition(written);
    await waitForReplicas(client, written, host.logger);
    return written;
  });
  await host.stop();
  return { position };
}

/**
 * The running server's min-replicas-to-write as `synchronous` says, unless a full volume has it
 * refusing every write (lifecycle.ts, refuseWrites): that stays until the guest lifts it, and
 * the lifting sets the spec's value.
 */
export async function applySynchronous(client: Redis, synchronous: boolean): Promise<void> {
  const live = await readLiveSettings(client, ['min-replicas-to-write']);
  if (Number(live.get('min-replicas-to-write')) >= writeRefusingReplicas) return;
  await setLive(client, synchronousSettings(synchronous));
}

export async function setSynchronous(host: RedisReplicationHost, synchronous: boolean): Promise<void> {
  const spec = await host.readSpec();
  if (spec.replication?.role === 'replica') {
    throw new CofferError('BadRequest', 'A replica takes no writes of its own: synchronous replication is set on its source.');
  }
  const replicas = spec.replication?.role === 'source' ? spec.replication.replicas : [];
  // a source with no replica yet keeps the setting too: its writes are refused until one is in sync
  const next: EngineSpec = {
    ...spec,
    replication: synchronous || replicas.length > 0 ? { role: 'source', replicas, ...(synchronous ? { synchronous } : {}) } : undefined,
  };
  await host.render(next);
  await host.saveSpec(next);
  if (await host.isRunning()) await admin(host, (client) => applySynchronous(client, synchronous));
}

/** Drops the ACL users a former source kept for its replicas, and ends their connections. */
async function dropReplicationUsers(client: Redis): Promise<void> {
  const users = ((await client.call('ACL', ['USERS'])) as string[]).filter((name) => name.startsWith(replicationUserPrefix));
  if (users.length === 0) return;
  await applyAcl(client, users.map((user) => ['DELUSER', user]));
  for (const user of users) await client.call('CLIENT', ['KILL', 'USER', user]).catch(() => undefined);
}

export async function follow(host: RedisReplicationHost, grant: ReplicationGrant): Promise<void> {
  if (grant.slot !== replicationOverTls && grant.slot !== replicationPlaintext) {
    throw new CofferError('BadRequest', 'The replication grant is not one of a Redis source.');
  }
  const tls = grant.slot === replicationOverTls;
  if (tls && !(await host.tlsInstalled())) {
    throw new CofferError('EngineError', 'The new source serves TLS only, and this instance has no certificate to replicate over TLS with.');
  }
  const { replication: _previous, ...own } = await host.readSpec();
  const replica: EngineSpec = { ...own, replication: { role: 'replica', source: { address: grant.address, port: grant.port, user: grant.user, slot: grant.slot } } };
  // the password first (redis.conf is rendered from it), then redis.conf, then the spec
  await host.writeReplicationSecret(grant.password);
  const settings = await host.render(replica);
  await host.saveSpec(replica);
  if (await host.isRunning()) {
    await admin(host, async (client) => {
      await setLive(client, [...settings.filter(([name]) => replicaLiveSettings.has(name)), ['tls-replication', tls]]);
      await applySynchronous(client, false);
      await client.call('REPLICAOF', [grant.address, String(grant.port)]);
      // a fence cut short before its stop left writes paused: a replica takes none anyway
      await client.call('CLIENT', ['UNPAUSE']);
    });
  } else {
    await host.start();
  }
  await admin(host, dropReplicationUsers);
  await host.removeFencedPosition();
  await waitForLink(host);
  await syncReplicaUsers(host);
}
