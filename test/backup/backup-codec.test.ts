import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { PassThrough, Readable, type Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { decodeBackup, decodeBackupInto, encodeBackup, startBackupEncoding, type BackupCompression } from '../../src/backup/backup-codec.js';
import { isCofferError } from '../../src/common/index.js';
import { backupKeyId, newProjectKey } from '../../src/backup/backup-keys.js';
import {
  assertCode,
  closed,
  collect,
  decode,
  decodeFailure,
  encode,
  isFinal,
  layoutOf,
  RandomSource,
  zstdChildren,
} from './codec-helpers.js';
import { sampleChunks } from './sample-data.js';

// The backup codec: what goes in comes out, nothing else does. An object that was cut, extended,
// reordered or altered, or a wrong key, fails with BackupDecryptionFailed and releases no byte
// it did not verify; zstd runs as a child that never outlives the stream.

const key = newProjectKey();
const smallFrame = 64;
const sample = Buffer.concat([...sampleChunks(8 * 1024 * 1024, 7)]);

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coffer-codec-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
  assert.deepEqual(zstdChildren(), [], 'no zstd is left behind by any test');
});

describe('round trips', () => {
  for (const compression of ['none', 'zstd'] as BackupCompression[]) {
    for (const sealed of [true, false]) {
      test(`${compression}, ${sealed ? 'sealed' : 'unsealed'}: empty, 1 byte, around a frame and many frames come back equal`, async () => {
        for (const size of [0, 1, smallFrame - 1, smallFrame, smallFrame + 1, 2 * smallFrame, 37 * smallFrame + 5]) {
          const data = randomBytes(size);
          const options = { compression, frameSize: smallFrame, ...(sealed ? { key } : {}) };
          const bytes = await encode(data, options);
          assert.deepEqual(await decode(bytes, sealed ? { key } : {}), data, `${size} bytes`);
        }
      });
    }
  }

  test('exactly one frame of content is one final frame; one byte more makes two', async () => {
    const frame = 1024 * 1024;
    const one = layoutOf(await encode(randomBytes(frame), { compression: 'none', key }));
    assert.deepEqual(one.frames.map(isFinal), [true]);
    assert.equal(one.frames[0]!.length, 5 + frame + 16);
    const two = layoutOf(await encode(randomBytes(frame + 1), { compression: 'none', key }));
    assert.deepEqual(two.frames.map(isFinal), [false, true]);
    assert.equal(two.frames[1]!.length, 5 + 1 + 16);
    const empty = layoutOf(await encode(Buffer.alloc(0), { compression: 'none', key }));
    assert.deepEqual(empty.frames.map((f) => f.length), [5 + 16], 'empty content: one empty final frame');
  });

  test('tens of MiB of random data stream through zstd and back, with the reader setting the pace', async () => {
    const size = 48 * 1024 * 1024;
    const source = new RandomSource(size);
    const decoded = decodeBackup(encodeBackup(source, { compression: 'zstd', key }), { key });
    const hash = createHash('sha256');
    let consumed = 0;
    let widestGap = 0;
    let paused = false;
    for await (const chunk of decoded) {
      hash.update(chunk as Buffer);
      consumed += (chunk as Buffer).length;
      widestGap = Math.max(widestGap, source.produced - consumed);
      if (!paused && consumed > 8 * 1024 * 1024) {
        // a stalled reader: a codec that ignored backpressure would read the source ahead now
        paused = true;
        await sleep(300);
        widestGap = Math.max(widestGap, source.produced - consumed);
      }
    }
    assert.equal(consumed, size);
    assert.equal(hash.digest('hex'), source.sha256());
    // two zstd processes, their pipes and a few frames in between: far less than the whole
    assert.ok(widestGap < 24 * 1024 * 1024, `the source ran ${widestGap} bytes ahead of the reader`);
  });

  test('an encoded object can be read back in chunks of any size', async () => {
    const data = randomBytes(10 * smallFrame + 3);
    const bytes = await encode(data, { compression: 'zstd', key, frameSize: smallFrame });
    for (const step of [1, 7, 100]) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < bytes.length; at += step) chunks.push(bytes.subarray(at, at + step));
      assert.deepEqual(await collect(decodeBackup(Readable.from(chunks), { key })), data, `chunks of ${step}`);
    }
  });
});

describe('compression and sealing', () => {
  test('zstd shrinks database-like data; none keeps its size', async () => {
    const zstd = await encode(sample, { compression: 'zstd', key });
    const none = await encode(sample, { compression: 'none', key });
    assert.ok(zstd.length < sample.length / 2, `zstd gave ${zstd.length} bytes of ${sample.length}`);
    assert.ok(none.length > sample.length && none.length < sample.length * 1.001);
    assert.deepEqual(await decode(zstd, { key }), sample);
  });

  test('a sealed object shows nothing of its content; an unsealed one does', async () => {
    const data = Buffer.from('the customer table: alice@example.com 4111-1111-1111-1111\n'.repeat(50));
    const sealed = await encode(data, { compression: 'none', key });
    const clear = await encode(data, { compression: 'none' });
    assert.ok(!sealed.includes('alice@example.com'));
    assert.ok(clear.includes('alice@example.com'));
    assert.equal(sealed[10], 1);
    assert.equal(clear[10], 0);
    assert.deepEqual(await decode(clear, {}), data);
  });

  test('two encodings of the same content under the same key differ (a fresh salt each)', async () => {
    const data = randomBytes(1000);
    const a = await encode(data, { compression: 'none', key });
    const b = await encode(data, { compression: 'none', key });
    assert.notDeepEqual(a.subarray(a.length - 100), b.subarray(b.length - 100));
  });

  test('the header names the key: its id by default, or the one given', async () => {
    const byDefault = await encode(Buffer.from('x'), { compression: 'none', key });
    assert.ok(byDefault.includes(Buffer.from(backupKeyId(key))));
    const named = await encode(Buffer.from('x'), { compression: 'none', key, keyId: 'project-42-key-3' });
    assert.ok(named.includes(Buffer.from('project-42-key-3')));
    assert.deepEqual(await decode(named, { key }), Buffer.from('x'));
  });
});

describe('refusals', () => {
  test('a wrong key fails, naming both keys, and releases nothing', async () => {
    const bytes = await encode(sample.subarray(0, 100_000), { compression: 'zstd', key, keyId: 'key-of-p1' });
    const other = newProjectKey();
    const { released, error } = await decodeFailure(bytes, { key: other });
    assertCode(error, 'BackupDecryptionFailed', /cannot be decrypted with this project's key, or it was altered/);
    assert.match(error.message, new RegExp(`key-of-p1; the key given is ${backupKeyId(other)}`));
    assert.equal(released.length, 0);
  });

  test('a sealed object without a key, and an unsealed one where a key is expected, are refused', async () => {
    const sealed = await encode(Buffer.from('data'), { compression: 'none', key });
    assertCode((await decodeFailure(sealed, {})).error, 'BackupDecryptionFailed', /encrypted .* no key was given/);
    const clear = await encode(Buffer.from('data'), { compression: 'none' });
    assertCode((await decodeFailure(clear, { key })).error, 'BackupDecryptionFailed', /not encrypted/);
  });

  test('bytes that are not a Coffer backup, or a newer format, are a bad request', async () => {
    for (const bytes of [Buffer.from('PGDMP custom dump....................................'), randomBytes(200)]) {
      assertCode((await decodeFailure(bytes, { key })).error, 'BadRequest', /not a Coffer backup/);
    }
    const newer = await encode(Buffer.from('data'), { compression: 'none', key });
    newer[8] = 2;
    assertCode((await decodeFailure(newer, { key })).error, 'BadRequest', /format version 2/);
  });

  test('every single flipped bit of a sealed object fails, releasing only frames before the flipped one', async () => {
    const data = randomBytes(4 * smallFrame + 10);
    const bytes = await encode(data, { compression: 'none', key, frameSize: smallFrame });
    const { header, frames } = layoutOf(bytes);
    const frameStarts = frames.map((_, i) => header.length + frames.slice(0, i).reduce((n, f) => n + f.length, 0));
    for (let at = 0; at < bytes.length; at++) {
      const altered = Buffer.from(bytes);
      altered[at]! ^= 1 << at % 8;
      const { released, error } = await decodeFailure(altered, { key });
      if (at < 9) assertCode(error, 'BadRequest'); // the magic and the version
      else assertCode(error, 'BackupDecryptionFailed');
      const frame = frameStarts.filter((start) => start <= at).length - 1; // -1: in the header
      const verified = Math.max(0, frame) * smallFrame;
      assert.ok(released.length <= verified, `byte ${at}: ${released.length} bytes released, ${verified} verified`);
      assert.deepEqual(released, data.subarray(0, released.length));
    }
  });

  test('flipped bytes in zstd-compressed frames fail too', async () => {
    const bytes = await encode(sample.subarray(0, 20_000), { compression: 'zstd', key, frameSize: 1024 });
    const { header, frames } = layoutOf(bytes);
    assert.ok(frames.length > 3);
    let at = header.length;
    for (const frame of frames) {
      for (const offset of [0, 1, 4, 5, Math.floor(frame.length / 2), frame.length - 17, frame.length - 1]) {
        const altered = Buffer.from(bytes);
        altered[at + offset]! ^= 0x80;
        assertCode((await decodeFailure(altered, { key })).error, 'BackupDecryptionFailed');
      }
      at += frame.length;
    }
  });

  for (const sealed of [true, false]) {
    test(`${sealed ? 'sealed' : 'unsealed'}: an object cut at any frame boundary, or anywhere, is incomplete`, async () => {
      const data = randomBytes(5 * smallFrame + 20);
      const options = sealed ? { key } : {};
      const bytes = await encode(data, { compression: 'none', frameSize: smallFrame, ...options });
      const { header, frames } = layoutOf(bytes);
      assert.equal(frames.length, 6);
      // the important case: every frame verifies, only the final one is missing
      let boundary = header.length;
      for (const frame of frames.slice(0, -1)) {
        boundary += frame.length;
        const { released, error } = await decodeFailure(bytes.subarray(0, boundary), options);
        assertCode(error, 'BackupDecryptionFailed', /incomplete/);
        assert.deepEqual(released, data.subarray(0, released.length));
      }
      for (let length = 0; length < bytes.length; length++) {
        assertCode((await decodeFailure(bytes.subarray(0, length), options)).error, 'BackupDecryptionFailed', length === 0 ? /empty/ : /incomplete/);
      }
    });
  }

  test('an object cut at a frame boundary whose new last frame is marked final fails its tag', async () => {
    const bytes = await encode(randomBytes(4 * smallFrame + 1), { compression: 'none', key, frameSize: smallFrame });
    const { header, frames } = layoutOf(bytes);
    const forged = frames.slice(0, 2).map((frame) => Buffer.from(frame));
    forged[1]![0] = 1;
    const { released, error } = await decodeFailure(Buffer.concat([header, ...forged]), { key });
    assertCode(error, 'BackupDecryptionFailed', /altered/);
    assert.ok(released.length <= smallFrame, 'only the first frame verified');
  });

  test('a zstd-compressed object cut at a frame boundary is incomplete, not a shorter restore', async () => {
    const bytes = await encode(sample.subarray(0, 50_000), { compression: 'zstd', key, frameSize: 1024 });
    const { header, frames } = layoutOf(bytes);
    const cut = header.length + frames.slice(0, -2).reduce((n, f) => n + f.length, 0);
    assertCode((await decodeFailure(bytes.subarray(0, cut), { key })).error, 'BackupDecryptionFailed', /incomplete/);
  });

  test('a dropped, repeated or reordered frame, or one from another object, fails', async () => {
    const data = randomBytes(6 * smallFrame + 9);
    const bytes = await encode(data, { compression: 'none', key, frameSize: smallFrame });
    const { header, frames } = layoutOf(bytes);
    const twin = layoutOf(await encode(data, { compression: 'none', key, frameSize: smallFrame }));
    const variants: Record<string, Buffer[]> = {
      'frame 2 dropped': frames.filter((_, i) => i !== 2),
      'frame 0 dropped': frames.slice(1),
      'frames 2 and 3 swapped': [frames[0]!, frames[1]!, frames[3]!, frames[2]!, ...frames.slice(4)],
      'frame 1 repeated': [frames[0]!, frames[1]!, frames[1]!, ...frames.slice(2)],
      'the final frame moved forward': [frames[0]!, frames.at(-1)!, ...frames.slice(1, -1)],
      "frame 3 from another object (same key, same content, same place)": [...frames.slice(0, 3), twin.frames[3]!, ...frames.slice(4)],
      "another object's header": frames,
    };
    for (const [what, list] of Object.entries(variants)) {
      const head = what === "another object's header" ? twin.header : header;
      const { released, error } = await decodeFailure(Buffer.concat([head, ...list]), { key });
      assertCode(error, 'BackupDecryptionFailed');
      assert.deepEqual(released, data.subarray(0, released.length), what);
    }
  });

  test('bytes appended after the final frame fail', async () => {
    const data = randomBytes(3 * smallFrame);
    const bytes = await encode(data, { compression: 'none', key, frameSize: smallFrame });
    const { frames } = layoutOf(bytes);
    const other = await encode(data, { compression: 'none', key, frameSize: smallFrame });
    for (const extra of [Buffer.from([0]), frames.at(-1)!, other]) {
      assertCode((await decodeFailure(Buffer.concat([bytes, extra]), { key })).error, 'BackupDecryptionFailed', /altered/);
    }
    // an appended byte arriving in a chunk of its own after the final frame
    const split = decodeBackup(Readable.from([bytes, Buffer.from([1])]), { key });
    await assert.rejects(collect(split), (err) => (assertCode(err, 'BackupDecryptionFailed', /bytes follow its last frame/), true));
  });
});

describe('the zstd child', () => {
  test('aborting an encode and decode chain kills both zstd children before the streams close', async () => {
    const controller = new AbortController();
    const source = new RandomSource(Infinity);
    const encoded = encodeBackup(source, { compression: 'zstd', key, signal: controller.signal });
    const decoded = decodeBackup(encoded, { key, signal: controller.signal });
    let read = 0;
    await assert.rejects(
      (async () => {
        for await (const chunk of decoded) {
          read += (chunk as Buffer).length;
          if (read > 4 * 1024 * 1024 && !controller.signal.aborted) {
            assert.equal(zstdChildren().length, 2, 'one zstd compressing, one decompressing');
            controller.abort();
          }
        }
      })(),
      { name: 'AbortError' },
    );
    await closed(decoded);
    await closed(encoded);
    assert.deepEqual(zstdChildren(), []);
    assert.ok(source.destroyed, 'the source (an engine tool) is stopped too');
  });

  test('a reader that gives up destroys the chain: zstd is gone when the stream closes, the source is destroyed', async () => {
    const source = new RandomSource(Infinity);
    const encoded = encodeBackup(source, { compression: 'zstd', key });
    await once(encoded, 'readable');
    assert.equal(zstdChildren().length, 1);
    encoded.destroy();
    await closed(encoded);
    assert.deepEqual(zstdChildren(), []);
    assert.ok(source.destroyed);
  });

  test("a failing source fails the stream with the source's error, and zstd goes", async () => {
    const source = new PassThrough();
    const encoded = encodeBackup(source, { compression: 'zstd', key });
    const reading = collect(encoded);
    source.write(randomBytes(100_000));
    assert.equal(zstdChildren().length, 1);
    source.destroy(new Error('pg_basebackup exited with code 1'));
    await assert.rejects(reading, /pg_basebackup exited with code 1/);
    await closed(encoded);
    assert.deepEqual(zstdChildren(), []);
  });

  test('an already aborted signal fails at once and starts nothing that stays', async () => {
    const encoded = encodeBackup(Readable.from([Buffer.from('x')]), { compression: 'zstd', key, signal: AbortSignal.abort() });
    await assert.rejects(collect(encoded), { name: 'AbortError' });
    await closed(encoded);
    assert.deepEqual(zstdChildren(), []);
  });

  test('zstd killed from outside fails the stream, saying how it ended', async () => {
    const encoded = encodeBackup(new RandomSource(Infinity), { compression: 'zstd', key });
    const reading = collect(encoded);
    await once(encoded, 'readable');
    const [pid] = zstdChildren();
    process.kill(pid!, 'SIGKILL');
    await assert.rejects(reading, (err) => (assertCode(err, 'Internal', /compression failed: zstd was killed by SIGKILL/), true));
    await closed(encoded);
    assert.deepEqual(zstdChildren(), []);
  });

  test('a missing zstd says what to install', async () => {
    const missing = join(dir, 'no-such-zstd');
    await assert.rejects(encode(sample.subarray(0, 1000), { compression: 'zstd', key, zstdPath: missing }), (err) => {
      assertCode(err, 'Internal', /need the zstd program .*no-such-zstd.*ENOENT.*apt-get install zstd/);
      return true;
    });
    // a decode reaches zstd only once the first frame verified
    const bytes = await encode(sample.subarray(0, 1000), { compression: 'zstd', key });
    await assert.rejects(decode(bytes, { key, zstdPath: missing }), /apt-get install zstd/);
  });

  test('a failing zstd fails the stream with the tail of what it said', async () => {
    const failing = join(dir, 'failing-zstd');
    await writeFile(failing, '#!/bin/sh\necho "zstd: early noise" >&2\necho "zstd: error 70 : Write error : No space left on device" >&2\nexit 70\n');
    await chmod(failing, 0o755);
    await assert.rejects(encode(sample.subarray(0, 100_000), { compression: 'zstd', key, zstdPath: failing }), (err) => {
      assertCode(err, 'Internal', /compression failed: zstd exited with code 70: .*No space left on device/);
      return true;
    });
  });

  test("Debian's zstd refusing what it is given to decompress fails the decode with its own words", async () => {
    // an unsealed object (no tag vouches for its header) claiming zstd content that is not
    const bytes = await encode(Buffer.from('plain text, never compressed\n'.repeat(20)), { compression: 'none' });
    bytes[9] = 1;
    const decoded = decodeBackup(Readable.from([bytes]), {});
    await assert.rejects(collect(decoded), (err) => {
      assertCode(err, 'Internal', /decompression failed: zstd exited with code 1: .*(unknown header|unsupported format)/i);
      return true;
    });
    await closed(decoded);
    assert.deepEqual(zstdChildren(), []);
  });
});

describe('decoding into a process', () => {
  /** a process that reads its stdin whole into a file, as tar or mbstream would read a backup */
  let sinks = 0;
  function fileSink(): { stdin: Writable; result: Promise<{ read: Buffer; code: number | null }> } {
    const path = join(dir, `sink-${++sinks}`);
    const child = spawn('/bin/sh', ['-c', 'cat > "$1"', 'sh', path], { stdio: ['pipe', 'ignore', 'ignore'] });
    const result = once(child, 'close').then(async ([code]) => ({ read: await readFile(path), code: code as number | null }));
    return { stdin: child.stdin, result };
  }

  for (const compression of ['zstd', 'none'] as BackupCompression[]) {
    test(`${compression}: the process reads exactly what was encoded, and no zstd stays`, async () => {
      const data = Buffer.concat([sample, randomBytes(3 * 1024 * 1024)]);
      const bytes = await encode(data, { compression, key });
      const sink = fileSink();
      await decodeBackupInto(Readable.from([bytes]), sink.stdin, { key });
      assert.deepEqual(zstdChildren(), []);
      const { read, code } = await sink.result;
      assert.equal(code, 0);
      assert.ok(read.equals(data), 'the same bytes');
    });
  }

  test('an object cut short fails as incomplete, the process sees its input end, and no zstd stays', async () => {
    const bytes = await encode(sample, { compression: 'zstd', key, frameSize: 64 * 1024 });
    const { header, frames } = layoutOf(bytes);
    const cut = header.length + frames.slice(0, -1).reduce((n, f) => n + f.length, 0);
    const sink = fileSink();
    await assert.rejects(decodeBackupInto(Readable.from([bytes.subarray(0, cut)]), sink.stdin, { key }), (err) => {
      assertCode(err, 'BackupDecryptionFailed', /incomplete/);
      return true;
    });
    assert.deepEqual(zstdChildren(), []);
    const { read } = await sink.result;
    assert.ok(read.length < sample.length, 'the process got less than the whole');
    assert.ok(sample.subarray(0, read.length).equals(read), 'and only what was sealed');
  });

  test('a frame that fails its tag stops the decode before zstd sees it', async () => {
    const bytes = await encode(sample, { compression: 'zstd', key, frameSize: 64 * 1024 });
    const { header, frames } = layoutOf(bytes);
    const altered = Buffer.from(bytes);
    // a byte in the body of the third frame
    const at = header.length + frames[0]!.length + frames[1]!.length + 100;
    altered[at] = altered[at]! ^ 1;
    const sink = fileSink();
    await assert.rejects(decodeBackupInto(Readable.from([altered]), sink.stdin, { key }), (err) => {
      assertCode(err, 'BackupDecryptionFailed', /frame 2 fails its check/);
      return true;
    });
    assert.deepEqual(zstdChildren(), []);
    await sink.result;
  });

  test('a process that stops reading fails the decode with a plain error (its exit says why), and zstd goes', async () => {
    const data = Buffer.concat([sample, sample, sample]);
    const bytes = await encode(data, { compression: 'zstd', key });
    const child = spawn('/usr/bin/head', ['-c', '1000'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const exited = once(child, 'close');
    await assert.rejects(decodeBackupInto(Readable.from([bytes]), child.stdin, { key }), (err) => {
      assert.ok(!isCofferError(err), `not a CofferError: ${String(err)}`);
      return true;
    });
    assert.deepEqual(zstdChildren(), []);
    await exited;
  });

  test('zstd writes into the process’s input itself; an abort kills it and ends that input', async () => {
    const controller = new AbortController();
    const encoded = encodeBackup(new RandomSource(Infinity), { compression: 'zstd', key });
    const sink = fileSink();
    const decoding = decodeBackupInto(encoded, sink.stdin, { key, signal: controller.signal });
    while (zstdChildren().length < 2) await sleep(20);
    const decompressor = zstdChildren().find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('-d'));
    // its stdout is the very socket this process holds as the sink's stdin, not a pipe back to this process
    const held = readdirSync('/proc/self/fd').map((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return '';
      }
    });
    const direct = held.includes(readlinkSync(`/proc/${decompressor}/fd/1`));
    controller.abort();
    await assert.rejects(decoding, { name: 'AbortError' });
    encoded.destroy();
    await closed(encoded);
    assert.deepEqual(zstdChildren(), []);
    await sink.result;
    assert.ok(direct, 'zstd -d writes to the sink');
  });

  test('a sink in this process (no descriptor) gets the same bytes through the stream', async () => {
    const bytes = await encode(sample, { compression: 'zstd', key });
    const sink = new PassThrough();
    const [, read] = await Promise.all([decodeBackupInto(Readable.from([bytes]), sink, { key }), collect(sink)]);
    assert.deepEqual(read, sample);
  });
});

describe('encoding what a process writes into zstd itself', () => {
  /** `cat` of `data` (from a file) started with the encoding's input as its stdout, as a backup tool is */
  async function catInto(input: Writable, data: Buffer): Promise<Promise<number | null>> {
    const path = join(dir, `tool-${randomBytes(4).toString('hex')}`);
    await writeFile(path, data);
    const tool = spawn('/bin/cat', [path], { stdio: ['ignore', input, 'ignore'] });
    return once(tool, 'close').then(([code]) => code as number | null);
  }

  test('the object decodes to exactly what the process wrote; the bytes never passed through this process', async () => {
    const data = Buffer.concat([sample, randomBytes(1024 * 1024 + 3)]);
    const encoding = startBackupEncoding({ compression: 'zstd', key });
    assert.ok(encoding.input !== undefined);
    const compressor = zstdChildren()[0];
    const tool = await catInto(encoding.input, data);
    const body = encoding.fedDirectly();
    // zstd's stdin is the tool's stdout: this process no longer holds that socket
    const held = readdirSync('/proc/self/fd').map((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return '';
      }
    });
    const zstdInput = readlinkSync(`/proc/${compressor}/fd/0`);
    const bytes = await collect(body);
    assert.equal(await tool, 0);
    assert.ok(!held.includes(zstdInput), 'this process dropped its copy of zstd’s input');
    assert.deepEqual(await decode(bytes, { key }), data);
    assert.deepEqual(zstdChildren(), []);
  });

  test('fed from a stream instead, it is encodeBackup; cancelled, its zstd goes', async () => {
    const data = randomBytes(200_000);
    const fromStream = startBackupEncoding({ compression: 'zstd', key });
    assert.deepEqual(await decode(await collect(fromStream.from(Readable.from([data]))), { key }), data);
    const cancelled = startBackupEncoding({ compression: 'zstd', key });
    assert.equal(zstdChildren().length, 1);
    cancelled.cancel();
    while (zstdChildren().length > 0) await sleep(20);
  });

  test('without compression there is no input to hand a process', () => {
    const encoding = startBackupEncoding({ compression: 'none', key });
    assert.equal(encoding.input, undefined);
    assert.throws(() => encoding.fedDirectly(), (err) => {
      assertCode(err, 'Internal');
      return true;
    });
    encoding.cancel();
  });
});
