import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  describeBackupStorage,
  openBackupStorage,
  readMasterKeyFile,
  readOrCreateMasterKeyFile,
  type BackupStorage,
  type BackupStorageConfig,
  type MasterKey,
} from '../backup/index.js';
import type { Logger } from '../common/index.js';

// Which backup storage a role uses and the master key that wraps projects' keys. `coffer serve`
// works from nothing: a local directory and a master key of its own, both in its data directory.
// Distributed roles use what they are given, and without it refuse backups, saying why.

export interface BackupSettings {
  backupStorage?: BackupStorageConfig | undefined;
  backupMasterKeyFile?: string | undefined;
}

export interface RoleBackups {
  storage: BackupStorage;
  masterKey: MasterKey;
}

/** serve: the configured storage and key, else `<data dir>/backups` and `<data dir>/backup-master.key` */
export async function serveBackups(settings: BackupSettings, dataDir: string, logger: Logger): Promise<RoleBackups> {
  let config = settings.backupStorage;
  if (config === undefined) {
    const dir = join(dataDir, 'backups');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    config = { driver: 'local', dir };
  }
  const masterKey = await readOrCreateMasterKeyFile(settings.backupMasterKeyFile ?? join(dataDir, 'backup-master.key'));
  logger.info({ storage: describeBackupStorage(config) }, 'backups stored in');
  return { storage: openBackupStorage(config), masterKey };
}

/** taskmanager and agent: both settings or no backups */
export async function roleBackups(settings: BackupSettings, logger: Logger): Promise<RoleBackups | undefined> {
  const { backupStorage, backupMasterKeyFile } = settings;
  if (backupStorage === undefined || backupMasterKeyFile === undefined) {
    logger.warn('backups are off: give --backup-storage and --backup-master-key-file (the same key file on every taskmanager and agent)');
    return undefined;
  }
  const masterKey = await readMasterKeyFile(backupMasterKeyFile);
  logger.info({ storage: describeBackupStorage(backupStorage) }, 'backups stored in');
  return { storage: openBackupStorage(backupStorage), masterKey };
}

/** api: the storage only (to check it takes a backup, and for locationRef) */
export function apiBackupStorage(settings: BackupSettings): BackupStorage | undefined {
  return settings.backupStorage === undefined ? undefined : openBackupStorage(settings.backupStorage);
}
