import { access } from 'node:fs/promises';
import { constants } from 'node:fs';
import { dirname, join } from 'node:path';
import type { EngineVersionReport } from '../../../bus/index.js';
import type { ProcessRunner } from '../../process-runner.js';
import type { EngineBinary, EngineDiscovery } from '../engine.js';
import { mysqlFamilyCapabilities, mysqlFamilyParameters } from './capabilities.js';
import type { MysqlFamilyFlavor, ServerTools } from './flavor.js';

// Where a family member's server comes from: the configured directories first, then the
// usual places. A server whose `--version` names another engine of the family (Debian's
// /usr/sbin/mysqld is MariaDB) is not taken for this one.

async function isExecutable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/** The server and install script of the installation whose server lives in `binDir`. */
export async function findTools(flavor: MysqlFamilyFlavor, binDir: string): Promise<ServerTools | undefined> {
  let server: string | undefined;
  for (const name of flavor.serverNames) {
    if (await isExecutable(join(binDir, name))) {
      server = join(binDir, name);
      break;
    }
  }
  if (server === undefined) return undefined;
  const baseDir = dirname(binDir);
  if (flavor.installerNames.length === 0) return { server, baseDir };
  for (const dir of [binDir, join(baseDir, 'bin'), join(baseDir, 'scripts')]) {
    for (const name of flavor.installerNames) {
      if (await isExecutable(join(dir, name))) return { server, installer: join(dir, name), baseDir };
    }
  }
  return undefined;
}

type Probe = { binary: EngineBinary } | { failure: string } | { other: string };

async function probe(flavor: MysqlFamilyFlavor, binDir: string, runner: ProcessRunner): Promise<Probe | undefined> {
  const tools = await findTools(flavor, binDir);
  if (tools === undefined) return undefined;
  try {
    const { stdout } = await runner.run(tools.server, ['--version'], { timeoutMs: 10_000 });
    const parsed = flavor.parseVersion(stdout);
    if (parsed === undefined) return { other: `${tools.server} is ${stdout.trim()}` };
    return { binary: { ...parsed, binDir } };
  } catch (err) {
    return { failure: `${tools.server} does not run: ${err instanceof Error ? err.message : String(err)}` };
  }
}

function report(flavor: MysqlFamilyFlavor, name: string, version: string, inactiveReason: string | null): EngineVersionReport {
  return {
    datastore: flavor.manager,
    manager: flavor.manager,
    name,
    version,
    active: inactiveReason === null,
    inactiveReason,
    capabilities: mysqlFamilyCapabilities,
    parameters: mysqlFamilyParameters,
  };
}

export async function discoverMysqlFamily(
  flavor: MysqlFamilyFlavor,
  extraBinDirs: readonly string[],
  runner: ProcessRunner,
): Promise<EngineDiscovery> {
  const binaries: EngineBinary[] = [];
  const failures: string[] = [];
  const others: string[] = [];
  for (const binDir of [...new Set([...extraBinDirs, ...flavor.defaultBinDirs])]) {
    const result = await probe(flavor, binDir, runner);
    if (result === undefined) continue;
    if ('failure' in result) failures.push(result.failure);
    else if ('other' in result) others.push(result.other);
    else if (!binaries.some((b) => b.versionName === result.binary.versionName)) binaries.push(result.binary);
  }
  if (binaries.length > 0) {
    return { binaries, reports: binaries.map((binary) => report(flavor, binary.versionName, binary.version, null)) };
  }
  const reason = [...failures, flavor.missingReason(others)].join('; ');
  return { binaries, reports: [report(flavor, flavor.fallbackVersion, flavor.fallbackVersion, reason)] };
}
