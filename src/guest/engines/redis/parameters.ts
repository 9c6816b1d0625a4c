import type { ConfigurationParameter, ConfigurationValue } from '../../../common/index.js';

// The settings a configuration group may set on Redis 7, each with the value Coffer renders
// when no group sets it: Redis 7.0's own default, except where a comment says why Coffer chose
// another. Every one of them is rendered into redis.conf, so that detaching a group
// has a value to go back to and the effective configuration is complete.
//
// Bounds are Redis's own (config.c), with two exceptions: 64-bit limits stop at
// Number.MAX_SAFE_INTEGER (a larger JSON number would not render as the integer it names), and
// `databases` stops at 10,000 (each costs ~0.5 KB counted against maxmemory, and a value Redis
// accepts but cannot allocate would only show at the next start, leaving no engine running).
// `restartRequired` is exactly Redis's IMMUTABLE_CONFIG: CONFIG SET refuses those.
//
// Never published: whatever names a file, a program, a module or an address (dir, dbfilename,
// appenddirname, logfile, pidfile, unixsocket*, bind, port, tls-*, aclfile, enable-*-command,
// protected-mode, rename-command, loadmodule), passwords (requirepass), replication (replicaof,
// masterauth, masteruser, repl-*: Coffer's replicas will set those), and maxmemory, which
// follows the flavor (maxmemory-policy is how a group chooses what happens at that limit).
// Nor io-threads: CPUs on a shared host are the flavor's to give, not a group's.

export interface RedisParameter extends ConfigurationParameter {
  /** what Coffer renders without an override */
  standard: ConfigurationValue;
}

const intMax = 2_147_483_647;
const uintMax = 4_294_967_295;
const largest = Number.MAX_SAFE_INTEGER;

function integer(name: string, standard: number, min: number, max: number): RedisParameter {
  return { name, type: 'integer', restartRequired: false, min, max, standard };
}

function flag(name: string, standard: boolean): RedisParameter {
  return { name, type: 'boolean', restartRequired: false, standard };
}

function text(name: string, standard: string): RedisParameter {
  return { name, type: 'string', restartRequired: false, standard };
}

function restartOnly(parameter: RedisParameter): RedisParameter {
  return { ...parameter, restartRequired: true };
}

export const redisParameterTable: readonly RedisParameter[] = [
  // memory and eviction
  // a datastore, not a cache: writes fail when full rather than keys silently vanishing
  text('maxmemory-policy', 'noeviction'),
  integer('maxmemory-samples', 5, 1, intMax),
  integer('maxmemory-eviction-tenacity', 10, 0, 100),
  integer('lfu-log-factor', 10, 0, intMax),
  integer('lfu-decay-time', 1, 0, intMax),
  integer('active-expire-effort', 1, 1, 10),
  flag('lazyfree-lazy-eviction', false),
  flag('lazyfree-lazy-expire', false),
  flag('lazyfree-lazy-server-del', false),
  flag('lazyfree-lazy-user-del', false),
  flag('lazyfree-lazy-user-flush', false),
  flag('activedefrag', false),
  integer('active-defrag-ignore-bytes', 104_857_600, 1, largest),
  integer('active-defrag-threshold-lower', 10, 0, 1000),
  integer('active-defrag-threshold-upper', 100, 0, 1000),
  integer('active-defrag-cycle-min', 1, 1, 99),
  integer('active-defrag-cycle-max', 25, 1, 99),
  integer('active-defrag-max-scan-fields', 1000, 1, largest),
  // clients and connections
  integer('timeout', 0, 0, intMax),
  integer('tcp-keepalive', 300, 0, intMax),
  integer('maxclients', 10_000, 1, uintMax),
  text('client-output-buffer-limit', 'normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60'),
  integer('tracking-table-max-keys', 1_000_000, 0, largest),
  integer('busy-reply-threshold', 5000, 0, largest),
  restartOnly(integer('tcp-backlog', 511, 0, intMax)),
  restartOnly(integer('databases', 16, 1, 10_000)),
  // persistence
  // Coffer's: the AOF every second (at most a second lost), RDB snapshots as well
  flag('appendonly', true),
  text('appendfsync', 'everysec'),
  text('save', '3600 1 300 100 60 10000'),
  flag('no-appendfsync-on-rewrite', false),
  integer('auto-aof-rewrite-percentage', 100, 0, intMax),
  integer('auto-aof-rewrite-min-size', 67_108_864, 0, largest),
  flag('aof-load-truncated', true),
  flag('aof-use-rdb-preamble', true),
  flag('aof-rewrite-incremental-fsync', true),
  flag('rdb-save-incremental-fsync', true),
  flag('stop-writes-on-bgsave-error', true),
  flag('rdbcompression', true),
  restartOnly(flag('rdbchecksum', true)),
  // monitoring and notifications
  integer('slowlog-log-slower-than', 10_000, -1, largest),
  integer('slowlog-max-len', 128, 0, largest),
  integer('latency-monitor-threshold', 0, 0, largest),
  flag('latency-tracking', true),
  text('notify-keyspace-events', ''),
  // the event loop
  // Redis takes 0..INT_MAX and clamps to 1..500: published as what it runs with
  integer('hz', 10, 1, 500),
  flag('dynamic-hz', true),
  flag('activerehashing', true),
  // encodings of small values
  integer('hash-max-listpack-entries', 512, 0, largest),
  integer('hash-max-listpack-value', 64, 0, largest),
  // Redis takes any int and clamps below -5 (the documented sizes are -5..-1, or entries)
  integer('list-max-listpack-size', -2, -5, intMax),
  integer('list-compress-depth', 0, 0, intMax),
  integer('set-max-intset-entries', 512, 0, largest),
  integer('zset-max-listpack-entries', 128, 0, largest),
  integer('zset-max-listpack-value', 64, 0, largest),
  integer('stream-node-max-bytes', 4096, 0, largest),
  integer('stream-node-max-entries', 100, 0, largest),
  integer('hll-sparse-max-bytes', 3000, 0, largest),
];

/** What the guest reports and the API checks groups against: the table without Coffer's values. */
export const redisParameters: ConfigurationParameter[] = redisParameterTable.map(({ standard: _standard, ...parameter }) => parameter);
