import type { Redis } from 'ioredis';
import type { PrepareInput } from '../../../bus/index.js';
import { CofferError } from '../../../common/index.js';
import type { Logger } from '../../../common/index.js';
import type { InstancePlacement, PrepareProgress, PrepareTimings } from '../engine.js';
import type { EngineSpec } from '../engine-spec-file.js';
import { infoFields, withAdminClient, type AdminEndpoint } from './admin.js';
import type { RedisSetting } from './config.js';
import { connectToSource, mirrorUsers } from './replica-users.js';

// What Redis's replication (replication.ts) and its switchover and failover (failover.ts) share:
// what they need of the instance's lifecycle, how a replica reads its place, waits for its
// link and copies its primary's users.

/** how long a replica may go without reaching its primary before it is given up on */
const linkTimeoutMs = 120_000;
const syncPollMs = 100;

/** the grant's `slot` for a replica streaming over its primary's TLS port */
export const replicationOverTls = 'tls';
export const replicationPlaintext = 'plaintext';

/** What the replication module needs of the instance's lifecycle. */
export interface RedisReplicationHost {
  placement: InstancePlacement;
  logger: Logger;
  readSpec(): Promise<EngineSpec>;
  saveSpec(spec: EngineSpec): Promise<void>;
  endpoint(): Promise<AdminEndpoint>;
  isRunning(): Promise<boolean>;
  /** the lifecycle's start and stop (a stop persists the data as every stop does) */
  start(): Promise<void>;
  stop(): Promise<void>;
  tlsInstalled(): Promise<boolean>;
  writeReplicationSecret(password: string): Promise<void>;
  readReplicationSecret(): Promise<string>;
  /** the CA the instance's certificate came from (the agent's), undefined without one */
  caCertificate(): Promise<string | undefined>;
  removeReplicationSecret(): Promise<void>;
  /**
   * The position a fenced source stopped at (failover.ts): the host's file, which the engine's
   * user can neither write nor remove; undefined when the source is not fenced.
   */
  readFencedPosition(): Promise<number | undefined>;
  writeFencedPosition(position: number): Promise<void>;
  removeFencedPosition(): Promise<void>;
  /** renders redis.conf from `spec` and answers its settings (the spec is not saved) */
  render(spec: EngineSpec): Promise<RedisSetting[]>;
  /** the lifecycle's prepare for `spec` */
  prepare(input: PrepareInput, spec: EngineSpec, progress?: PrepareProgress): Promise<PrepareTimings>;
}

export async function replicationInfo(client: Redis): Promise<Map<string, string>> {
  return infoFields(String(await client.call('INFO', ['replication'])));
}

/** the `slaveN:ip=…,port=…,state=online,offset=…,lag=…` lines of INFO replication, each as a record */
export function connectedReplicas(fields: ReadonlyMap<string, string>): Record<string, string>[] {
  return [...fields.entries()]
    .filter(([name]) => /^slave\d+$/.test(name))
    .map(([, value]) => Object.fromEntries(value.split(',').map((pair) => pair.split('=', 2) as [string, string])));
}

/**
 * Where the instance's replication stream stands (ReplicationStatus.position): on a source
 * what it wrote, on a replica what it has applied of its primary's (Redis keeps the two in one
 * counter, which a replica's own replicas and its promotion continue from).
 */
export function replicationPosition(fields: ReadonlyMap<string, string>): number | undefined {
  const offset = Number(fields.get('master_repl_offset'));
  return Number.isSafeInteger(offset) ? offset : undefined;
}

/**
 * Until the replica holds its primary's copy and streams: a copy in progress is waited for
 * however long it takes; a primary not answering (or refusing the login) for `linkTimeoutMs`
 * fails the wait.
 */
export async function waitForLink(host: RedisReplicationHost): Promise<void> {
  let lastProgress = Date.now();
  for (;;) {
    const fields = await withAdminClient(await host.endpoint(), replicationInfo);
    if (fields.get('master_link_status') === 'up') return;
    if (fields.get('master_sync_in_progress') === '1') lastProgress = Date.now();
    else if (Date.now() - lastProgress > linkTimeoutMs) {
      throw new CofferError('EngineError', 'The replica could not reach its primary or was refused by it: no copy began within 120 s.');
    }
    await new Promise((resolve) => setTimeout(resolve, syncPollMs));
  }
}

/**
 * Copies the primary's root and tenant users to a replica (replica-users.ts); nothing on an
 * instance that is no replica. Answers how many users it changed.
 */
export async function syncReplicaUsers(host: RedisReplicationHost): Promise<number> {
  const spec = await host.readSpec();
  if (spec.replication?.role !== 'replica') return 0;
  const { address, port, user, slot } = spec.replication.source;
  const password = await host.readReplicationSecret();
  const ca = slot === replicationOverTls ? await host.caCertificate() : undefined;
  const source = await connectToSource({ address, port, user, password, ...(ca === undefined ? {} : { ca }) });
  try {
    return await withAdminClient(await host.endpoint(), (replica) => mirrorUsers(source, replica));
  } finally {
    source.disconnect();
  }
}
