import type { ConfigurationParameter } from '../../../common/index.js';

// What a configuration group may set on a MySQL-family server. Only settings of the server's own
// behaviour: nothing that names a file, a directory, a program, a plugin, an address or a port
// (secure_file_priv, local_infile, plugin_*, init_file, init_connect, datadir, tmpdir, socket,
// port, bind_address, the log file names, log_bin*, ssl_*, skip_networking), and nothing Coffer
// manages itself (require_secure_transport, server_id, replication). Types and bounds follow
// Trove's validation-rules.json where Trove lists the setting (e.g. innodb_file_per_table is an
// integer 0..1 there, so groups written for Trove work unchanged), narrowed to what both engines
// accept so that a value is never silently clamped, and to sizes a host can hold (the engines'
// 2^64-1 cannot be carried by JSON numbers anyway). `restartRequired` is true exactly where the
// server refuses SET GLOBAL (a read-only variable), which is not always Trove's choice (Trove
// restarts for innodb_buffer_pool_size, which both engines resize live): checked against a
// running MariaDB by test/guest/mariadb-configuration.int.test.ts.

export interface MysqlParameter extends ConfigurationParameter {
  /** the option-file name where it is not the variable's (MariaDB reads tx_isolation as transaction-isolation) */
  option?: string;
  /**
   * the values the server starts with, for a restart-only string: no SET GLOBAL can try it
   * first, and a value the server does not know would keep it from starting
   */
  choices?: readonly string[];
}

const gib = 1024 ** 3;
/** no session buffer or in-memory table beyond this: far above any flavor, and exact as a JSON number */
const maxSessionBytes = 64 * gib;

/**
 * Same name, type, bounds and restart behaviour on MariaDB 10.11 and MySQL 8. The order is the
 * order SET GLOBAL applies them in: innodb_io_capacity_max comes before innodb_io_capacity, so
 * that raising or lowering both never passes through a capacity above its maximum.
 */
export const sharedParameters: readonly MysqlParameter[] = [
  // InnoDB (innodb_log_file_size and innodb_log_buffer_size differ by engine: see each flavor)
  // checked against the flavor's memory too (see checkOverrides)
  { name: 'innodb_buffer_pool_size', type: 'integer', restartRequired: false, min: 5_242_880, max: 1024 * gib },
  { name: 'innodb_flush_log_at_trx_commit', type: 'integer', restartRequired: false, min: 0, max: 2 },
  {
    name: 'innodb_flush_method',
    type: 'string',
    restartRequired: true,
    choices: ['fsync', 'O_DSYNC', 'littlesync', 'nosync', 'O_DIRECT', 'O_DIRECT_NO_FSYNC'],
  },
  { name: 'innodb_io_capacity_max', type: 'integer', restartRequired: false, min: 100, max: 4_294_967_295 },
  { name: 'innodb_io_capacity', type: 'integer', restartRequired: false, min: 100, max: 4_294_967_295 },
  { name: 'innodb_lock_wait_timeout', type: 'integer', restartRequired: false, min: 1, max: 100_000_000 },
  { name: 'innodb_file_per_table', type: 'integer', restartRequired: false, min: 0, max: 1 },
  { name: 'innodb_open_files', type: 'integer', restartRequired: true, min: 10, max: 2_147_483_647 },
  // connections
  { name: 'max_connections', type: 'integer', restartRequired: false, min: 10, max: 100_000 },
  { name: 'max_user_connections', type: 'integer', restartRequired: false, min: 0, max: 2_147_483_647 },
  { name: 'max_connect_errors', type: 'integer', restartRequired: false, min: 1, max: 4_294_967_295 },
  { name: 'wait_timeout', type: 'integer', restartRequired: false, min: 1, max: 31_536_000 },
  { name: 'interactive_timeout', type: 'integer', restartRequired: false, min: 1, max: 31_536_000 },
  { name: 'connect_timeout', type: 'integer', restartRequired: false, min: 2, max: 31_536_000 },
  { name: 'net_read_timeout', type: 'integer', restartRequired: false, min: 1, max: 31_536_000 },
  { name: 'net_write_timeout', type: 'integer', restartRequired: false, min: 1, max: 31_536_000 },
  { name: 'max_allowed_packet', type: 'integer', restartRequired: false, min: 1024, max: 1_073_741_824 },
  { name: 'max_prepared_stmt_count', type: 'integer', restartRequired: false, min: 0, max: 1_048_576 },
  { name: 'thread_cache_size', type: 'integer', restartRequired: false, min: 0, max: 16_384 },
  { name: 'table_open_cache', type: 'integer', restartRequired: false, min: 10, max: 524_288 },
  { name: 'table_definition_cache', type: 'integer', restartRequired: false, min: 400, max: 524_288 },
  // per-session buffers and in-memory tables
  { name: 'join_buffer_size', type: 'integer', restartRequired: false, min: 128, max: 4_294_967_168 },
  { name: 'sort_buffer_size', type: 'integer', restartRequired: false, min: 32_768, max: 4_294_967_295 },
  { name: 'read_buffer_size', type: 'integer', restartRequired: false, min: 8192, max: 2_147_479_552 },
  { name: 'read_rnd_buffer_size', type: 'integer', restartRequired: false, min: 1, max: 2_147_483_647 },
  { name: 'tmp_table_size', type: 'integer', restartRequired: false, min: 1024, max: maxSessionBytes },
  { name: 'max_heap_table_size', type: 'integer', restartRequired: false, min: 16_384, max: maxSessionBytes },
  { name: 'bulk_insert_buffer_size', type: 'integer', restartRequired: false, min: 0, max: maxSessionBytes },
  { name: 'key_buffer_size', type: 'integer', restartRequired: false, min: 8, max: 4_294_967_295 },
  { name: 'myisam_sort_buffer_size', type: 'integer', restartRequired: false, min: 4096, max: maxSessionBytes },
  // logging, to the instance's own log files
  { name: 'slow_query_log', type: 'boolean', restartRequired: false },
  { name: 'long_query_time', type: 'float', restartRequired: false, min: 0, max: 31_536_000 },
  { name: 'log_queries_not_using_indexes', type: 'boolean', restartRequired: false },
  { name: 'general_log', type: 'boolean', restartRequired: false },
  // SQL
  { name: 'sql_mode', type: 'string', restartRequired: false },
  { name: 'autocommit', type: 'integer', restartRequired: false, min: 0, max: 1 },
  { name: 'auto_increment_increment', type: 'integer', restartRequired: false, min: 1, max: 65_535 },
  { name: 'auto_increment_offset', type: 'integer', restartRequired: false, min: 1, max: 65_535 },
  // set together: see settingGroups in config.ts
  { name: 'character_set_server', type: 'string', restartRequired: false },
  { name: 'collation_server', type: 'string', restartRequired: false },
  { name: 'default_storage_engine', type: 'string', restartRequired: false },
  { name: 'event_scheduler', type: 'boolean', restartRequired: false },
  { name: 'performance_schema', type: 'boolean', restartRequired: true },
];

/** The rules as agents report them: Trove's fields only, in name order as Trove's rule files list them. */
export function reportedParameters(parameters: readonly MysqlParameter[]): ConfigurationParameter[] {
  return byName(parameters).map(({ name, type, restartRequired, min, max }) => ({
    name,
    type,
    restartRequired,
    ...(min === undefined ? {} : { min }),
    ...(max === undefined ? {} : { max }),
  }));
}

function byName(parameters: readonly MysqlParameter[]): MysqlParameter[] {
  return [...parameters].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
