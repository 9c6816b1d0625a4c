import { mkdir } from 'node:fs/promises';
import { CofferError } from '../../../common/index.js';
import type { ReplicationGrant } from '../engine.js';
import type { ReplicationHost } from './replication.js';
import { clearSourceState } from './restore.js';

// A replica's data directory made anew from its source: what a new replica starts from
// (prepareReplica), and what a former source or replica that cannot follow its new source
// starts over from (failover.ts).

/** pg_basebackup of a large cluster runs for hours; past this something is wrong */
const baseBackupTimeoutMs = 12 * 60 * 60 * 1000;

/** A libpq passfile line: `:` and `\` escaped as libpq reads them. */
export function passfileLine(grant: ReplicationGrant): string {
  const field = (value: string | number) => String(value).replace(/\\/g, '\\\\').replace(/:/g, '\\:');
  return `${field(grant.address)}:${field(grant.port)}:replication:${field(grant.user)}:${field(grant.password)}\n`;
}

/**
 * Replaces the data directory with a base backup of the source `grant` names (its passfile
 * written already), and has the guest log in with the source's admin password, which the copy
 * carries. A failed copy leaves no data directory.
 */
export async function copySource(host: ReplicationHost, grant: ReplicationGrant): Promise<void> {
  await host.discardDataDir();
  await host.setAdminPassword(grant.adminPassword);
  // as for initdb: the host makes the directory and hands it over before the engine's user fills it
  await mkdir(host.dataDir, { mode: 0o700 });
  await host.runner.handOver(host.dataDir);
  try {
    await baseBackup(host, grant);
    await clearSourceState(host.dataDir);
  } catch (err) {
    await host.discardDataDir();
    throw err;
  }
}

/** As the engine's user, over TCP to the primary (the wall lets this user reach it), into the empty data directory. */
async function baseBackup(host: ReplicationHost, grant: ReplicationGrant): Promise<void> {
  await host.runner
    .run(
      host.program('pg_basebackup'),
      [
        `--host=${grant.address}`,
        `--port=${grant.port}`,
        `--username=${grant.user}`,
        '--no-password',
        `--pgdata=${host.dataDir}`,
        '--wal-method=stream',
        `--slot=${grant.slot}`,
        '--checkpoint=fast',
        '--no-manifest',
      ],
      { timeoutMs: baseBackupTimeoutMs, env: { PGPASSFILE: host.passfile, PGAPPNAME: grant.slot, PGSSLMODE: 'prefer' } },
    )
    .catch((err: unknown) => {
      // pg_basebackup's own words say why (the primary unreachable, refused, out of space)
      const details = (err as { details?: unknown }).details;
      const why = typeof details === 'string' && details !== '' ? ` ${details}` : '';
      throw new CofferError('EngineError', `The replica could not copy its primary's data.${why}`, { cause: err });
    });
}
