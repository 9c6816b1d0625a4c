// bench/backup-storage: how long a Swift all-in-one takes to answer, and the throughput of a put
// and a get (with its SHA-256 check) of one object through each backup storage adapter: a local
// directory, Swift and S3 (Swift's s3api), all on this machine.
// `node --import tsx bench/backup-storage.ts [MiB, default 64]`
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { LocalDirectoryStorage, S3Storage, SwiftStorage, type BackupStorage } from '../src/backup/index.js';
import { startSwift } from '../test/support/swift-server.js';

const mib = Number(process.argv[2] ?? 64);
const data = randomBytes(mib * 1024 * 1024);
const sha256 = createHash('sha256').update(data).digest('hex');

function body(): Readable {
  return Readable.from(
    (function* () {
      for (let offset = 0; offset < data.length; offset += 1024 * 1024) yield data.subarray(offset, offset + 1024 * 1024);
    })(),
  );
}

async function measure(name: string, storage: BackupStorage, container: string): Promise<void> {
  await storage.ensureContainer(container);
  let started = performance.now();
  await storage.put(container, 'bench/object', body());
  const putSeconds = (performance.now() - started) / 1000;
  started = performance.now();
  let read = 0;
  for await (const chunk of await storage.get(container, 'bench/object', { expectedSha256: sha256 })) read += (chunk as Buffer).length;
  const getSeconds = (performance.now() - started) / 1000;
  if (read !== data.length) throw new Error(`${name}: read ${read} bytes of ${data.length}`);
  await storage.delete(container, 'bench/object');
  await storage.close();
  process.stdout.write(
    `${name}: put ${(mib / putSeconds).toFixed(1)} MiB/s (${putSeconds.toFixed(2)} s), get ${(mib / getSeconds).toFixed(1)} MiB/s (${getSeconds.toFixed(2)} s)\n`,
  );
}

const dir = await mkdtemp(join(tmpdir(), 'coffer-bench-storage-'));
const startedSwift = performance.now();
const swift = await startSwift();
process.stdout.write(`Swift all-in-one answered after ${((performance.now() - startedSwift) / 1000).toFixed(1)} s\n`);
try {
  await measure('local directory', new LocalDirectoryStorage(dir), 'bench');
  await measure(
    'swift (64 MiB segments)',
    new SwiftStorage({ credentials: { authUrl: swift.authUrl, user: swift.user, key: swift.key } }),
    'bench',
  );
  await measure(
    's3 (64 MiB parts)',
    new S3Storage({ endpoint: swift.url, region: swift.region, accessKeyId: swift.user, secretAccessKey: swift.key, forcePathStyle: true }),
    'bench',
  );
  await measure(
    'swift (8 MiB segments)',
    new SwiftStorage({ credentials: { authUrl: swift.authUrl, user: swift.user, key: swift.key }, segmentBytes: 8 * 1024 * 1024 }),
    'bench',
  );
  await measure(
    's3 (8 MiB parts)',
    new S3Storage({ endpoint: swift.url, region: swift.region, accessKeyId: swift.user, secretAccessKey: swift.key, forcePathStyle: true, partBytes: 8 * 1024 * 1024 }),
    'bench',
  );
} finally {
  await swift.stop();
  await rm(dir, { recursive: true, force: true });
}
