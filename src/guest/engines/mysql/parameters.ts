import { sharedParameters, type MysqlParameter } from '../mysql-family/parameters.js';

// MySQL 8's configuration-group parameters: the family's (see mysql-family/parameters.ts) and
// what only MySQL has or does its own way. Untested here (Debian ships no MySQL server): the
// restart behaviour follows MySQL 8.0's documentation of each variable.
// lower_case_table_names is left out: MySQL 8 takes it only when the data directory is made,
// and refuses to start when it changes afterwards.
export const mysqlParameters: readonly MysqlParameter[] = [
  ...sharedParameters,
  // read-only in 8.0 (innodb_redo_log_capacity is the live one from 8.0.30)
  { name: 'innodb_log_file_size', type: 'integer', restartRequired: true, min: 4_194_304, max: 274_877_906_944 },
  // dynamic since 8.0
  { name: 'innodb_log_buffer_size', type: 'integer', restartRequired: false, min: 1_048_576, max: 4_294_967_295 },
  { name: 'transaction_isolation', type: 'string', restartRequired: false },
  { name: 'log_error_verbosity', type: 'integer', restartRequired: false, min: 1, max: 3 },
];
