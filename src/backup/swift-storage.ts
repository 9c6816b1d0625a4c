import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import pLimit from 'p-limit';
import { CofferError } from '../common/index.js';
import {
  checkContainerName,
  checkMetadata,
  checkObjectName,
  checkObjectPrefix,
  decodeMetadataValue,
  encodeMetadataValue,
} from './object-names.js';
import { readSegments, uploadSegments } from './segment-reader.js';
import type { BackupStorage, GetOptions, PutOptions, StoredObject } from './storage.js';
import { checksumMismatch, containerMissing, objectMissing, storageFailed, transferBrokenOff } from './storage-errors.js';
import { SwiftConnection, type SwiftCredentials } from './swift-connection.js';
import type { TimedResponse } from './timed-fetch.js';
import { verifiedStream } from './verified-stream.js';

// Backup objects in OpenStack Swift. A body that fits in one segment is stored as a plain object;
// a larger one as segments in the container `<container>_segments` (python-swiftclient's
// convention, so that listings of the container show whole objects only), each named
// `<name>/<upload id>/<index>`, joined by a static large object manifest put at `<name>` last:
// the name shows nothing until every segment is stored, and a new upload over a name never
// touches the segments the old manifest still uses. SHA-256 and metadata are X-Object-Meta-*
// headers of the object (or manifest). Segments are buffered, one being read while the one
// before is sent: a put holds at most two segments in memory.

export interface SwiftStorageOptions {
  credentials: SwiftCredentials;
  /** bytes a segment holds; Swift joins at most 1000 segments, so an object may be 1000 times this */
  segmentBytes?: number;
  /** a request fails once nothing moved for this long */
  idleTimeoutMs?: number;
}

export const defaultSwiftSegmentBytes = 64 * 1024 * 1024;
/** Swift's default `max_manifest_segments` */
const maxSegments = 1000;
const listPageSize = 10_000;
const headConcurrency = 4;
const metaPrefix = 'x-object-meta-';
const shaHeader = `${metaPrefix}sha256`;

interface ManifestEntry {
  path: string;
  etag: string;
  size_bytes: number;
}

export class SwiftStorage implements BackupStorage {
  readonly kind = 'swift';
  private readonly connection: SwiftConnection;
  private readonly segmentBytes: number;

  constructor(options: SwiftStorageOptions) {
    this.connection = new SwiftConnection(options.credentials, options.idleTimeoutMs ?? 60_000);
    this.segmentBytes = options.segmentBytes ?? defaultSwiftSegmentBytes;
  }

  async ensureContainer(container: string): Promise<void> {
    checkContainer(container);
    for (const name of [container, segmentsOf(container)]) {
      const reply = await this.connection.request({ method: 'PUT', path: [name], what: `create container ${name}` });
      await reply.discard();
      this.expect(reply, [201, 202, 204], `create container ${name}`);
    }
  }

  async put(container: string, name: string, body: Readable, options: PutOptions = {}): Promise<StoredObject> {
    checkContainer(container);
    checkObjectName(name);
    const metadata = { ...options.metadata };
    checkMetadata(metadata);
    const { signal, onProgress } = options;
    const uploadId = `${Date.now()}-${randomBytes(4).toString('hex')}`;
    const sha256 = createHash('sha256');
    const uploaded: string[] = [];
    let size = 0;
    let stored = false;
    try {
      const previous = await this.segmentsUsedBy(container, name, signal);
      const entries = await uploadSegments(readSegments(body, this.segmentBytes, signal), async (segment) => {
        sha256.update(segment.data);
        size += segment.data.length;
        const md5 = createHash('md5').update(segment.data).digest('hex');
        if (segment.index === 0 && segment.last) {
          await this.store(container, name, 'store backup object', {
            body: segment.data,
            headers: { etag: md5, ...this.metadataHeaders(metadata, sha256.copy().digest('hex')) },
            signal,
          });
          stored = true;
          onProgress?.(size);
          return undefined;
        }
        if (segment.index >= maxSegments) {
          throw new CofferError(
            'BadRequest',
            `Backup object ${name} needs more than ${maxSegments} Swift segments of ${this.segmentBytes} bytes: configure a larger segmentBytes.`,
          );
        }
        const segmentName = `${name}/${uploadId}/${String(segment.index).padStart(8, '0')}`;
        uploaded.push(segmentName);
        await this.store(segmentsOf(container), segmentName, 'store a segment of backup object', {
          body: segment.data,
          headers: { etag: md5 },
          signal,
          missingContainer: container,
        });
        onProgress?.(size);
        return { path: `/${segmentsOf(container)}/${segmentName}`, etag: md5, size_bytes: segment.data.length } satisfies ManifestEntry;
      });
      const digest = sha256.digest('hex');
      if (!stored) {
        const manifest = Buffer.from(JSON.stringify(entries));
        await this.store(container, name, 'store the manifest of backup object', {
          body: manifest,
          query: { 'multipart-manifest': 'put' },
          headers: { 'content-type': 'application/octet-stream', ...this.metadataHeaders(metadata, digest) },
          signal,
        });
      }
      // the old object's segments, now that nothing refers to them
      await this.deleteSegments(previous).catch(() => undefined);
      return { name, size, sha256: digest, metadata };
    } catch (err) {
      await this.deleteSegments(uploaded.map((segment) => [segmentsOf(container), segment] as const)).catch(() => undefined);
      throw err;
    }
  }

  async get(container: string, name: string, options: GetOptions = {}): Promise<Readable> {
    checkContainer(container);
    checkObjectName(name);
    const reply = await this.connection.request({
      method: 'GET',
      path: [container, name],
      what: `read backup object ${name}`,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    if (reply.response.status === 404) {
      await reply.discard();
      throw (await this.containerExists(container))
        ? objectMissing(container, name, this.connection.endpoint)
        : containerMissing(container, this.connection.endpoint);
    }
    this.expect(reply, [200], `read backup object ${name}`);
    return verifiedStream(
      reply.stream(),
      (err) => (options.signal?.aborted ? (options.signal.reason as Error) : transferBrokenOff(this.connection.endpoint, name, err)),
      options.expectedSha256,
      (actual) => checksumMismatch(container, name, options.expectedSha256!, actual),
    );
  }

  async head(container: string, name: string): Promise<StoredObject | undefined> {
    checkContainer(container);
    checkObjectName(name);
    const reply = await this.connection.request({ method: 'HEAD', path: [container, name], what: `read backup object ${name}` });
    await reply.discard();
    if (reply.response.status === 404) {
      if (await this.containerExists(container)) return undefined;
      throw containerMissing(container, this.connection.endpoint);
    }
    this.expect(reply, [200, 204], `read backup object ${name}`);
    return this.recordOf(name, reply.response.headers);
  }

  async list(container: string, prefix = ''): Promise<StoredObject[]> {
    checkContainer(container);
    checkObjectPrefix(prefix);
    const names: string[] = [];
    for (let marker = ''; ; ) {
      const reply = await this.connection.request({
        method: 'GET',
        path: [container],
        query: { format: 'json', prefix, marker, limit: String(listPageSize) },
        what: `list container ${container}`,
      });
      if (reply.response.status === 404) {
        await reply.discard();
        throw containerMissing(container, this.connection.endpoint);
      }
      this.expect(reply, [200, 204], `list container ${container}`);
      const page = reply.response.status === 204 ? [] : (JSON.parse(await reply.text()) as { name: string }[]);
      if (reply.response.status === 204) await reply.discard();
      // names with a dot part are not Coffer's objects (see object-names.ts)
      names.push(...page.map((entry) => entry.name).filter((entry) => !entry.split('/').some((part) => part.startsWith('.'))));
      if (page.length < listPageSize) break;
      marker = page[page.length - 1]!.name;
    }
    // a listing carries no metadata: each object's record is a HEAD
    const limit = pLimit(headConcurrency);
    const records = await Promise.all(names.map((name) => limit(() => this.head(container, name))));
    return records.filter((record): record is StoredObject => record !== undefined).sort(byName);
  }

  async delete(container: string, name: string): Promise<void> {
    checkContainer(container);
    checkObjectName(name);
    // a manifest goes with its segments; Swift refuses that form of DELETE for a plain object
    const manifest = await this.remove(container, name, true);
    if (manifest === 'not a manifest') await this.remove(container, name, false);
    // segments no manifest joins: an upload whose writer died before it put the manifest
    const unfinished = await this.segmentNamesOf(container, name);
    await this.deleteSegments(unfinished.map((segment) => [segmentsOf(container), segment] as const));
  }

  /** The names of every segment any upload of `name` stored (see put), whether a manifest joins them or not. */
  private async segmentNamesOf(container: string, name: string): Promise<string[]> {
    const segments = segmentsOf(container);
    const found: string[] = [];
    for (let marker = ''; ; ) {
      const reply = await this.connection.request({
        method: 'GET',
        path: [segments],
        query: { format: 'json', prefix: `${name}/`, marker, limit: String(listPageSize) },
        what: `list container ${segments}`,
      });
      if (reply.response.status === 404 || reply.response.status === 204) {
        await reply.discard();
        return found;
      }
      this.expect(reply, [200], `list container ${segments}`);
      const page = JSON.parse(await reply.text()) as { name: string }[];
      // `<name>/<upload id>/<index>` only: `<name>/more` is another object's, with segments of its own
      found.push(...page.map((entry) => entry.name).filter((entry) => /^\d+-[0-9a-f]{8}\/\d{8}$/.test(entry.slice(name.length + 1))));
      if (page.length < listPageSize) return found;
      marker = page[page.length - 1]!.name;
    }
  }

  private async remove(container: string, name: string, asManifest: boolean): Promise<'done' | 'not a manifest'> {
    const what = `delete backup object ${name}`;
    const reply = await this.connection.request({
      method: 'DELETE',
      path: [container, name],
      ...(asManifest ? { query: { 'multipart-manifest': 'delete' }, headers: { accept: 'application/json' } } : {}),
      what,
    });
    const { status } = reply.response;
    if (status === 404 || status === 204) {
      await reply.discard();
      return 'done';
    }
    this.expect(reply, [200], what);
    const text = await reply.text();
    // a manifest's deletion answers 200 with a bulk-delete report, which lists what failed
    const report = text.startsWith('{') ? (JSON.parse(text) as { Errors?: [string, string][]; 'Response Status'?: string }) : {};
    const errors = report.Errors ?? [];
    if (errors.length > 0 && errors.every(([, error]) => error === 'Not an SLO manifest')) return 'not a manifest';
    if (errors.length > 0 || !/^(2\d\d|404)/.test(report['Response Status'] ?? '200')) {
      throw storageFailed(this.connection.endpoint, `${what} (${report['Response Status']})`, 500, new Error(text.slice(0, 500)));
    }
    return 'done';
  }

  locationOf(container: string, name: string): string {
    const storageUrl = this.connection.storageUrl;
    if (storageUrl === undefined) {
      // tempauth and Keystone tell the account's URL only when they authenticate
      throw new CofferError('Internal', 'The Swift storage URL is known once the storage has been used: ask for a location after ensureContainer or put.');
    }
    return `${storageUrl}/${encodeURIComponent(container)}/${name.split('/').map(encodeURIComponent).join('/')}`;
  }

  async close(): Promise<void> {
    // requests go through Node's shared fetch dispatcher, which keeps nothing of ours
  }

  private async store(
    container: string,
    name: string,
    what: string,
    request: { body: Buffer; headers: Record<string, string>; query?: Record<string, string>; signal: AbortSignal | undefined; missingContainer?: string },
  ): Promise<void> {
    const reply = await this.connection.request({
      method: 'PUT',
      path: [container, name],
      body: request.body,
      headers: request.headers,
      what: `${what} ${name}`,
      ...(request.query === undefined ? {} : { query: request.query }),
      ...(request.signal === undefined ? {} : { signal: request.signal }),
    });
    const { status } = reply.response;
    if (status === 404) {
      await reply.discard();
      throw containerMissing(request.missingContainer ?? container, this.connection.endpoint);
    }
    if (status === 422) {
      await reply.discard();
      // Swift's answer when the bytes it received do not hash to the ETag sent
      throw storageFailed(this.connection.endpoint, `${what} ${name}: the bytes arrived altered`, status);
    }
    if (status === 400 || status === 413) {
      const text = await reply.text();
      throw new CofferError('BadRequest', `Backup storage at ${this.connection.endpoint} refused to ${what} ${name}: ${text.slice(0, 300)}`);
    }
    await reply.discard();
    this.expect(reply, [201], `${what} ${name}`);
  }

  /** The segments of the manifest stored at `name` (none for a plain object or no object). */
  private async segmentsUsedBy(container: string, name: string, signal: AbortSignal | undefined): Promise<(readonly [string, string])[]> {
    const base = { path: [container, name], query: { 'multipart-manifest': 'get' }, what: `read backup object ${name}`, ...(signal === undefined ? {} : { signal }) };
    const head = await this.connection.request({ ...base, method: 'HEAD' });
    await head.discard();
    if (head.response.headers.get('x-static-large-object')?.toLowerCase() !== 'true') return [];
    const reply = await this.connection.request({ ...base, method: 'GET' });
    if (reply.response.status !== 200) {
      await reply.discard();
      return [];
    }
    const manifest = JSON.parse(await reply.text()) as { name: string }[];
    return manifest.flatMap((entry) => {
      const match = /^\/([^/]+)\/(.+)$/.exec(entry.name);
      return match === null ? [] : [[match[1]!, match[2]!] as const];
    });
  }

  private async deleteSegments(segments: (readonly [string, string])[]): Promise<void> {
    const limit = pLimit(headConcurrency);
    await Promise.all(
      segments.map(([container, name]) =>
        limit(async () => {
          const reply = await this.connection.request({ method: 'DELETE', path: [container, name], what: `delete segment ${name}` });
          await reply.discard();
        }),
      ),
    ).catch((err: unknown) => {
      // A storage that failed one delete fails the next the same way: the first failure ends
      // the cleanup, so a storage gone silent costs one timeout here, not one per segment (a
      // put that failed midway reports its failure only after this).
      limit.clearQueue();
      throw err;
    });
  }

  private async containerExists(container: string): Promise<boolean> {
    const reply = await this.connection.request({ method: 'HEAD', path: [container], what: `read container ${container}` });
    await reply.discard();
    if (reply.response.status === 404) return false;
    this.expect(reply, [200, 204], `read container ${container}`);
    return true;
  }

  private metadataHeaders(metadata: Record<string, string>, sha256: string): Record<string, string> {
    const headers: Record<string, string> = { [shaHeader]: sha256 };
    for (const [key, value] of Object.entries(metadata)) headers[`${metaPrefix}${key}`] = encodeMetadataValue(value);
    return headers;
  }

  private recordOf(name: string, headers: Headers): StoredObject | undefined {
    const sha256 = headers.get(shaHeader);
    // an object Coffer did not store (or a plain object from another client): not a backup object
    if (sha256 === null) return undefined;
    const metadata: Record<string, string> = {};
    headers.forEach((value, header) => {
      if (header.startsWith(metaPrefix) && header !== shaHeader) metadata[header.slice(metaPrefix.length)] = decodeMetadataValue(value);
    });
    return { name, size: Number(headers.get('content-length') ?? 0), sha256, metadata };
  }

  private expect(reply: TimedResponse, statuses: number[], what: string): void {
    if (!statuses.includes(reply.response.status)) {
      throw storageFailed(this.connection.endpoint, what, reply.response.status);
    }
  }
}

function segmentsOf(container: string): string {
  return `${container}_segments`;
}

function checkContainer(container: string): void {
  checkContainerName(container, /^(?!\.)[^/\u0000-\u001f\u007f]{1,200}$/, 'up to 200 characters, no /, not starting with a dot');
}

function byName(a: StoredObject, b: StoredObject): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
