import { dirname, join } from 'node:path';
import type { ProcessRunner } from '../../process-runner.js';
import { isExecutable, probeAll, probeVersion, versionReport, type EngineIdentity, type Probe } from '../binary-discovery.js';
import type { EngineDiscovery } from '../engine.js';
import type { MysqlFamilyFlavor, ServerTools } from './flavor.js';

// Where a family member's server comes from: the configured directories first, then the
// usual places. A server whose `--version` names another engine of the family (Debian's
// /usr/sbin/mysqld is MariaDB) is not taken for this one.

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

/** The upgrade tool of the installation whose server lives in `binDir`: beside it or in its `bin` (Debian's /usr/bin beside /usr/sbin). */
export async function findUpgradeTool(flavor: MysqlFamilyFlavor, binDir: string): Promise<string | undefined> {
  for (const dir of [binDir, join(dirname(binDir), 'bin')]) {
    for (const name of flavor.upgrade?.toolNames ?? []) {
      if (await isExecutable(join(dir, name))) return join(dir, name);
    }
  }
  return undefined;
}

async function probe(flavor: MysqlFamilyFlavor, binDir: string, runner: ProcessRunner): Promise<Probe | undefined> {
  const tools = await findTools(flavor, binDir);
  if (tools === undefined) return undefined;
  return probeVersion(tools.server, binDir, runner, (output) => flavor.parseVersion(output), (output) => ({
    other: `${tools.server} is ${output.trim()}`,
  }));
}

export async function discoverMysqlFamily(
  flavor: MysqlFamilyFlavor,
  extraBinDirs: readonly string[],
  runner: ProcessRunner,
  engine: EngineIdentity,
): Promise<EngineDiscovery> {
  const binDirs = [...new Set([...extraBinDirs, ...flavor.defaultBinDirs])];
  const { binaries, failures, others } = await probeAll(binDirs, (binDir) => probe(flavor, binDir, runner));
  if (binaries.length > 0) {
    return { binaries, reports: binaries.map((binary) => versionReport(engine, binary.versionName, binary.version, null)) };
  }
  const reason = [...failures, flavor.missingReason(others)].join('; ');
  return { binaries, reports: [versionReport(engine, flavor.fallbackVersion, flavor.fallbackVersion, reason)] };
}
