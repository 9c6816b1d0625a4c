import { sharedParameters, type MysqlParameter } from '../mysql-family/parameters.js';

// MariaDB 10.11's configuration-group parameters: the family's (see mysql-family/parameters.ts)
// and what only MariaDB has or does its own way.
export const mariadbParameters: readonly MysqlParameter[] = [
  ...sharedParameters,
  // resized live since 10.11 (the server writes a new log and switches to it)
  { name: 'innodb_log_file_size', type: 'integer', restartRequired: false, min: 4_194_304, max: 274_877_906_944 },
  { name: 'innodb_log_buffer_size', type: 'integer', restartRequired: true, min: 2_097_152, max: 2_147_479_552 },
  // 2 is what Trove allows; on a case-sensitive file system the server itself runs it as 0
  { name: 'lower_case_table_names', type: 'integer', restartRequired: true, min: 0, max: 2 },
  // the variable 10.11 has; its option is transaction-isolation (transaction_isolation the variable only from 11.1)
  { name: 'tx_isolation', type: 'string', restartRequired: false, option: 'transaction-isolation' },
  { name: 'log_warnings', type: 'integer', restartRequired: false, min: 0, max: 4_294_967_295 },
];
