import type { ConfigurationParameter } from '../../../bus/index.js';
import type { EngineCapabilities } from '../engine.js';

// What the MySQL-family guest implements, for MariaDB and MySQL alike.
export const mysqlFamilyCapabilities: EngineCapabilities = {
  databases: true,
  users: true,
  userHosts: true,
  userAccess: true,
  characterSets: true,
  root: true,
  accessRules: true,
  backup: false,
  replication: false,
  configurationGroups: false,
};

/** The settings a configuration group may change (Trove's validation-rules.json for MySQL, abridged). */
export const mysqlFamilyParameters: ConfigurationParameter[] = [
  { name: 'max_connections', type: 'integer', restartRequired: false, min: 1, max: 100_000 },
  { name: 'innodb_buffer_pool_size', type: 'integer', restartRequired: false, min: 5_242_880, max: 68_719_476_736 },
  { name: 'wait_timeout', type: 'integer', restartRequired: false, min: 1, max: 31_536_000 },
  { name: 'interactive_timeout', type: 'integer', restartRequired: false, min: 1, max: 31_536_000 },
  { name: 'max_allowed_packet', type: 'integer', restartRequired: false, min: 1024, max: 1_073_741_824 },
  { name: 'innodb_log_file_size', type: 'integer', restartRequired: true, min: 1_048_576, max: 4_294_967_295 },
  { name: 'innodb_flush_log_at_trx_commit', type: 'integer', restartRequired: false, min: 0, max: 2 },
  { name: 'long_query_time', type: 'float', restartRequired: false, min: 0, max: 31_536_000 },
  { name: 'slow_query_log', type: 'boolean', restartRequired: false },
  { name: 'character_set_server', type: 'string', restartRequired: false },
  { name: 'collation_server', type: 'string', restartRequired: false },
  { name: 'sql_mode', type: 'string', restartRequired: false },
];
