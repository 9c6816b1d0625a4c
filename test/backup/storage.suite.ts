import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { PassThrough, Readable } from 'node:stream';
import { isCofferError, type ErrorCode } from '../../src/common/index.js';
import type { BackupStorage, StoredObject } from '../../src/backup/index.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { eventually } from '../support/wait.js';

// The one conformance suite of the backup storage port: every adapter runs it against its real
// backend (a directory, a Swift all-in-one, S3 through Swift's s3api) and must behave the same.

export interface StorageHarness {
  /** the storage under test, set to cut bodies into segments or parts of `partBytes` */
  storage: BackupStorage;
  partBytes: number;
  /** the same storage with a wrong key (when the suite's `credentials` feature is on) */
  withWrongCredentials?: () => BackupStorage;
  /** the same storage aimed where nothing can be reached */
  unreachable: () => BackupStorage;
  /** the same storage aimed at an endpoint that accepts connections and never answers (when `network` is on) */
  silent?: () => BackupStorage;
  /** what must never show in an error message */
  secrets: string[];
  /** damages a stored object's bytes in the backend, behind the adapter's back */
  corrupt(container: string, name: string): Promise<void>;
  /** everything the backend holds for `container` as seen from below the adapter: files, segments, unfinished uploads */
  rawNames(container: string): Promise<string[]>;
  /**
   * Raw names the backend itself keeps after an object is replaced, which no client can remove:
   * Swift's s3api (2.30) leaves the segments of a multipart object that a new upload replaced.
   */
  replacedPartsRemain?: RegExp;
  close(): Promise<void>;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** `data` as a stream of 64 KiB chunks, as an engine's tool would give it */
function bodyOf(data: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let offset = 0; offset < data.length; offset += 65_536) yield data.subarray(offset, offset + 65_536);
    })(),
  );
}

/** a stream that gives `data` up to `failAt`, then fails as a crashing engine tool would */
function failingBody(data: Buffer, failAt: number): Readable {
  return Readable.from(
    (async function* () {
      for (let offset = 0; offset < failAt; offset += 65_536) yield data.subarray(offset, Math.min(offset + 65_536, failAt));
      throw new Error('the engine tool died');
    })(),
  );
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function assertCode(err: unknown, code: ErrorCode): void {
  assert.ok(isCofferError(err), `expected CofferError ${code}, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
}

/** What a kind of storage has, and so which cases apply: a directory has no credentials nor network. */
export interface StorageFeatures {
  credentials: boolean;
  network: boolean;
}

export function backupStorageSuite(kind: string, features: StorageFeatures, open: () => Promise<StorageHarness>): void {
  describe(`backup storage conformance: ${kind}`, { timeout: 300_000 }, () => {
    let harness: StorageHarness;
    let storage: BackupStorage;
    let containers = 0;
    /** a new, empty container: no test sees another's objects */
    const freshContainer = async () => {
      const container = `coffer-${kind}-${++containers}`;
      await storage.ensureContainer(container);
      return container;
    };
    /** a body of two and a half segments or parts, so that the last one is short */
    const multiPart = () => randomBytes(Math.floor(harness.partBytes * 2.5) + 123);

    before(async () => {
      harness = await open();
      storage = harness.storage;
    });
    after(async () => {
      await harness?.close();
    });

    it('stores a body of several parts and reads back the same bytes, size, SHA-256 and metadata', async () => {
      const container = await freshContainer();
      const data = multiPart();
      const metadata = { 'backup-id': 'b-1', datastore: 'postgresql', 'note-with-dashes': 'naïve café, 100% ok' };
      const progress: number[] = [];
      const stored = await storage.put(container, 'inst-1/full.zst.enc', bodyOf(data), { metadata, onProgress: (bytes) => progress.push(bytes) });
      const expected: StoredObject = { name: 'inst-1/full.zst.enc', size: data.length, sha256: sha256(data), metadata };
      assert.deepEqual(stored, expected);
      assert.equal(progress.at(-1), data.length, 'the last progress report is the whole size');
      assert.deepEqual(await storage.head(container, 'inst-1/full.zst.enc'), expected);
      assert.deepEqual(await storage.list(container), [expected]);
      const read = await readAll(await storage.get(container, 'inst-1/full.zst.enc', { expectedSha256: sha256(data) }));
      assert.ok(read.equals(data), 'the bytes read are the bytes stored');
    });

    it('stores a body that fits in one part, and an empty one', async () => {
      const container = await freshContainer();
      const small = randomBytes(1000);
      assert.equal((await storage.put(container, 'small', bodyOf(small))).sha256, sha256(small));
      assert.deepEqual(await storage.put(container, 'empty', bodyOf(Buffer.alloc(0))), { name: 'empty', size: 0, sha256: sha256(Buffer.alloc(0)), metadata: {} });
      assert.ok((await readAll(await storage.get(container, 'small'))).equals(small));
      assert.equal((await readAll(await storage.get(container, 'empty', { expectedSha256: sha256(Buffer.alloc(0)) }))).length, 0);
      assert.deepEqual((await storage.list(container)).map((o) => [o.name, o.size]), [['empty', 0], ['small', 1000]]);
    });

    it('lists by prefix, by name, and never an upload still under way', async () => {
      const container = await freshContainer();
      for (const name of ['inst-b/wal/0002', 'inst-a/wal/0001', 'inst-a/full', 'inst-ab']) {
        await storage.put(container, name, bodyOf(Buffer.from(name)));
      }
      assert.deepEqual((await storage.list(container, 'inst-a/')).map((o) => o.name), ['inst-a/full', 'inst-a/wal/0001']);
      assert.deepEqual((await storage.list(container, 'inst-a')).map((o) => o.name), ['inst-a/full', 'inst-a/wal/0001', 'inst-ab']);
      assert.deepEqual((await storage.list(container, 'inst-a/wal/00')).map((o) => o.name), ['inst-a/wal/0001']);
      assert.deepEqual((await storage.list(container, 'nothing')).map((o) => o.name), []);
      assert.equal((await storage.list(container)).length, 4);

      // an upload whose first part is stored while the rest is still to come
      const data = multiPart();
      const body = new PassThrough();
      body.write(data.subarray(0, Math.floor(harness.partBytes * 1.5)));
      const before = (await harness.rawNames(container)).length;
      const putting = storage.put(container, 'inst-a/wal/0002', body);
      await eventually('the backend to hold part of the upload', () => harness.rawNames(container), (names) => names.length > before);
      assert.deepEqual((await storage.list(container, 'inst-a/wal/')).map((o) => o.name), ['inst-a/wal/0001']);
      assert.equal(await storage.head(container, 'inst-a/wal/0002'), undefined);
      await rejectsWithCode(storage.get(container, 'inst-a/wal/0002'), 'NotFound');
      body.end(data.subarray(Math.floor(harness.partBytes * 1.5)));
      assert.equal((await putting).sha256, sha256(data));
      assert.deepEqual((await storage.list(container, 'inst-a/wal/')).map((o) => o.name), ['inst-a/wal/0001', 'inst-a/wal/0002']);
    });

    it('rejects a put whose body fails midway with that failure and leaves nothing behind', async () => {
      const container = await freshContainer();
      const data = multiPart();
      await assert.rejects(storage.put(container, 'broken', failingBody(data, Math.floor(harness.partBytes * 1.5))), /the engine tool died/);
      assert.equal(await storage.head(container, 'broken'), undefined);
      assert.deepEqual(await storage.list(container), []);
      assert.deepEqual(await harness.rawNames(container), [], 'no segment, part or temporary file is left');
    });

    it('keeps the object a failed put was to replace', async () => {
      const container = await freshContainer();
      const old = multiPart();
      const stored = await storage.put(container, 'kept', bodyOf(old), { metadata: { generation: '1' } });
      await assert.rejects(storage.put(container, 'kept', failingBody(multiPart(), Math.floor(harness.partBytes * 1.5))), /the engine tool died/);
      assert.deepEqual(await storage.head(container, 'kept'), stored);
      assert.ok((await readAll(await storage.get(container, 'kept', { expectedSha256: stored.sha256 }))).equals(old));
    });

    it('stops a put when its signal aborts, and leaves nothing behind', async () => {
      const container = await freshContainer();
      const data = multiPart();
      const body = new PassThrough();
      body.write(data.subarray(0, Math.floor(harness.partBytes * 1.5)));
      const abort = new AbortController();
      const putting = storage.put(container, 'aborted', body, { signal: abort.signal });
      await eventually('the backend to hold part of the upload', () => harness.rawNames(container), (names) => names.length > 0);
      abort.abort();
      await assert.rejects(putting, (err: Error) => err.name === 'AbortError');
      assert.equal(await storage.head(container, 'aborted'), undefined);
      assert.deepEqual(await storage.list(container), []);
      assert.deepEqual(await harness.rawNames(container), [], 'no segment, part or temporary file is left');
    });

    it('deletes what a put cut short left behind (its writer died), and nothing of other objects', async () => {
      const container = await freshContainer();
      const neighbour = await storage.put(container, 'inst/full.1', bodyOf(multiPart()));
      await storage.put(container, 'inst/fullx', bodyOf(Buffer.from('x')));
      const before = await harness.rawNames(container);
      // a put that stored parts and then heard nothing more: what a killed agent's upload leaves
      const data = multiPart();
      const body = new PassThrough();
      body.write(data.subarray(0, Math.floor(harness.partBytes * 1.5)));
      const putting = storage.put(container, 'inst/full', body);
      putting.catch(() => undefined);
      await eventually('the backend to hold part of the upload', () => harness.rawNames(container), (names) => names.length > before.length);
      await storage.delete(container, 'inst/full');
      assert.deepEqual(await harness.rawNames(container), before, 'nothing of the unfinished upload is left');
      body.destroy(new Error('the writer is gone'));
      await assert.rejects(putting);
      assert.deepEqual(await harness.rawNames(container), before);
      assert.deepEqual(await storage.head(container, 'inst/full.1'), neighbour);
    });

    it('replaces an object put again under its name, and deletes the last one whole', async () => {
      const container = await freshContainer();
      await storage.put(container, 'again', bodyOf(multiPart()), { metadata: { generation: '1' } });
      const second = multiPart();
      const stored = await storage.put(container, 'again', bodyOf(second), { metadata: { generation: '2' } });
      assert.deepEqual(await storage.head(container, 'again'), stored);
      assert.ok((await readAll(await storage.get(container, 'again'))).equals(second));
      const small = Buffer.from('third');
      await storage.put(container, 'again', bodyOf(small));
      assert.deepEqual(await storage.head(container, 'again'), { name: 'again', size: 5, sha256: sha256(small), metadata: {} });
      await storage.delete(container, 'again');
      const left = (await harness.rawNames(container)).filter((name) => !harness.replacedPartsRemain?.test(name));
      assert.deepEqual(left, [], 'the segments or parts of every version are gone');
    });

    it('deletes idempotently: a missing object or container is no error', async () => {
      const container = await freshContainer();
      await storage.put(container, 'inst/wal/0001', bodyOf(multiPart()));
      await storage.delete(container, 'inst/wal/0001');
      assert.equal(await storage.head(container, 'inst/wal/0001'), undefined);
      await rejectsWithCode(storage.get(container, 'inst/wal/0001'), 'NotFound');
      assert.deepEqual(await storage.list(container), []);
      assert.deepEqual(await harness.rawNames(container), []);
      await storage.delete(container, 'inst/wal/0001');
      await storage.delete(container, 'never-stored');
      await storage.delete(`coffer-${kind}-never-made`, 'never-stored');
    });

    it('answers NotFound for a missing object, and names a missing container', async () => {
      const container = await freshContainer();
      await rejectsWithCode(storage.get(container, 'missing'), 'NotFound');
      assert.equal(await storage.head(container, 'missing'), undefined);
      const missing = `coffer-${kind}-missing`;
      for (const call of [() => storage.get(missing, 'x'), () => storage.head(missing, 'x'), () => storage.list(missing)]) {
        await assert.rejects(call(), (err: unknown) => {
          assertCode(err, 'NotFound');
          assert.match((err as Error).message, new RegExp(missing));
          return true;
        });
      }
    });

    it('fails a read of damaged bytes with ChecksumMismatch before the stream ends', async () => {
      const container = await freshContainer();
      const stored = await storage.put(container, 'damaged', bodyOf(multiPart()));
      await harness.corrupt(container, 'damaged');
      const stream = await storage.get(container, 'damaged', { expectedSha256: stored.sha256 });
      let ended = false;
      stream.on('end', () => (ended = true));
      await assert.rejects(readAll(stream), (err: unknown) => {
        assertCode(err, 'ChecksumMismatch');
        return true;
      });
      assert.equal(ended, false, 'the stream never ended');
    });

    it('makes sure a container exists, and is idempotent about it', async () => {
      const container = await freshContainer();
      await storage.ensureContainer(container);
      assert.deepEqual(await storage.list(container), []);
    });

    it('refuses names that could escape their container, or are not object names', async () => {
      const container = await freshContainer();
      for (const name of ['', '../x', 'a/../../x', '/etc/passwd', 'a//b', 'a/', '.hidden', 'a/.b', 'nul\0byte', 'line\nbreak', 'x'.repeat(1000)]) {
        await rejectsWithCode(storage.put(container, name, bodyOf(Buffer.from('x'))), 'BadRequest');
        await rejectsWithCode(storage.get(container, name), 'BadRequest');
        await rejectsWithCode(storage.head(container, name), 'BadRequest');
        await rejectsWithCode(storage.delete(container, name), 'BadRequest');
      }
      for (const bad of ['', '..', '.', 'a/b', '../up', 'nul\0']) {
        await rejectsWithCode(storage.ensureContainer(bad), 'BadRequest');
        await rejectsWithCode(storage.list(bad), 'BadRequest');
      }
      await rejectsWithCode(storage.list(container, '../'), 'BadRequest');
      await rejectsWithCode(storage.put(container, 'meta', bodyOf(Buffer.from('x')), { metadata: { sha256: 'mine' } }), 'BadRequest');
      await rejectsWithCode(storage.put(container, 'meta', bodyOf(Buffer.from('x')), { metadata: { 'Upper Case': 'x' } }), 'BadRequest');
      assert.deepEqual(await harness.rawNames(container), []);
    });

    it('answers BackupStorageUnavailable, naming where, when the storage cannot be reached', async () => {
      const down = harness.unreachable();
      try {
        for (const call of [
          () => down.ensureContainer('coffer-down'),
          () => down.put('coffer-down', 'x', bodyOf(Buffer.from('x'))),
          () => down.get('coffer-down', 'x'),
          () => down.head('coffer-down', 'x'),
          () => down.list('coffer-down'),
          () => down.delete('coffer-down', 'x'),
        ]) {
          await assert.rejects(call(), (err: unknown) => {
            assertCode(err, 'BackupStorageUnavailable');
            for (const secret of harness.secrets) assert.ok(!(err as Error).message.includes(secret), 'no secret in the message');
            return true;
          });
        }
      } finally {
        await down.close();
      }
    });

    it('locates an object without giving away a credential', async () => {
      const container = await freshContainer();
      await storage.put(container, 'inst/full', bodyOf(Buffer.from('x')));
      const location = storage.locationOf(container, 'inst/full');
      assert.match(location, new RegExp(`${container}/inst/full$`));
      for (const secret of harness.secrets) assert.ok(!location.includes(secret));
    });

    if (features.credentials) it('answers Unauthorized, naming no secret, when the credentials are refused', async () => {
      const container = await freshContainer();
      await storage.put(container, 'x', bodyOf(Buffer.from('x')));
      const refused = harness.withWrongCredentials!();
      try {
        for (const call of [
          () => refused.ensureContainer(container),
          () => refused.put(container, 'y', bodyOf(Buffer.from('y'))),
          () => refused.get(container, 'x'),
          () => refused.head(container, 'x'),
          () => refused.list(container),
        ]) {
          await assert.rejects(call(), (err: unknown) => {
            assertCode(err, 'Unauthorized');
            assert.match((err as Error).message, /credentials/);
            for (const secret of harness.secrets) assert.ok(!(err as Error).message.includes(secret), 'no secret in the message');
            return true;
          });
        }
      } finally {
        await refused.close();
      }
    });

    if (features.network) it('fails a call instead of hanging when the storage accepts and never answers', async () => {
      const silent = harness.silent!();
      try {
        await rejectsWithCode(silent.head('coffer-silent', 'x'), 'BackupStorageUnavailable');
        await rejectsWithCode(silent.put('coffer-silent', 'x', bodyOf(Buffer.from('x'))), 'BackupStorageUnavailable');
      } finally {
        await silent.close();
      }
    });
  });
}

export { bodyOf, readAll, sha256 };
