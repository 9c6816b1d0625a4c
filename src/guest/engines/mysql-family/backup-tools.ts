import { dirname, join } from 'node:path';
import { CofferError } from '../../../common/index.js';
import { isExecutable } from '../binary-discovery.js';
import type { BackupFacts, BackupKind } from '../engine.js';
import type { MysqlFamilyFlavor } from './flavor.js';

// The family's physical backup tools (MariaDB's mariadb-backup and mbstream, Percona's
// xtrabackup and xbstream, which take the same arguments and write the same files): where they
// are, how they are called, and what their files say. Nothing here runs a program, so that the
// MySQL side, whose server this host cannot install, is checked without one.

export interface BackupTools {
  /** takes backups (`--backup`) and prepares them (`--prepare`) */
  tool: string;
  /** unpacks the tool's xbstream output (`-x -C <dir>`) */
  extractor: string;
  /** reads the binary log (flavor.backup.binlog) */
  binlogReader: string;
  /** the SQL client a point-in-time restore replays the binary log with */
  client: string;
}

/**
 * The tools of the installation whose server lives in `binDir`: beside it, in its `bin`, then
 * where the distribution's packages put them (`systemDirs`; not for a flavor's binary log
 * programs that must be its installation's own, flavor.backup.binlog.installationOnly).
 */
export async function findBackupTools(
  flavor: MysqlFamilyFlavor,
  binDir: string,
  systemDirs: readonly string[] = ['/usr/bin', '/usr/local/bin'],
): Promise<BackupTools> {
  const installation = [binDir, join(dirname(binDir), 'bin')];
  const find = async (names: readonly string[], dirs: readonly string[] = [...installation, ...systemDirs]) => {
    for (const dir of new Set(dirs)) for (const name of names) if (await isExecutable(join(dir, name))) return join(dir, name);
    return undefined;
  };
  const [tool, extractor] = [await find(flavor.backup.toolNames), await find(flavor.backup.extractorNames)];
  if (tool === undefined || extractor === undefined) {
    const missing = tool === undefined ? flavor.backup.toolNames[0] : flavor.backup.extractorNames[0];
    throw new CofferError(
      'EngineError',
      `This host cannot back up or restore ${flavor.title}: ${missing} is not installed. ${capitalise(flavor.backup.missingReason)}.`,
    );
  }
  const binlog = flavor.backup.binlog;
  const binlogDirs = binlog.installationOnly ? installation : undefined;
  const [binlogReader, client] = [await find(binlog.readerNames, binlogDirs), await find(binlog.clientNames, binlogDirs)];
  if (binlogReader === undefined || client === undefined) {
    const missing = binlogReader === undefined ? binlog.readerNames[0] : binlog.clientNames[0];
    throw new CofferError(
      'EngineError',
      `This host cannot archive or replay ${flavor.title}'s binary log: ${missing} is not installed` +
        `${binlog.installationOnly ? ` beside the server (${[...new Set(installation)].join(' or ')})` : ''}.`,
    );
  }
  return { tool, extractor, binlogReader, client };
}

const capitalise = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

/**
 * How long a backup waits for the sessions that hold LOCK TABLES (mariadb-backup's BACKUP STAGE
 * START waits for them, by default for ever): past it the backup fails saying so, instead of
 * keeping the instance in BACKUP while a tenant's session keeps its lock.
 */
export const backupLockWaitSeconds = 60;

/**
 * The tool's failures a user can act on, as their reasons; undefined for any other failure (its
 * own message and log stay the reason then).
 */
export function knownToolFailure(err: unknown): CofferError | undefined {
  const details = (err as { details?: unknown }).details;
  if (typeof details !== 'string') return undefined;
  if (/BACKUP STAGE START: Lock wait timeout exceeded/.test(details)) {
    return new CofferError(
      'EngineError',
      `A session of this instance held a table lock (LOCK TABLES) for over ${backupLockWaitSeconds} s, which a backup waits for: end it (UNLOCK TABLES or disconnect), then take the backup again.`,
      { cause: err },
    );
  }
  // the tool copies the redo log as the server writes it, into the same stream as the data: a
  // busy server, a slow storage, and the log wrapped around before the copy read it
  if (/Retrying read of log at LSN|was overwritten|log has wrapped around/i.test(details)) {
    return new CofferError(
      'EngineError',
      'The server wrote its redo log faster than the backup could copy it (the backup storage took the backup too slowly), so the backup is not usable: ' +
        'take it again when the instance is less busy, or give the instance a larger innodb_log_file_size (a configuration group).',
      { cause: err },
    );
  }
  return undefined;
}

export interface BackupArgsInput {
  /** the instance's my.cnf, for the data directory and InnoDB's settings */
  defaultsFile: string;
  /** an empty directory of the engine's user: the tool's target, and where it leaves its checkpoints and info */
  scratchDir: string;
  socket: string;
  user: string;
  /** the parent's `to-lsn`: the backup holds only pages changed since */
  incrementalLsn?: string;
}

/** A backup streamed to stdout as xbstream; the password comes through MYSQL_PWD, never the command line. */
export function backupArgs(flavor: MysqlFamilyFlavor, input: BackupArgsInput): string[] {
  return [
    // read only when it comes first
    `--defaults-file=${input.defaultsFile}`,
    '--backup',
    '--stream=xbstream',
    `--target-dir=${input.scratchDir}`,
    // a copy of xtrabackup_checkpoints and xtrabackup_info outside the stream: the facts
    `--extra-lsndir=${input.scratchDir}`,
    `--socket=${input.socket}`,
    `--user=${input.user}`,
    ...(input.incrementalLsn === undefined ? [] : [`--incremental-lsn=${input.incrementalLsn}`]),
    ...flavor.backup.backupArgs,
  ];
}

export function extractArgs(dir: string): string[] {
  return ['-x', '-C', dir];
}

/**
 * The prepare of link `index` of a chain of `count` links, all applied to the full backup in
 * `targetDir` in order (the full backup itself is link 0).
 */
export function prepareArgs(flavor: MysqlFamilyFlavor, targetDir: string, link: { index: number; count: number; dir?: string }): string[] {
  const last = link.index === link.count - 1;
  return [
    '--prepare',
    `--target-dir=${targetDir}`,
    ...(link.index === 0 ? [] : [`--incremental-dir=${link.dir ?? ''}`]),
    ...(flavor.backup.applyLogOnly && !last ? ['--apply-log-only'] : []),
  ];
}

/** `key = value` lines, as the tools write xtrabackup_checkpoints and xtrabackup_info. */
export function parseToolFile(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)\s*=\s?(.*)$/.exec(line.trimEnd());
    if (match !== null) values.set(match[1]!, match[2]!);
  }
  return values;
}

const lsnPattern = /^\d{1,20}$/;

/**
 * What a backup records, from the tool's xtrabackup_checkpoints and xtrabackup_info: the LSNs
 * an incremental continues from, the server's version (a restore needs the same major.minor),
 * the tool's id of the backup (an incremental names its parent's, so that a chain's order can
 * be checked even where two backups share an LSN), and the binary log position when the
 * server logs one (point-in-time recovery and replicas start there).
 */
export function backupFacts(checkpoints: string, info: string, parent?: BackupFacts): BackupFacts {
  const lsns = parseToolFile(checkpoints);
  const about = parseToolFile(info);
  const fromLsn = lsns.get('from_lsn');
  const toLsn = lsns.get('to_lsn');
  const uuid = about.get('uuid');
  const version = /^(\d+\.\d+\.\d+)/.exec(about.get('server_version') ?? '')?.[1];
  if (fromLsn === undefined || toLsn === undefined || !lsnPattern.test(fromLsn) || !lsnPattern.test(toLsn) || !uuid || version === undefined) {
    throw new CofferError('EngineError', 'The backup tool finished without recording its checkpoints, id and server version.', {
      details: `${checkpoints}\n${info}`.slice(0, 1500),
    });
  }
  const facts: BackupFacts = { uuid, 'from-lsn': fromLsn, 'to-lsn': toLsn, version };
  if (parent !== undefined) facts['parent-uuid'] = parent.uuid ?? '';
  // filename 'mysql-bin.000001', position '494', GTID of the last change '0-7-1'
  const binlog = about.get('binlog_pos') ?? '';
  const file = /filename '([^']*)'/.exec(binlog)?.[1];
  const position = /position '(\d+)'/.exec(binlog)?.[1];
  const gtid = /GTID of the last change '([^']*)'/.exec(binlog)?.[1];
  if (file && position !== undefined) {
    facts['binlog-file'] = file;
    facts['binlog-position'] = position;
  }
  if (gtid) facts.gtid = gtid;
  return facts;
}

/** Refuses an incremental whose parent this server cannot continue from. */
export function checkParent(flavor: MysqlFamilyFlavor, parent: BackupFacts, versionName: string): string {
  const toLsn = parent['to-lsn'];
  if (toLsn === undefined || !lsnPattern.test(toLsn) || !parent.uuid) {
    throw new CofferError(
      'BadRequest',
      `The parent backup was not taken by Coffer's ${flavor.title} engine (it records no LSN and id): take a full backup.`,
    );
  }
  if (majorMinor(parent.version) !== versionName) {
    throw new CofferError(
      'BadRequest',
      `The parent backup was taken from ${flavor.title} ${parent.version ?? '(unknown version)'}; ` +
        `this instance runs ${flavor.title} ${versionName}: take a full backup.`,
    );
  }
  return toLsn;
}

const majorMinor = (version: string | undefined) => /^(\d+\.\d+)\./.exec(version ?? '')?.[1];

/**
 * Checks a restore chain before anything is restored: one full backup first, then
 * incrementals each following the one before it, all from this server's major.minor.
 */
export function checkRestoreChain(flavor: MysqlFamilyFlavor, chain: readonly { kind: BackupKind; facts: BackupFacts }[], versionName: string): void {
  if (chain.length === 0) throw new CofferError('BadRequest', 'A restore needs at least one backup.');
  for (const [index, link] of chain.entries()) {
    const name = `Backup ${index + 1} of the restore chain`;
    const { facts } = link;
    if (index === 0 && link.kind !== 'full') {
      throw new CofferError(
        'BadRequest',
        `${name} is incremental: a restore starts with the full backup it follows, then each incremental in order.`,
      );
    }
    if (index > 0 && link.kind !== 'incremental') {
      throw new CofferError('BadRequest', `${name} is a full backup: a restore chain has one full backup, first, then only incrementals.`);
    }
    for (const key of ['uuid', 'from-lsn', 'to-lsn', 'version']) {
      if (!facts[key]) throw new CofferError('BadRequest', `${name} records no ${key}: it was not taken by Coffer's ${flavor.title} engine.`);
    }
    if (majorMinor(facts.version) !== versionName) {
      throw new CofferError(
        'BadRequest',
        `${name} was taken from ${flavor.title} ${facts.version}; this instance runs ${flavor.title} ${versionName}: ` +
          `restore it into an instance of version ${majorMinor(facts.version) ?? facts.version}.`,
      );
    }
    const previous = chain[index - 1]?.facts;
    if (previous !== undefined && (facts['parent-uuid'] !== previous.uuid || facts['from-lsn'] !== previous['to-lsn'])) {
      throw new CofferError(
        'BadRequest',
        `${name} does not follow backup ${index}: the chain is out of order or misses a backup between them ` +
          '(give the full backup, then every incremental in the order they were taken).',
      );
    }
  }
}

/** Refuses a link whose unpacked stream is not the backup its facts describe. */
export function checkExtracted(flavor: MysqlFamilyFlavor, link: { kind: BackupKind; facts: BackupFacts }, index: number, checkpoints: string): void {
  const lsns = parseToolFile(checkpoints);
  const type = lsns.get('backup_type');
  const kindMatches = link.kind === 'full' ? type === 'full-backuped' : type === 'incremental';
  if (!kindMatches || lsns.get('to_lsn') !== link.facts['to-lsn'] || lsns.get('from_lsn') !== link.facts['from-lsn']) {
    throw new CofferError(
      'BadRequest',
      `Backup ${index + 1} of the restore chain holds another ${flavor.title} backup than its record describes ` +
        `(${type ?? 'no checkpoints'}, LSN ${lsns.get('from_lsn') ?? '?'} to ${lsns.get('to_lsn') ?? '?'}).`,
    );
  }
}
