import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import pLimit from 'p-limit';
import { CofferError } from '../common/index.js';
import {
  checkContainerName,
  checkMetadata,
  checkObjectName,
  checkObjectPrefix,
  encodeMetadataValue,
} from './object-names.js';
import { idleWatched } from './idle-watched-stream.js';
import { readSegments, uploadSegments } from './segment-reader.js';
import type { BackupStorage, GetOptions, PutOptions, StoredObject } from './storage.js';
import {
  checksumMismatch,
  containerMissing,
  endpointOf,
  objectMissing,
  storageFailed,
  storageRefusedCredentials,
  storageUnreachable,
  transferBrokenOff,
} from './storage-errors.js';
import { verifiedStream } from './verified-stream.js';

// Backup objects in any S3-compatible storage. A body that fits in one part is one PUT; a larger
// one a multipart upload, which S3 shows under its name only once completed and which is aborted
// when the put fails. S3 fixes an object's metadata when its upload starts, before the SHA-256 of
// a streamed body is known, and rewriting it afterwards would copy the whole object server-side
// (and fails past 5 GiB): the SHA-256 lives in a small record object beside it instead,
// `<dir>/.<last part>.meta.json`, written once the object is complete and naming the object's
// ETag. An object whose record is missing or names another ETag (a put that stopped before its
// record, or an object rewritten by someone else) is not listed or returned by head. The user
// metadata is also set on the object itself (x-amz-meta-*), for other S3 tools.

export interface S3StorageOptions {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** `<endpoint>/<bucket>/<key>` instead of `<bucket>.<endpoint host>/<key>` (most non-AWS storage) */
  forcePathStyle?: boolean;
  /** bytes a part holds: at least 5 MiB (S3's rule); an object may have 10000 parts */
  partBytes?: number;
  /** a request fails once nothing moved for this long */
  idleTimeoutMs?: number;
}

export const defaultS3PartBytes = 64 * 1024 * 1024;
export const minS3PartBytes = 5 * 1024 * 1024;
const maxParts = 10_000;
const recordConcurrency = 4;

interface ObjectRecord {
  size: number;
  sha256: string;
  etag: string;
  metadata: Record<string, string>;
}

export class S3Storage implements BackupStorage {
  readonly kind = 's3';
  private readonly client: S3Client;
  private readonly endpoint: string;
  private readonly partBytes: number;
  private readonly idleTimeoutMs: number;
  private readonly location: { url: URL; pathStyle: boolean };

  constructor(options: S3StorageOptions) {
    this.location = { url: new URL(options.endpoint), pathStyle: options.forcePathStyle ?? false };
    this.endpoint = endpointOf(options.endpoint);
    this.partBytes = options.partBytes ?? defaultS3PartBytes;
    if (this.partBytes < minS3PartBytes) {
      throw new CofferError('BadRequest', `S3 parts must hold at least ${minS3PartBytes} bytes (partBytes is ${this.partBytes}).`);
    }
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    this.client = new S3Client({
      endpoint: options.endpoint,
      region: options.region,
      credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
      forcePathStyle: options.forcePathStyle ?? false,
      // The SDK adds CRC checksums (and aws-chunked bodies) that many S3-compatible servers refuse;
      // parts carry a Content-MD5 instead and the whole object is checked by its SHA-256.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: this.idleTimeoutMs, socketTimeout: this.idleTimeoutMs },
    });
  }

  async ensureContainer(container: string): Promise<void> {
    checkBucket(container);
    const what = `use bucket ${container}`;
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: container }));
      return;
    } catch (err) {
      if (statusOf(err) !== 404) throw this.failure(err, what, container);
    }
    try {
      await this.client.send(new CreateBucketCommand({ Bucket: container }));
    } catch (err) {
      if ((err as Error).name !== 'BucketAlreadyOwnedByYou') throw this.failure(err, `create bucket ${container}`, container);
    }
  }

  async put(container: string, name: string, body: Readable, options: PutOptions = {}): Promise<StoredObject> {
    checkBucket(container);
    checkObjectName(name);
    const metadata = { ...options.metadata };
    checkMetadata(metadata);
    const { signal, onProgress } = options;
    // The signal stops the put between requests, not inside one: a request that stores something,
    // cut off on this side, may still be stored by the server after the clean-up below ran (a part
    // after its upload was aborted), and nothing would remove it then.
    const what = `store backup object ${name}`;
    // the storage's failures become storage errors; the body's own failure stays what it is
    const call = <T>(request: Promise<T>): Promise<T> =>
      request.catch((err: unknown) => {
        throw signal?.aborted ? signal.reason : this.failure(err, what, container);
      });
    const objectMetadata = Object.fromEntries(Object.entries(metadata).map(([key, value]) => [key, encodeMetadataValue(value)]));
    const sha256 = createHash('sha256');
    let size = 0;
    let uploadId: string | undefined;
    let etag: string | undefined;
    try {
      const parts = await uploadSegments<CompletedPart | undefined>(readSegments(body, this.partBytes, signal), async (segment) => {
        sha256.update(segment.data);
        size += segment.data.length;
        const md5 = createHash('md5').update(segment.data).digest('base64');
        if (segment.index === 0 && segment.last) {
          const stored = await call(
            this.client.send(new PutObjectCommand({ Bucket: container, Key: name, Body: segment.data, ContentLength: segment.data.length, ContentMD5: md5, Metadata: objectMetadata })),
          );
          etag = stored.ETag;
          onProgress?.(size);
          return undefined;
        }
        if (segment.index >= maxParts) {
          throw new CofferError('BadRequest', `Backup object ${name} needs more than ${maxParts} S3 parts of ${this.partBytes} bytes: configure a larger partBytes.`);
        }
        uploadId ??= (await call(this.client.send(new CreateMultipartUploadCommand({ Bucket: container, Key: name, Metadata: objectMetadata })))).UploadId;
        const part = await call(
          this.client.send(
            new UploadPartCommand({
              Bucket: container,
              Key: name,
              UploadId: uploadId,
              PartNumber: segment.index + 1,
              Body: segment.data,
              ContentLength: segment.data.length,
              ContentMD5: md5,
            }),
          ),
        );
        onProgress?.(size);
        const completed: CompletedPart = { PartNumber: segment.index + 1, ETag: part.ETag };
        return completed;
      });
      signal?.throwIfAborted();
      if (uploadId !== undefined) {
        const completed = await call(
          this.client.send(
            new CompleteMultipartUploadCommand({
              Bucket: container,
              Key: name,
              UploadId: uploadId,
              MultipartUpload: { Parts: parts.filter((part): part is CompletedPart => part !== undefined) },
            }),
          ),
        );
        uploadId = undefined;
        etag = completed.ETag;
      }
      signal?.throwIfAborted();
      const record: ObjectRecord = { size, sha256: sha256.digest('hex'), etag: unquote(etag), metadata };
      await call(
        this.client.send(new PutObjectCommand({ Bucket: container, Key: recordKey(name), Body: JSON.stringify(record), ContentType: 'application/json' })),
      );
      return { name, size, sha256: record.sha256, metadata };
    } catch (err) {
      await this.undo(container, name, uploadId, etag !== undefined);
      throw signal?.aborted ? signal.reason : err;
    }
  }

  async get(container: string, name: string, options: GetOptions = {}): Promise<Readable> {
    checkBucket(container);
    checkObjectName(name);
    let body: Readable;
    try {
      const reply = await this.client.send(
        new GetObjectCommand({ Bucket: container, Key: name }),
        options.signal === undefined ? {} : { abortSignal: options.signal },
      );
      body = reply.Body as Readable;
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason;
      if ((err as Error).name === 'NoSuchKey') throw objectMissing(container, name, this.endpoint);
      throw this.failure(err, `read backup object ${name}`, container);
    }
    // the socket's idle timeout would also end a download its reader is slow to take
    (body as IncomingMessage).socket?.setTimeout(0);
    return verifiedStream(
      idleWatched(body, this.idleTimeoutMs),
      (err) => (options.signal?.aborted ? (options.signal.reason as Error) : transferBrokenOff(this.endpoint, name, err)),
      options.expectedSha256,
      (actual) => checksumMismatch(container, name, options.expectedSha256!, actual),
    );
  }

  async head(container: string, name: string): Promise<StoredObject | undefined> {
    checkBucket(container);
    checkObjectName(name);
    let object: { etag: string; size: number };
    try {
      const reply = await this.client.send(new HeadObjectCommand({ Bucket: container, Key: name }));
      object = { etag: unquote(reply.ETag), size: reply.ContentLength ?? 0 };
    } catch (err) {
      if (statusOf(err) !== 404) throw this.failure(err, `read backup object ${name}`, container);
      await this.ensureBucketExists(container);
      return undefined;
    }
    return this.recordOf(container, name, object);
  }

  async list(container: string, prefix = ''): Promise<StoredObject[]> {
    checkBucket(container);
    checkObjectPrefix(prefix);
    const objects: { name: string; etag: string; size: number }[] = [];
    try {
      for (let token: string | undefined; ; ) {
        const page = await this.client.send(new ListObjectsV2Command({ Bucket: container, Prefix: prefix, ContinuationToken: token }));
        for (const entry of page.Contents ?? []) {
          // records, and names that are not Coffer's (see object-names.ts)
          if (entry.Key === undefined || entry.Key.split('/').some((part) => part.startsWith('.'))) continue;
          objects.push({ name: entry.Key, etag: unquote(entry.ETag), size: entry.Size ?? 0 });
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
        if (token === undefined) break;
      }
    } catch (err) {
      throw this.failure(err, `list bucket ${container}`, container);
    }
    const limit = pLimit(recordConcurrency);
    const records = await Promise.all(objects.map((object) => limit(() => this.recordOf(container, object.name, object))));
    return records.filter((record): record is StoredObject => record !== undefined).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async delete(container: string, name: string): Promise<void> {
    checkBucket(container);
    checkObjectName(name);
    try {
      // the record first: from then on the object is gone for head and list
      await this.client.send(new DeleteObjectCommand({ Bucket: container, Key: recordKey(name) }));
      await this.client.send(new DeleteObjectCommand({ Bucket: container, Key: name }));
      // the parts of an upload whose writer died before completing it, which S3 keeps (and bills) until aborted
      for (let keyMarker: string | undefined, uploadIdMarker: string | undefined; ; ) {
        const page = await this.client.send(
          new ListMultipartUploadsCommand({ Bucket: container, Prefix: name, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
        );
        for (const upload of page.Uploads ?? []) {
          if (upload.Key !== name || upload.UploadId === undefined) continue;
          await this.client
            .send(new AbortMultipartUploadCommand({ Bucket: container, Key: name, UploadId: upload.UploadId }))
            .catch((err: unknown) => {
              // its put gave up on it meanwhile
              if ((err as Error).name !== 'NoSuchUpload') throw err;
            });
        }
        if (page.IsTruncated !== true) break;
        [keyMarker, uploadIdMarker] = [page.NextKeyMarker, page.NextUploadIdMarker];
      }
    } catch (err) {
      if ((err as Error).name === 'NoSuchBucket' || statusOf(err) === 404) return;
      throw this.failure(err, `delete backup object ${name}`, container);
    }
  }

  locationOf(container: string, name: string): string {
    const key = name.split('/').map(encodeURIComponent).join('/');
    const { url, pathStyle } = this.location;
    if (pathStyle) return `${url.origin}${url.pathname.replace(/\/+$/, '')}/${container}/${key}`;
    return `${url.protocol}//${container}.${url.host}/${key}`;
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private async recordOf(container: string, name: string, object: { etag: string; size: number }): Promise<StoredObject | undefined> {
    let record: ObjectRecord;
    try {
      const reply = await this.client.send(new GetObjectCommand({ Bucket: container, Key: recordKey(name) }));
      record = JSON.parse(await reply.Body!.transformToString()) as ObjectRecord;
    } catch (err) {
      if ((err as Error).name === 'NoSuchKey') return undefined;
      if (err instanceof SyntaxError) return undefined; // not a record this adapter wrote
      throw this.failure(err, `read the record of backup object ${name}`, container);
    }
    if (record.etag !== object.etag || record.size !== object.size) return undefined;
    return { name, size: record.size, sha256: record.sha256, metadata: record.metadata };
  }

  private async ensureBucketExists(container: string): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: container }));
    } catch (err) {
      throw this.failure(err, `use bucket ${container}`, container);
    }
  }

  /** Removes what a failed put left: its multipart upload, or the object it stored and its record. */
  private async undo(container: string, name: string, uploadId: string | undefined, stored: boolean): Promise<void> {
    const quietly = (promise: Promise<unknown>) => promise.catch(() => undefined);
    if (uploadId !== undefined) {
      await quietly(this.client.send(new AbortMultipartUploadCommand({ Bucket: container, Key: name, UploadId: uploadId })));
    }
    if (stored) {
      await quietly(this.client.send(new DeleteObjectCommand({ Bucket: container, Key: recordKey(name) })));
      await quietly(this.client.send(new DeleteObjectCommand({ Bucket: container, Key: name })));
    }
  }

  private failure(err: unknown, what: string, container: string): unknown {
    if (err instanceof CofferError) return err;
    const name = (err as Error).name;
    const status = statusOf(err);
    if (name === 'NoSuchBucket' || (status === 404 && what.includes('bucket'))) return containerMissing(container, this.endpoint);
    if (status === 401 || status === 403) return storageRefusedCredentials(this.endpoint, what, err);
    if (status === undefined) return storageUnreachable(this.endpoint, err);
    if (status === 400) {
      return new CofferError('BadRequest', `Backup storage at ${this.endpoint} refused to ${what}: ${(err as Error).message}`, { cause: err });
    }
    return storageFailed(this.endpoint, what, status, err);
  }
}

function checkBucket(container: string): void {
  checkContainerName(container, /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name: 3 to 63 lowercase letters, digits, . and -');
}

function recordKey(name: string): string {
  const dir = posix.dirname(name);
  return `${dir === '.' ? '' : `${dir}/`}.${posix.basename(name)}.meta.json`;
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

function unquote(etag: string | undefined): string {
  return (etag ?? '').replace(/^"|"$/g, '');
}
