import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { isCofferError, type Logger } from '../../../common/index.js';
import type { ProcessRunner } from '../../process-runner.js';
import type { RestoreLink } from '../engine.js';
import { feedRestore } from '../restore-input.js';
import { readToolFile, toolTimeoutMs } from './backup.js';
import { checkExtracted, extractArgs, prepareArgs, type BackupTools } from './backup-tools.js';
import type { MysqlFamilyFlavor } from './flavor.js';
import { account, adminUser, backupUser } from './sql.js';

// A restore chain made into a data directory, link by link so that the disk holds the full
// backup and one incremental at a time: each link's stream is unpacked by the family's
// extractor into a directory of its own, checked against its record, and prepared (the full
// backup) or applied to the full backup (an incremental); the prepared directory then becomes
// the data directory with one rename. Every program runs as the engine's OS user, in
// directories it owns inside a scratch directory the host keeps (so that what the guest renames
// into place is the directory it made, whatever a program put inside); the scratch directory
// goes whatever happens.

export interface RestoreChainInput {
  flavor: MysqlFamilyFlavor;
  runner: ProcessRunner;
  logger: Logger;
  tools: BackupTools;
  chain: readonly RestoreLink[];
  /** a directory that may not exist, in the instance's directory */
  scratchDir: string;
  /** the data directory to make: it must not exist */
  dataDir: string;
}

/** the tool's own files, which a server does not read and a restored instance need not keep */
const toolFiles = /^(xtrabackup_.*|backup-my\.cnf|mariadb_backup_.*)$/;

export async function restoreChain(input: RestoreChainInput): Promise<void> {
  const { flavor, runner, chain, scratchDir } = input;
  const engineDir = async (path: string) => {
    await mkdir(path, { mode: 0o700 });
    await runner.handOver(path);
  };
  await rm(scratchDir, { recursive: true, force: true });
  // the host's, traversable by the engine's user: the tools reach one link's directory from another's
  await mkdir(scratchDir, { mode: 0o711 });
  try {
    const full = join(scratchDir, 'full');
    for (const [index, link] of chain.entries()) {
      const dir = index === 0 ? full : join(scratchDir, `incremental-${index}`);
      await engineDir(dir);
      await extract(input, link, dir);
      checkExtracted(flavor, link, index, await readToolFile(join(dir, 'xtrabackup_checkpoints')));
      // run in the full backup, as the tool itself moves there: the relative paths mean the same before and after
      const args = prepareArgs(flavor, '.', { index, count: chain.length, dir: relative(full, dir) });
      await runner.run(input.tools.tool, args, { timeoutMs: toolTimeoutMs, cwd: full });
      if (index > 0) await rm(dir, { recursive: true, force: true });
      input.logger.info({ link: index + 1, of: chain.length }, `${flavor.title} backup restored`);
    }
    for (const name of await readdir(full)) if (toolFiles.test(name)) await rm(join(full, name), { force: true });
    await rename(full, input.dataDir);
  } finally {
    await rm(scratchDir, { recursive: true, force: true });
  }
}

/**
 * Unpacks one link. A link whose stream fails midway (a checksum that does not match) fails
 * with the stream's own error, after the extractor was killed.
 */
async function extract(input: RestoreChainInput, link: RestoreLink, dir: string): Promise<void> {
  const child = input.runner.stream(input.tools.extractor, extractArgs('.'), { timeoutMs: toolTimeoutMs, cwd: dir });
  // it writes nothing there, but its output must be read for it to settle
  child.stdout.resume();
  try {
    await feedRestore(link, child.stdin);
  } catch (err) {
    child.kill();
    const exitError = await child.exited.then(
      () => undefined,
      (exitErr: unknown) => exitErr,
    );
    // the link's own failure (a CofferError) says more than the extractor it cut short
    throw isCofferError(err) ? err : (exitError ?? err);
  }
  await child.exited;
}

/**
 * Runs once, from the init file of the restored server's first start, before it serves any
 * client: the guest's account takes the new instance's password (the source's must not work
 * on the copy) and the backup tool's account, which a backup carries while it runs, goes.
 */
export function restoredAccountsSql(flavor: MysqlFamilyFlavor, adminPasswordHash: string): string {
  const admin = account(adminUser, 'localhost');
  return [
    `DROP USER IF EXISTS ${admin}, ${account(backupUser, 'localhost')};`,
    `CREATE USER ${admin} IDENTIFIED ${flavor.identifiedClause(adminPasswordHash)};`,
    `GRANT ALL PRIVILEGES ON *.* TO ${admin} WITH GRANT OPTION;`,
    '',
  ].join('\n');
}
