// Backup storage: the port every backup and restore streams through (storage.ts), its three
// adapters (a local directory, OpenStack Swift, S3-compatible storage) and the configuration that
// picks one. What goes into an object (compression, encryption) is the codec's business.
export type { BackupStorage, GetOptions, PutOptions, StoredObject } from './storage.js';
export { LocalDirectoryStorage } from './local-directory-storage.js';
export { SwiftStorage, defaultSwiftSegmentBytes, type SwiftStorageOptions } from './swift-storage.js';
export type { SwiftCredentials } from './swift-connection.js';
export { S3Storage, defaultS3PartBytes, minS3PartBytes, type S3StorageOptions } from './s3-storage.js';
export {
  backupStorageConfigSchema,
  describeBackupStorage,
  openBackupStorage,
  parseBackupStorageConfig,
  type BackupStorageConfig,
} from './storage-config.js';
// The codec (compression, encryption, framing) and the keys it seals with.
export {
  decodeBackup,
  decodeBackupInto,
  encodeBackup,
  startBackupEncoding,
  type BackupCompression,
  type BackupEncoding,
  type DecodeOptions,
  type EncodeOptions,
} from './backup-codec.js';
export {
  backupKeyId,
  MasterKey,
  masterKeyHowTo,
  newProjectKey,
  readMasterKeyFile,
  readOrCreateMasterKeyFile,
  unwrapKey,
  wrapKey,
} from './backup-keys.js';
