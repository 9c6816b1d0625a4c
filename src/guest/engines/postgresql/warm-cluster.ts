import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../../common/index.js';
import type { ProcessRunner } from '../../process-runner.js';
import type { EngineBinary, WarmSource, WarmStart } from '../engine.js';
import { poolSecretName, takeWarmEntry, writeDurably } from '../warm-entry.js';
import { adminRole } from './admin.js';
import { killDataDirProcesses } from './postmaster.js';

export { syncDirectory } from '../warm-entry.js';

// A warm cluster (a pool entry as warm-entry.ts lays it out): `<dir>/data`, made by an initdb
// of its own ahead of time (so it has its own system identifier, unlike a copy of a template),
// and beside it the random password its superuser was given, which the instance that takes it
// rotates to its own at once.

const secretFile = poolSecretName(adminRole);
/** where a taken cluster lands in the instance's directory before its data directory moves into place */
const landingName = '.warm-cluster';
const initdbTimeoutMs = 120_000;

/** The same cluster whether made ahead of time or at prepare: only the fsync is scheduled apart. */
export function initdbArguments(dataDir: string, pwfile: string): string[] {
  return [
    `--pgdata=${dataDir}`,
    `--username=${adminRole}`,
    `--pwfile=${pwfile}`,
    '--auth=scram-sha-256',
    '--encoding=UTF8',
    '--locale=C.UTF-8',
  ];
}

/**
 * initdb leaves the statistics of its own sessions behind (pg_stat/pgstat.stat, read at the first
 * start), with an entry for template1 and postgres, and the autovacuum launcher visits every
 * database that has an entry: a worker forked into each once per autovacuum_naptime, idle or not,
 * which is most of what an idle server costs (bench/results/postgresql-idle.md). Without initdb's
 * file a database gets its entry when a session first connects to it: the guest's `postgres` and
 * the tenant's databases at once, template1 (which no one connects to) never, and like template0
 * it is then vacuumed only when its age nears wraparound (the launcher checks that for every
 * database, entry or not). What is lost is initdb's own counts. Run on the cluster before its
 * first start, as the engine's user (the data directory is that user's).
 */
export async function forgetInitdbStatistics(runner: ProcessRunner, dataDir: string): Promise<void> {
  await runner.run('/bin/rm', ['-f', '--', join(dataDir, 'pg_stat', 'pgstat.stat')], { timeoutMs: initdbTimeoutMs });
}

async function makeWarmCluster(dir: string, binary: EngineBinary, runner: ProcessRunner, signal: AbortSignal): Promise<void> {
  const dataDir = join(dir, 'data');
  // initdb fills an empty directory; the engine's user could not create one in the host's
  await mkdir(dataDir, { mode: 0o700 });
  await runner.handOver(dataDir);
  const password = randomBytes(24).toString('base64url');
  await writeDurably(join(dir, secretFile), password);
  const pwfile = join(dir, '.initdb-pwfile');
  await writeFile(pwfile, password, { mode: 0o600 });
  await runner.handOver(pwfile);
  try {
    // with initdb's own fsync: the host counts the cluster complete once this returns
    await runner.run(join(binary.binDir, 'initdb'), initdbArguments(dataDir, pwfile), {
      timeoutMs: initdbTimeoutMs,
      signal,
      lowPriority: true,
    });
  } finally {
    await rm(pwfile, { force: true });
  }
}

export const postgresqlWarmStart: WarmStart = {
  make: makeWarmCluster,
  // a killed initdb leaves its single-user postgres behind until it notices its input closed
  discard: (dir) => killDataDirProcesses(join(dir, 'data')),
};

/**
 * Takes a warm cluster whose data directory becomes `dataDir` (which must not exist) and
 * returns the password its superuser has; undefined when the pool had none, and the caller
 * runs initdb as it would without a pool.
 */
export function takeWarmCluster(source: WarmSource, instanceDir: string, dataDir: string, logger: Logger): Promise<string | undefined> {
  return takeWarmEntry(source, join(instanceDir, landingName), dataDir, secretFile, logger);
}
