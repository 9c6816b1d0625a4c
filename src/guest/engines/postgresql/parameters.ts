import type { ConfigurationParameter } from '../../../bus/index.js';
// The settings a configuration group may change: what people tune, and nothing that runs a
// program, names a file or directory, loads a library or moves the server's address or socket
// (archive_command, ssl_*, *_file, *_directory, *_preload_libraries, listen_addresses, port...):
// a tenant's value in one of those would reach the host's files or programs.
//
// Types follow Trove's validation-rules.json for PostgreSQL wherever Trove lists the parameter,
// because the check is by JSON type and a group written for Trove must pass unchanged here:
// sizes and most intervals are strings with PostgreSQL's units ('256MB', '5min'), the
// timeouts Trove lists as integers are integers in PostgreSQL's base unit (milliseconds, kB,
// 8 kB pages: what pg_settings.unit says). Only Trove's integer page costs are floats here,
// which still accepts every integer Trove does. Parameters Trove lacks follow their nearest
// Trove sibling (max_wal_size as shared_buffers, idle_in_transaction_session_timeout as statement_timeout).
// Integer bounds are PostgreSQL 15's own (pg_settings.min_val/max_val), tighter where Trove is
// (superuser_reserved_connections keeps one slot for the guest's own administration).
// `restartRequired` is exactly pg_settings.context = 'postmaster' (postgresql-configuration.int.test.ts
// checks both against a running server).

const maxInt = 2_147_483_647;

export const postgresqlParameters: ConfigurationParameter[] = [
  // memory
  { name: 'shared_buffers', type: 'string', restartRequired: true },
  { name: 'work_mem', type: 'string', restartRequired: false },
  { name: 'maintenance_work_mem', type: 'string', restartRequired: false },
  { name: 'effective_cache_size', type: 'string', restartRequired: false },
  { name: 'temp_buffers', type: 'string', restartRequired: false },
  { name: 'autovacuum_work_mem', type: 'integer', restartRequired: false, min: -1, max: maxInt },
  { name: 'hash_mem_multiplier', type: 'float', restartRequired: false, min: 1, max: 1000 },
  { name: 'temp_file_limit', type: 'integer', restartRequired: false, min: -1, max: maxInt },
  // WAL and checkpoints
  { name: 'wal_buffers', type: 'integer', restartRequired: true, min: -1, max: 262_143 },
  { name: 'max_wal_size', type: 'string', restartRequired: false },
  { name: 'min_wal_size', type: 'string', restartRequired: false },
  { name: 'checkpoint_timeout', type: 'string', restartRequired: false },
  { name: 'checkpoint_completion_target', type: 'string', restartRequired: false },
  { name: 'checkpoint_warning', type: 'string', restartRequired: false },
  { name: 'wal_compression', type: 'string', restartRequired: false },
  { name: 'wal_writer_delay', type: 'string', restartRequired: false },
  { name: 'commit_delay', type: 'integer', restartRequired: false, min: 0, max: 100_000 },
  { name: 'synchronous_commit', type: 'boolean', restartRequired: false },
  // planner
  { name: 'random_page_cost', type: 'float', restartRequired: false, min: 0 },
  { name: 'seq_page_cost', type: 'float', restartRequired: false, min: 0 },
  { name: 'effective_io_concurrency', type: 'integer', restartRequired: false, min: 0, max: 1000 },
  { name: 'default_statistics_target', type: 'integer', restartRequired: false, min: 1, max: 10_000 },
  { name: 'from_collapse_limit', type: 'integer', restartRequired: false, min: 1, max: maxInt },
  { name: 'join_collapse_limit', type: 'integer', restartRequired: false, min: 1, max: maxInt },
  { name: 'jit', type: 'boolean', restartRequired: false },
  { name: 'max_worker_processes', type: 'integer', restartRequired: true, min: 0, max: 262_143 },
  { name: 'max_parallel_workers', type: 'integer', restartRequired: false, min: 0, max: 1024 },
  { name: 'max_parallel_workers_per_gather', type: 'integer', restartRequired: false, min: 0, max: 1024 },
  { name: 'max_parallel_maintenance_workers', type: 'integer', restartRequired: false, min: 0, max: 1024 },
  // logging
  { name: 'log_min_duration_statement', type: 'integer', restartRequired: false, min: -1, max: maxInt },
  { name: 'log_statement', type: 'string', restartRequired: false },
  { name: 'log_connections', type: 'boolean', restartRequired: false },
  { name: 'log_disconnections', type: 'boolean', restartRequired: false },
  { name: 'log_lock_waits', type: 'boolean', restartRequired: false },
  { name: 'log_temp_files', type: 'integer', restartRequired: false, min: -1, max: maxInt },
  { name: 'log_checkpoints', type: 'boolean', restartRequired: false },
  { name: 'log_autovacuum_min_duration', type: 'integer', restartRequired: false, min: -1, max: maxInt },
  { name: 'track_io_timing', type: 'boolean', restartRequired: false },
  { name: 'track_functions', type: 'string', restartRequired: false },
  { name: 'track_activity_query_size', type: 'integer', restartRequired: true, min: 100, max: 1_048_576 },
  // connections and timeouts
  { name: 'max_connections', type: 'integer', restartRequired: true, min: 1, max: 262_143 },
  { name: 'superuser_reserved_connections', type: 'integer', restartRequired: true, min: 1, max: 262_143 },
  { name: 'statement_timeout', type: 'integer', restartRequired: false, min: 0, max: maxInt },
  { name: 'lock_timeout', type: 'integer', restartRequired: false, min: 0, max: maxInt },
  { name: 'idle_in_transaction_session_timeout', type: 'integer', restartRequired: false, min: 0, max: maxInt },
  { name: 'deadlock_timeout', type: 'string', restartRequired: false },
  { name: 'tcp_keepalives_idle', type: 'integer', restartRequired: false, min: 0, max: maxInt },
  { name: 'tcp_keepalives_interval', type: 'integer', restartRequired: false, min: 0, max: maxInt },
  { name: 'tcp_keepalives_count', type: 'integer', restartRequired: false, min: 0, max: maxInt },
  // autovacuum
  { name: 'autovacuum', type: 'boolean', restartRequired: false },
  { name: 'autovacuum_max_workers', type: 'integer', restartRequired: true, min: 1, max: 262_143 },
  { name: 'autovacuum_naptime', type: 'string', restartRequired: false },
  { name: 'autovacuum_vacuum_threshold', type: 'integer', restartRequired: false, min: 0, max: maxInt },
  { name: 'autovacuum_analyze_threshold', type: 'integer', restartRequired: false, min: 0, max: maxInt },
  { name: 'autovacuum_vacuum_scale_factor', type: 'string', restartRequired: false },
  { name: 'autovacuum_analyze_scale_factor', type: 'string', restartRequired: false },
  { name: 'autovacuum_vacuum_cost_delay', type: 'string', restartRequired: false },
  { name: 'autovacuum_vacuum_cost_limit', type: 'integer', restartRequired: false, min: -1, max: 10_000 },
  { name: 'autovacuum_freeze_max_age', type: 'integer', restartRequired: true, min: 100_000, max: 2_000_000_000 },
  // locks, transactions, client defaults
  { name: 'max_locks_per_transaction', type: 'integer', restartRequired: true, min: 10, max: maxInt },
  { name: 'max_pred_locks_per_transaction', type: 'integer', restartRequired: true, min: 10, max: maxInt },
  { name: 'max_prepared_transactions', type: 'integer', restartRequired: true, min: 0, max: 262_143 },
  { name: 'default_transaction_isolation', type: 'string', restartRequired: false },
  { name: 'timezone', type: 'string', restartRequired: false },
];
