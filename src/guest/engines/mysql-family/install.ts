import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CofferError } from '../../../common/index.js';
import type { Logger } from '../../../common/index.js';
import type { ProcessRunner } from '../../process-runner.js';
import type { EngineBinary, WarmSource, WarmStart } from '../engine.js';
import { writeEngineFile } from '../engine-files.js';
import { poolSecretName, syncDirectory, takeWarmEntry, writeDurably } from '../warm-entry.js';
import { registrySchema } from './account-registry.js';
import { findTools } from './binaries.js';
import { cofferSettings, renderMyCnf } from './config.js';
import type { MysqlFamilyFlavor } from './flavor.js';
import { killServersIn } from './server.js';
import { adminUser } from './sql.js';

// A data directory made by the flavor's install (mariadb-install-db): at prepare, or ahead of
// time by the host's warm pool, as an entry laid out as warm-entry.ts says. One install per
// entry, never a copy of a template: each keeps what its install made its own (Aria's control
// file carries a UUID of its install). An entry holds nothing of any instance: its install
// writes no binary log (an instance's begins at its first start, under its own server id, so
// its GTID state is its own), mysql.gtid_slave_pos is empty, and the guest's account has the
// entry's pool password until the instance that takes it rotates it (lifecycle.ts).

const installTimeoutMs = 180_000;
const secretFile = poolSecretName(adminUser);
/** where a taken entry lands in the instance's directory before its data directory moves into place */
const landingName = '.warm-data';
/**
 * The flavor (the smallest seeded one) whose memory-derived settings an entry is installed
 * with: of what they set only the redo log's size stays on disk, and InnoDB resizes it at an
 * instance's first start when its flavor differs.
 */
const entryMemoryMb = 256;

/** The install's SQL: the guest's account with `adminPasswordHash`, then the guest's tables, before any server serves. */
export function installSql(flavor: MysqlFamilyFlavor, adminPasswordHash: string): string {
  return `${[flavor.initSql(adminPasswordHash), ...registrySchema.map((statement) => `${statement};`)].join('\n')}\n`;
}

/**
 * The entry's option file: the settings an instance's own install renders (character set and
 * collation shape the databases it makes), but no binary log and no placement; the install's
 * server never listens (bootstrap).
 */
function entryCnf(flavor: MysqlFamilyFlavor, dataDir: string, tmpDir: string): string {
  return renderMyCnf({
    memoryMb: entryMemoryMb,
    address: '127.0.0.1',
    port: 3306,
    dataDir,
    tmpDir,
    filesDir: tmpDir,
    socket: join(dataDir, 'mysqld.sock'),
    pidFile: join(dataDir, 'mysqld.pid'),
    slowLog: join(tmpDir, 'slow-query.log'),
    generalLog: join(tmpDir, 'general.log'),
    extraOptions: [],
    settings: cofferSettings(entryMemoryMb, (memory) => flavor.extraSettings(memory)),
    parameters: flavor.parameters,
  });
}

/** The engine's user fills these; it could not create them in the host's directory. */
async function engineDirs(runner: ProcessRunner, paths: readonly string[]): Promise<void> {
  for (const path of paths) {
    await mkdir(path, { mode: 0o700 });
    await runner.handOver(path);
  }
}

/** An entry's files: the data directory and the pool password stay, the rest serves its install alone. */
function entryPaths(dir: string) {
  return {
    dataDir: join(dir, 'data'),
    secret: join(dir, secretFile),
    tmpDir: join(dir, 'tmp'),
    configFile: join(dir, 'install.cnf'),
    initFile: join(dir, '.init.sql'),
  };
}

async function makeEntry(flavor: MysqlFamilyFlavor, dir: string, binary: EngineBinary, runner: ProcessRunner, signal: AbortSignal): Promise<void> {
  const tools = await findTools(flavor, binary.binDir);
  if (tools === undefined) throw new CofferError('DatastoreVersionInactive', `No ${flavor.title} server in ${binary.binDir}.`);
  const { dataDir, secret, tmpDir, configFile, initFile } = entryPaths(dir);
  await engineDirs(runner, [dataDir, tmpDir]);
  const password = randomBytes(24).toString('base64url');
  await writeDurably(secret, password);
  await writeEngineFile(runner, configFile, entryCnf(flavor, dataDir, tmpDir));
  await writeEngineFile(runner, initFile, installSql(flavor, flavor.hashPassword(password)));
  const options = { timeoutMs: installTimeoutMs, cwd: dataDir, signal, lowPriority: true };
  try {
    const command = flavor.initCommand(tools, configFile, initFile);
    await runner.run(command.file, command.args, options);
    // the install's server syncs InnoDB's files as it shuts down, not every file and directory entry it wrote
    await runner.run('/usr/bin/find', ['.', '-exec', '/bin/sync', '--', '{}', '+'], options);
  } finally {
    for (const path of [initFile, configFile, tmpDir]) await rm(path, { recursive: true, force: true });
  }
  await syncDirectory(dir);
}

/** What the host's warm pool makes ahead of time for `flavor`. */
export function mysqlFamilyWarmStart(flavor: MysqlFamilyFlavor): WarmStart {
  return {
    make: (dir, binary, runner, signal) => makeEntry(flavor, dir, binary, runner, signal),
    // a killed install may leave its bootstrap server behind, still working in the entry
    discard: (dir) => killServersIn(join(dir, 'data')),
  };
}

/**
 * Takes an entry whose data directory becomes `dataDir` (which must not exist) and returns the
 * password the guest's account has in it; undefined when the pool had none, and the caller
 * installs as it would without a pool.
 */
export function takeWarmDataDir(source: WarmSource, instanceDir: string, dataDir: string, logger: Logger): Promise<string | undefined> {
  return takeWarmEntry(source, join(instanceDir, landingName), dataDir, secretFile, logger);
}
