import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { escapeIdentifier, escapeLiteral } from 'pg';
import { CofferError, isCofferError } from '../../../common/index.js';
import type { ProcessRunner } from '../../process-runner.js';
import type { RestoreLink } from '../engine.js';
import { feedRestore } from '../restore-input.js';
import { adminRole, disableRootStatement, passwordSql, rootRole, withAdminClient, type AdminEndpoint } from './admin.js';

// Restoring a base backup (backup.ts) into a new instance's empty data directory, in the steps
// the lifecycle's prepare runs them:
//
// 1. `extractBaseBackup`: Debian's tar, run as the engine's OS user, unpacks the stream, so every
//    file belongs to that user and nothing is written anywhere else: GNU tar refuses members
//    with `..`, strips a leading `/`, and never writes through a symlink it extracted.
//    A backup this guest took (its facts record where its WAL ends) carries pg_basebackup's
//    manifest: the unpacked files are checked against it (pg_verifybackup, without reading them
//    whole: names and sizes, and the manifest's own checksum), so that a backup whose stream
//    came out short is refused before anything runs on it. Imported backups need not have one.
// 2. `clearSourceState`: what would make the copy act as its source: its lock files,
//    recovery/standby signals, and postgresql.auto.conf (ALTER SYSTEM, a superuser's: it is
//    read after Coffer's postgresql.conf and could hold the source's address, port, socket
//    directory, files or programs). Coffer's postgresql.conf and pg_hba.conf live outside the
//    data directory and are rendered for the new instance; the backup's own copies are unused.
// 3. `resetAdminOffline`: the backup holds the source's roles with their passwords, which the
//    guest does not know. The server runs once in single-user mode (no socket, no TCP: nobody
//    but this program can reach it), which fsyncs the unpacked files, replays the backup's WAL
//    to a consistent state and gives the guest's role the new instance's password.
// 4. The first start serves the guest's role only (pg_hba without any client line), and
//    `resetRestoredRoles` takes superuser from every other role and locks root out, before
//    clients are let in. As Trove resets root on restore, the source's root password opens
//    nothing: root is enabled anew on the new instance (which makes it a superuser again).
//    Superusers that root made are demoted too: the host a backup is restored on may not offer
//    root at all (engines whose root reaches the OS user are offered root only where each
//    instance has an OS user of its own). Tenants' other roles keep their passwords: their data
//    is what a restore is for.

const tarProgram = '/bin/tar';
/** unpacking a large cluster runs for a long time; past this something is wrong */
const extractTimeoutMs = 12 * 60 * 60 * 1000;
/** single-user mode replays the WAL written during the backup: on a busy source, a lot */
const replayTimeoutMs = 60 * 60 * 1000;

/**
 * The full backup of a chain a PostgreSQL instance of major version `versionName` can restore,
 * and the chain's last incremental (the WAL since the full one, wal-incremental.ts) when it has any.
 */
export function checkRestoreChain(links: readonly RestoreLink[], versionName: string): { full: RestoreLink; last?: RestoreLink } {
  const [link, ...incrementals] = links;
  if (link === undefined || link.kind !== 'full' || incrementals.some((l) => l.kind !== 'incremental')) {
    throw new CofferError('BadRequest', 'A PostgreSQL restore chain is one full backup and the incremental backups after it.');
  }
  if (link.facts.format !== undefined && link.facts.format !== 'tar') {
    throw new CofferError('BadRequest', `The backup is not a PostgreSQL base backup (format ${link.facts.format}).`);
  }
  const version = link.facts.version;
  if (version !== versionName) {
    throw new CofferError(
      'BadRequest',
      `The backup is of PostgreSQL ${version ?? 'of an unknown version'}; this instance runs PostgreSQL ${versionName}. ` +
        'Restore it into an instance of the version it was taken from.',
    );
  }
  const last = incrementals.at(-1);
  if (last !== undefined && (last.facts['restore-point'] === undefined || last.facts['wal-end'] === undefined || last.facts['wal-prefix'] !== link.facts['wal-prefix'])) {
    throw new CofferError('BadRequest', 'The incremental backup does not follow its full backup in the archived WAL.');
  }
  return last === undefined ? { full: link } : { full: link, last };
}

/**
 * Unpacks the link's stream into `dataDir` (empty, the engine user's) and checks it against its
 * manifest when it must have one, with `verifier` (pg_verifybackup of the instance's version).
 * The stream's own failure (the storage's ChecksumMismatch, say) is what rejects, when it
 * failed; else tar's, else the check's.
 */
export async function extractBaseBackup(runner: ProcessRunner, dataDir: string, link: RestoreLink, verifier: string): Promise<void> {
  const tar = runner.stream(tarProgram, ['--extract', '--file=-', '--no-same-owner'], { cwd: dataDir, timeoutMs: extractTimeoutMs });
  const [fed, exited] = await Promise.allSettled([feedRestore(link, tar.stdin), tar.exited]);
  if (fed.status === 'rejected' && isCofferError(fed.reason)) throw fed.reason;
  if (exited.status === 'rejected') throw exited.reason;
  if (fed.status === 'rejected') {
    throw new CofferError('EngineError', `The backup could not be read to its end: ${String(fed.reason)}`, { cause: fed.reason });
  }
  // pg_basebackup always writes a manifest; the guest's own backups always kept it (an imported one records no end)
  if (link.facts['stop-lsn'] === undefined) return;
  await runner
    .run(verifier, ['--quiet', '--exit-on-error', '--no-parse-wal', '--skip-checksums', '.'], { cwd: dataDir, timeoutMs: extractTimeoutMs })
    .catch((err: unknown) => {
      const details = isCofferError(err) ? err.details : undefined;
      throw new CofferError('EngineError', 'The backup is not the whole base backup its manifest lists: it cannot be restored.', {
        cause: err,
        ...(details === undefined ? {} : { details }),
      });
    });
}

/** Removes what the backup carried of its source's running state and settings (see step 2). */
export async function clearSourceState(dataDir: string): Promise<void> {
  const files = ['postmaster.pid', 'postmaster.opts', 'recovery.signal', 'standby.signal', 'postgresql.auto.conf', 'postgresql.auto.conf.tmp'];
  // rm never follows a symlink it removes
  await Promise.all(files.map((name) => rm(join(dataDir, name), { force: true })));
}

export interface OfflineServer {
  runner: ProcessRunner;
  /** the postgres program of the instance's version */
  postgres: string;
  dataDir: string;
  configFile: string;
}

/** Gives the guest's role `password` in single-user mode (see step 3); the server is stopped after. */
export async function resetAdminOffline(server: OfflineServer, password: string, recoverySettings: readonly string[] = []): Promise<void> {
  const verifier = await passwordSql(password);
  const role = escapeIdentifier(adminRole);
  // one statement a line; whatever the source's root did to the role, it logs in with this password again
  const statements = [
    `ALTER ROLE ${role} WITH SUPERUSER LOGIN CONNECTION LIMIT -1 VALID UNTIL 'infinity' PASSWORD ${escapeLiteral(verifier)}`,
    `ALTER ROLE ${role} RESET ALL`,
  ];
  await server.runner.run(
    server.postgres,
    [
      '--single',
      '-D',
      '.',
      '-c',
      `config_file=${relative(server.dataDir, server.configFile)}`,
      // an error ends the session with a failure status (single-user mode would go on and exit 0)
      '-c',
      'exit_on_error=on',
      // recovery from a backup starts by fsyncing every file of the data directory, which makes
      // tar's unsynced writes durable: the restore needs no sync pass of its own
      '-c',
      'recovery_init_sync_method=fsync',
      // the statement holds the password's verifier: never written to the log
      '-c',
      'log_min_error_statement=panic',
      '-c',
      'log_statement=none',
      '-c',
      'log_min_duration_statement=-1',
      '-c',
      'statement_timeout=0',
      // a point-in-time restore's: where the archived WAL is and where to stop (point-in-time.ts)
      ...recoverySettings.flatMap((setting) => ['-c', setting]),
      'postgres',
    ],
    { cwd: server.dataDir, timeoutMs: replayTimeoutMs, input: `${statements.join('\n')}\n` },
  );
}

/** Takes superuser from every role but the guest's and locks root out (see step 4). */
export async function resetRestoredRoles(endpoint: AdminEndpoint): Promise<void> {
  const lockout = await passwordSql(randomBytes(32).toString('base64url'));
  await withAdminClient(endpoint, 'postgres', async (client) => {
    const superusers = await client.query<{ name: string }>('SELECT rolname AS name FROM pg_roles WHERE rolsuper AND rolname <> $1', [adminRole]);
    for (const { name } of superusers.rows) await client.query(`ALTER ROLE ${escapeIdentifier(name)} WITH NOSUPERUSER`);
    const root = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [rootRole]);
    if ((root.rowCount ?? 0) > 0) await client.query(disableRootStatement(lockout));
  });
}
