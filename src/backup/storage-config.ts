import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { CofferError } from '../common/index.js';
import { LocalDirectoryStorage } from './local-directory-storage.js';
import { minS3PartBytes, S3Storage } from './s3-storage.js';
import type { BackupStorage } from './storage.js';
import { SwiftStorage } from './swift-storage.js';

// Which backup storage to use and how to reach it: validated once, then turned into an adapter.
// Every secret may be given in a file instead (`keyFile`, `tokenFile`, `secretAccessKeyFile`) so
// that it stays out of config dumps and process lists; secrets have no defaults, and
// `describeBackupStorage` is what may be logged.

const maxObjectBytes = 5 * 1024 * 1024 * 1024; // Swift's and S3's largest single object or part
const idleTimeoutMs = z.number().int().min(100).optional();
const url = z.url({ protocol: /^https?$/ });
const secret = z.string().min(1).optional();
const file = z.string().min(1).optional();

const localConfig = z.object({
  driver: z.literal('local'),
  /** an existing directory; containers are made inside it */
  dir: z.string().refine(isAbsolute, 'the backup directory must be an absolute path'),
});

const swiftConfig = z
  .object({
    driver: z.literal('swift'),
    /** tempauth (v1) endpoint, e.g. http://swift:8080/auth/v1.0 */
    authUrl: url.optional(),
    user: z.string().min(1).optional(),
    key: secret,
    keyFile: file,
    /** or a token issued elsewhere (e.g. Keystone) and the account's storage URL */
    storageUrl: url.optional(),
    token: secret,
    tokenFile: file,
    segmentBytes: z.number().int().min(1).max(maxObjectBytes).optional(),
    idleTimeoutMs,
  })
  .superRefine((config, ctx) => {
    const tempauth = config.authUrl !== undefined;
    const token = config.storageUrl !== undefined;
    if (tempauth === token) {
      ctx.addIssue({ code: 'custom', path: ['authUrl'], message: 'give either authUrl, user and key(File), or storageUrl and token(File)' });
    } else if (tempauth) {
      if (config.user === undefined) ctx.addIssue({ code: 'custom', path: ['user'], message: 'with authUrl, user is required' });
      if ((config.key === undefined) === (config.keyFile === undefined)) {
        ctx.addIssue({ code: 'custom', path: ['key'], message: 'with authUrl, give one of key and keyFile' });
      }
    } else if ((config.token === undefined) === (config.tokenFile === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['token'], message: 'with storageUrl, give one of token and tokenFile' });
    }
  });

const s3Config = z
  .object({
    driver: z.literal('s3'),
    endpoint: url,
    region: z.string().min(1),
    accessKeyId: z.string().min(1),
    secretAccessKey: secret,
    secretAccessKeyFile: file,
    forcePathStyle: z.boolean().default(false),
    partBytes: z.number().int().min(minS3PartBytes).max(maxObjectBytes).optional(),
    idleTimeoutMs,
  })
  .superRefine((config, ctx) => {
    if ((config.secretAccessKey === undefined) === (config.secretAccessKeyFile === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['secretAccessKey'], message: 'give one of secretAccessKey and secretAccessKeyFile' });
    }
  });

export const backupStorageConfigSchema = z.discriminatedUnion('driver', [localConfig, swiftConfig, s3Config]);

export type BackupStorageConfig = z.output<typeof backupStorageConfigSchema>;

/** Validates raw settings (a config file's `backupStorage`); BadRequest names what is wrong, never a value. */
export function parseBackupStorageConfig(raw: unknown): BackupStorageConfig {
  const result = backupStorageConfigSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join('.') || 'backup storage'}: ${issue.message}`).join('; ');
    throw new CofferError('BadRequest', `Invalid backup storage configuration: ${problems}`);
  }
  return Object.freeze(result.data);
}

/** The adapter `config` chooses; secret files are read now. */
export function openBackupStorage(config: BackupStorageConfig): BackupStorage {
  switch (config.driver) {
    case 'local':
      return new LocalDirectoryStorage(config.dir);
    case 'swift':
      return new SwiftStorage({
        credentials:
          config.authUrl !== undefined
            ? { authUrl: config.authUrl, user: config.user!, key: config.key ?? readSecret(config.keyFile!, 'Swift key file') }
            : { storageUrl: config.storageUrl!, token: config.token ?? readSecret(config.tokenFile!, 'Swift token file') },
        ...(config.segmentBytes === undefined ? {} : { segmentBytes: config.segmentBytes }),
        ...(config.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: config.idleTimeoutMs }),
      });
    case 's3':
      return new S3Storage({
        endpoint: config.endpoint,
        region: config.region,
        accessKeyId: config.accessKeyId,
        secretAccessKey: config.secretAccessKey ?? readSecret(config.secretAccessKeyFile!, 'S3 secret access key file'),
        forcePathStyle: config.forcePathStyle,
        ...(config.partBytes === undefined ? {} : { partBytes: config.partBytes }),
        ...(config.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: config.idleTimeoutMs }),
      });
  }
}

/** What a log line may say about the storage: where it is, never a secret. */
export function describeBackupStorage(config: BackupStorageConfig): string {
  switch (config.driver) {
    case 'local':
      return `local directory ${config.dir}`;
    case 'swift':
      return config.authUrl !== undefined ? `Swift at ${config.authUrl} as ${config.user}` : `Swift account ${config.storageUrl}`;
    case 's3':
      return `S3 at ${config.endpoint} (${config.region}) as ${config.accessKeyId}`;
  }
}

function readSecret(path: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new CofferError('BadRequest', `Cannot read the ${what} ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'}): check that it exists and that Coffer may read it.`);
  }
  if (text === '') throw new CofferError('BadRequest', `The ${what} ${path} is empty.`);
  return text;
}
