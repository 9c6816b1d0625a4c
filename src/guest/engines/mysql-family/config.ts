import { CofferError } from '../../../common/index.js';

// my.cnf, rendered whole from the flavor and the placement and passed with --defaults-file, so
// that no file of the host's own installation (/etc/mysql) changes what runs.

export interface MemorySettings {
  bufferPoolMb: number;
  logFileMb: number;
  maxConnections: number;
  tmpTableMb: number;
}

const clamp = (value: number, min: number, max: number) => Math.min(max, Math.max(min, value));

/**
 * InnoDB's buffer pool takes half of a small flavor's RAM and more of a large one's (what is
 * left serves connections and the OS); the redo log is sized after the pool; connections grow
 * with RAM.
 */
export function tuneMemory(memoryMb: number): MemorySettings {
  const share = memoryMb >= 4096 ? 0.7 : 0.5;
  const bufferPoolMb = Math.max(32, Math.floor(memoryMb * share));
  return {
    bufferPoolMb,
    logFileMb: clamp(Math.floor(bufferPoolMb / 4), 16, 2048),
    maxConnections: clamp(Math.floor(memoryMb / 4), 50, 2000),
    tmpTableMb: clamp(Math.floor(memoryMb / 32), 8, 256),
  };
}

/** A value in option-file syntax; quotes keep spaces and `#`, and nothing here needs an escape. */
export function optionValue(value: string): string {
  if (/[\r\n\0"\\]/.test(value)) {
    throw new CofferError('BadRequest', `The option value ${JSON.stringify(value)} cannot contain quotes, backslashes or line breaks.`);
  }
  return `"${value}"`;
}

export interface MyCnfInput {
  memoryMb: number;
  address: string;
  port: number;
  dataDir: string;
  tmpDir: string;
  /** the only directory LOAD DATA and SELECT ... INTO OUTFILE may touch */
  filesDir: string;
  socket: string;
  pidFile: string;
  slowLog: string;
  generalLog: string;
  /** TLS options (see tls.ts) */
  tls?: readonly string[];
  /** settings only this engine of the family knows */
  extra: (memory: MemorySettings) => readonly string[];
}

export function renderMyCnf(input: MyCnfInput): string {
  const memory = tuneMemory(input.memoryMb);
  const lines = [
    `# Written by Coffer from the instance's flavor (${input.memoryMb} MB RAM); rewritten on prepare and resize.`,
    '[mysqld]',
    `datadir = ${optionValue(input.dataDir)}`,
    // each instance its own: a shared tmpdir made parallel creates fail
    `tmpdir = ${optionValue(input.tmpDir)}`,
    `socket = ${optionValue(input.socket)}`,
    `pid-file = ${optionValue(input.pidFile)}`,
    `bind-address = ${input.address}`,
    `port = ${input.port}`,
    // accounts name addresses only; a slow or hostile resolver never delays a login
    'skip-name-resolve',
    'local-infile = 0',
    `secure-file-priv = ${optionValue(input.filesDir)}`,
    'character-set-server = utf8mb4',
    `max_connections = ${memory.maxConnections}`,
    `innodb_buffer_pool_size = ${memory.bufferPoolMb}M`,
    `tmp_table_size = ${memory.tmpTableMb}M`,
    `max_heap_table_size = ${memory.tmpTableMb}M`,
    'key_buffer_size = 8M',
    'performance_schema = OFF',
    // errors go to stderr, which the supervisor appends to the instance's error log
    'slow_query_log = OFF',
    `slow_query_log_file = ${optionValue(input.slowLog)}`,
    'long_query_time = 10',
    'general_log = OFF',
    `general_log_file = ${optionValue(input.generalLog)}`,
    ...(input.tls ?? []),
    ...input.extra(memory),
  ];
  return `${lines.join('\n')}\n`;
}
