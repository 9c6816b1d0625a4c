// test-lane: parallel (its own programs as root, nothing shared)
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { LocalProcessRunner } from '../../src/agent/local-process-runner.js';
import { CofferError } from '../../src/common/index.js';

// The streaming runner with real programs (cat, zstd, sh, sleep) as the agent's own user.

const runner = new LocalProcessRunner(undefined);
const mib = 1024 * 1024;

/** `total` bytes of random data in 64 KiB chunks, counting what has been produced */
function source(total: number, counter: { produced: number }, hash = createHash('sha256')) {
  const block = randomBytes(4 * mib);
  let offset = 0;
  const stream = new Readable({
    highWaterMark: 64 * 1024,
    read() {
      if (counter.produced >= total) {
        this.push(null);
        return;
      }
      const size = Math.min(64 * 1024, total - counter.produced);
      // a rotating window over a random block: cheap to make, not trivially compressible
      const chunk = Buffer.from(block.subarray(offset, offset + size));
      chunk.writeUInt32LE(counter.produced >>> 0, 0);
      offset = (offset + 4099) % (block.length - 64 * 1024);
      counter.produced += size;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { stream, hash };
}

/** a sink that hashes what it gets, optionally slowly, and notes the most bytes ever in flight */
function sink(counter: { produced: number; consumed: number; maxInFlight: number }, delayMs = 0) {
  const hash = createHash('sha256');
  const stream = new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _enc, done) {
      counter.consumed += chunk.length;
      counter.maxInFlight = Math.max(counter.maxInFlight, counter.produced - counter.consumed);
      hash.update(chunk);
      if (delayMs === 0) done();
      else setTimeout(done, delayMs);
    },
  });
  return { stream, hash };
}

/** true once no process is left in the group (zombies included: init reaps them shortly) */
async function groupGone(pgid: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return true;
    }
    await sleep(50);
  }
  return false;
}

async function rejection(promise: Promise<unknown>): Promise<CofferError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof CofferError, `expected a CofferError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}

describe('LocalProcessRunner.stream', () => {
  it('streams 200 MiB through zstd and back unchanged, with bounded memory', async () => {
    const total = 200 * mib;
    const counter = { produced: 0, consumed: 0, maxInFlight: 0 };
    const input = source(total, counter);
    const output = sink(counter);
    const compress = runner.stream('zstd', ['-1', '-c', '-q'], { timeoutMs: 120_000 });
    const decompress = runner.stream('zstd', ['-d', '-c', '-q'], { timeoutMs: 120_000 });
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    }, 20);
    try {
      await Promise.all([
        pipeline(input.stream, compress.stdin),
        pipeline(compress.stdout, decompress.stdin),
        pipeline(decompress.stdout, output.stream),
        compress.exited,
        decompress.exited,
      ]);
    } finally {
      clearInterval(sampler);
    }
    assert.equal(counter.consumed, total);
    assert.equal(output.hash.digest('hex'), input.hash.digest('hex'));
    // what sits in pipes and stream buffers, not the whole 200 MiB
    assert.ok(counter.maxInFlight < 32 * mib, `in flight at most ${counter.maxInFlight} bytes`);
    assert.ok(rssPeak - rssBefore < 150 * mib, `rss grew by ${rssPeak - rssBefore} bytes`);
  });

  it('a slow consumer holds the producer back through the program', async () => {
    const counter = { produced: 0, consumed: 0, maxInFlight: 0 };
    const input = source(16 * mib, counter);
    const output = sink(counter, 2);
    const cat = runner.stream('cat', [], { timeoutMs: 120_000 });
    await Promise.all([
      pipeline(input.stream, cat.stdin),
      pipeline(cat.stdout, output.stream),
      cat.exited,
    ]);
    assert.equal(counter.consumed, 16 * mib);
    assert.equal(output.hash.digest('hex'), input.hash.digest('hex'));
    // two pipes and a few stream buffers, far below the 16 MiB the producer could have made
    assert.ok(counter.maxInFlight < 4 * mib, `in flight at most ${counter.maxInFlight} bytes`);
  });

  it('aborting mid-stream kills the program and what it forked, and rejects', async () => {
    const controller = new AbortController();
    // the shell forks a sleeper into the group, then becomes cat
    const proc = runner.stream('sh', ['-c', 'sleep 600 & exec cat'], { timeoutMs: 120_000, signal: controller.signal });
    const counter = { produced: 0, consumed: 0, maxInFlight: 0 };
    const output = sink(counter);
    const copying = pipeline(source(1024 * mib, counter).stream, proc.stdin).catch(() => undefined);
    const reading = pipeline(proc.stdout, output.stream).catch(() => undefined);
    while (counter.consumed < 8 * mib) await sleep(10);
    controller.abort();
    const err = await rejection(proc.exited);
    assert.equal(err.code, 'EngineError');
    assert.match(err.message, /sh was aborted/);
    await Promise.all([copying, reading]);
    assert.ok(counter.produced < 1024 * mib);
    assert.ok(await groupGone(proc.pid), 'a process of the group is still alive');
  });

  it('a timeout kills the group and says so', async () => {
    const proc = runner.stream('sh', ['-c', 'sleep 600 & sleep 600'], { timeoutMs: 300 });
    proc.stdin.end();
    proc.stdout.resume();
    const err = await rejection(proc.exited);
    assert.equal(err.code, 'EngineError');
    assert.match(err.message, /timed out after 300 ms/);
    assert.ok(await groupGone(proc.pid));
  });

  it('a non-zero exit rejects with the tail of stderr, bounded', async () => {
    const proc = runner.stream('sh', ['-c', 'head -c 3000000 /dev/zero | tr "\\0" x >&2; echo "disk full" >&2; exit 3'], {
      timeoutMs: 60_000,
    });
    proc.stdin.end();
    proc.stdout.resume();
    const err = await rejection(proc.exited);
    assert.match(err.message, /sh exited with code 3/);
    assert.ok(err.details !== undefined && err.details.endsWith('disk full'));
    assert.ok(err.details.length <= 1500);
  });

  it("a program's stderr is there to read once it exited 0, its last 64 KiB of a longer one", async () => {
    const proc = runner.stream('sh', ['-c', 'echo "start point: 0/2000028" >&2; head -c 100000 /dev/zero | tr "\\0" x >&2; printf "\\nbackup completed\\n" >&2'], {
      timeoutMs: 60_000,
    });
    proc.stdin.end();
    proc.stdout.resume();
    await proc.exited;
    const tail = proc.stderrTail();
    assert.equal(tail.length, 64 * 1024);
    assert.ok(tail.endsWith('x\nbackup completed\n'), tail.slice(-40));
    assert.ok(!tail.includes('start point'), 'only the tail is kept');

    const short = runner.stream('sh', ['-c', 'echo "start point: 0/2000028" >&2'], { timeoutMs: 60_000 });
    short.stdin.end();
    short.stdout.resume();
    await short.exited;
    assert.equal(short.stderrTail(), 'start point: 0/2000028\n');
  });

  it('a program that cannot start rejects without crashing the writer', async () => {
    const proc = runner.stream('/nonexistent/program', [], { timeoutMs: 5_000 });
    proc.stdin.end('ignored');
    const err = await rejection(proc.exited);
    assert.match(err.message, /program could not run/);
  });

  it('a program that exits early does not crash its writer with EPIPE', async () => {
    const proc = runner.stream('head', ['-c', '10'], { timeoutMs: 60_000 });
    const counter = { produced: 0, consumed: 0, maxInFlight: 0 };
    const output = sink(counter);
    const writing = pipeline(source(64 * mib, counter).stream, proc.stdin).then(
      () => 'finished',
      () => 'refused',
    );
    await Promise.all([pipeline(proc.stdout, output.stream), proc.exited]);
    assert.equal(counter.consumed, 10);
    assert.equal(await writing, 'refused');
    assert.ok(await groupGone(proc.pid));
  });

  it('an already aborted signal never lets the program run to completion', async () => {
    const proc = runner.stream('sleep', ['600'], { timeoutMs: 60_000, signal: AbortSignal.abort() });
    proc.stdout.resume();
    const err = await rejection(proc.exited);
    assert.match(err.message, /aborted|could not run/);
    if (proc.pid > 0) assert.ok(await groupGone(proc.pid));
  });

  it('with a stdout target the program writes into that process itself; its own stdout only ends', async () => {
    const data = randomBytes(3 * mib);
    const reader = runner.stream('sha256sum', [], { timeoutMs: 60_000 });
    const writer = runner.stream('cat', [], { timeoutMs: 60_000, stdout: reader.stdin });
    // the reader's input ends only once no one holds it open: the writer's copy goes with it
    reader.stdin.destroy();
    const [, , , digest] = await Promise.all([
      pipeline(Readable.from([data]), writer.stdin),
      writer.exited,
      (async () => {
        const chunks: Buffer[] = [];
        for await (const chunk of writer.stdout) chunks.push(chunk as Buffer);
        assert.equal(Buffer.concat(chunks).length, 0, 'nothing came back through this process');
      })(),
      (async () => {
        let out = '';
        for await (const chunk of reader.stdout) out += String(chunk);
        await reader.exited;
        return out;
      })(),
    ]);
    assert.equal(digest.split(' ')[0], createHash('sha256').update(data).digest('hex'));
  });
});
