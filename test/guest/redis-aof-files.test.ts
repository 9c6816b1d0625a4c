import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { AofScanner, chunkName, cutAfterSecond, parseChunkName, parseManifest } from '../../src/guest/engines/redis/aof-files.js';
import { planAofReplay } from '../../src/guest/engines/redis/aof-replay.js';
import { baseOfManifest } from '../../src/guest/engines/redis/backup.js';
import type { ArchivedLogFile } from '../../src/guest/engines/engine.js';

// Redis point in time's reading of the AOF: the manifest, chunk names, where commands end and
// which second each is stamped with, the cut at a second, and which archived chunks a restore
// fetches.

const isCode = (code: string) => (err: Error & { code?: string }) => err.code === code;
const command = (...args: string[]) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
const stamp = (second: number) => `#TS:${second}\r\n`;

const aof = [
  stamp(1000),
  command('SELECT', '0'),
  command('SET', 'a', '1'),
  stamp(1001),
  command('MULTI'),
  command('SET', 'b', 'two\r\nlines'),
  command('INCR', 'n'),
  command('EXEC'),
  stamp(1003),
  command('SET', 'c', 'x'.repeat(300)),
].join('');

/** `text` fed in pieces of `size` bytes */
function pieces(text: string, size: number): Buffer[] {
  const bytes = Buffer.from(text, 'latin1');
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

async function cut(text: string, lastSecond: number, size: number): Promise<string> {
  return (await buffer(Readable.from(pieces(text, size)).pipe(cutAfterSecond(lastSecond)))).toString('latin1');
}

describe('redis AOF manifest and chunk names', () => {
  it('reads the manifest Redis 7 writes', () => {
    const text = 'file appendonly.aof.3.base.rdb seq 3 type b\nfile appendonly.aof.2.incr.aof seq 2 type h\nfile appendonly.aof.3.incr.aof seq 3 type i\n';
    assert.deepEqual(parseManifest(text), [
      { name: 'appendonly.aof.3.base.rdb', seq: 3, type: 'b' },
      { name: 'appendonly.aof.2.incr.aof', seq: 2, type: 'h' },
      { name: 'appendonly.aof.3.incr.aof', seq: 3, type: 'i' },
    ]);
    assert.throws(() => parseManifest('file "a b" seq 1 type b\n'), isCode('EngineError'));
  });

  it('takes the base and the first incremental file after it as where a backup starts', () => {
    const text = 'file appendonly.aof.4.base.rdb seq 4 type b\nfile appendonly.aof.6.incr.aof seq 6 type i\nfile appendonly.aof.5.incr.aof seq 5 type i\n';
    assert.deepEqual(baseOfManifest(text), { base: 'appendonly.aof.4.base.rdb', walStart: 'incr-0000000005-0000000000000000' });
    // a base of commands (aof-use-rdb-preamble off) is not an RDB a restore can load
    assert.throws(() => baseOfManifest('file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n'), isCode('EngineError'));
  });

  it('names chunks by file and offset, in an order that sorts as the log', () => {
    const names = [chunkName({ seq: 10, offset: 0 }), chunkName({ seq: 9, offset: 123_456 }), chunkName({ seq: 9, offset: 99 })];
    assert.deepEqual([...names].sort(), [names[2], names[1], names[0]]);
    assert.deepEqual(parseChunkName(names[1]!), { seq: 9, offset: 123_456 });
    assert.throws(() => parseChunkName('appendonly.aof.1.incr.aof'), isCode('EngineError'));
  });
});

describe('redis AOF scanner', () => {
  it('finds where the last whole command ends and the stamps, however the bytes are split', () => {
    for (const size of [1, 3, 7, 64, 10_000]) {
      const seen: [number, number][] = [];
      const scanner = new AofScanner((second, offset) => seen.push([second, offset]));
      const whole = aof + command('SET', 'd', '4').slice(0, 9);
      for (const piece of pieces(whole, size)) scanner.feed(piece);
      assert.equal(scanner.boundary, Buffer.byteLength(aof), `size ${size}`);
      assert.equal(scanner.complete, false);
      assert.deepEqual([scanner.firstStamp, scanner.lastStamp], [1000, 1003]);
      assert.deepEqual(seen.map(([second]) => second), [1000, 1001, 1003]);
      assert.equal(seen[1]![1], aof.indexOf(stamp(1001)));
    }
  });

  it('refuses what is not an AOF', () => {
    assert.throws(() => new AofScanner().feed(Buffer.from('REDIS0010\xfa\r\n', 'latin1')), isCode('EngineError'));
    assert.throws(() => new AofScanner().feed(Buffer.from('*1\r\n:5\r\n')), isCode('EngineError'));
  });
});

describe('redis AOF cut at a second', () => {
  it('keeps every command stamped in the last second and before, and nothing after', async () => {
    for (const size of [1, 5, 33, 100_000]) {
      assert.equal(await cut(aof, 1001, size), aof.slice(0, aof.indexOf(stamp(1003))), `size ${size}`);
      // a second with no write of its own keeps what came before it
      assert.equal(await cut(aof, 1002, size), aof.slice(0, aof.indexOf(stamp(1003))));
      assert.equal(await cut(aof, 1000, size), aof.slice(0, aof.indexOf(stamp(1001))));
      assert.equal(await cut(aof, 999, size), '');
      assert.equal(await cut(aof, 5000, size), aof);
    }
  });

  it('fails on an AOF that ends inside a command before the cut', async () => {
    await assert.rejects(cut(aof.slice(0, -3), 5000, 64), isCode('EngineError'));
    // one that ends inside a command after the cut lost nothing kept
    assert.equal(await cut(aof.slice(0, -3), 1001, 64), aof.slice(0, aof.indexOf(stamp(1003))));
  });
});

describe('redis point-in-time plan', () => {
  const base = { 'wal-archiving': 'on', 'wal-start': chunkName({ seq: 5, offset: 0 }), 'completed-at': '1970-01-01T00:16:40.000Z' };
  const file = (seq: number, offset: number, bytes: number, final: boolean, last?: number): ArchivedLogFile => ({
    name: chunkName({ seq, offset }),
    facts: { bytes: String(bytes), final: final ? 'yes' : 'no', ...(last === undefined ? {} : { 'last-commit': new Date(last * 1000).toISOString() }) },
  });
  const archive = [
    file(4, 0, 50, true, 990),
    file(5, 0, 100, false, 1001),
    file(5, 100, 40, true, 1002),
    file(6, 0, 70, false, 1010),
    file(6, 70, 30, false, 1020),
  ];

  it('follows the chunks from the backup on, across files, up to the first with a write after the target', () => {
    assert.deepEqual(planAofReplay(archive, base, new Date(1005_500)), {
      chunks: [chunkName({ seq: 5, offset: 0 }), chunkName({ seq: 5, offset: 100 }), chunkName({ seq: 6, offset: 0 })],
      lastSecond: 1005,
    });
    // a write in the target's own second is before it: its chunk is not where the cut is
    assert.deepEqual(planAofReplay(archive, base, new Date(1002_000)).chunks, [chunkName({ seq: 5, offset: 0 }), chunkName({ seq: 5, offset: 100 }), chunkName({ seq: 6, offset: 0 })]);
    assert.equal(planAofReplay(archive, base, new Date(1030_000)).chunks.length, 4);
    // nothing written after the backup: the base alone
    assert.deepEqual(planAofReplay([archive[0]!], base, new Date(1030_000)), { chunks: [], lastSecond: 1030 });
  });

  it('refuses a gap, a moment before the backup completed, and a backup that records no start', () => {
    const gap = [archive[1]!, archive[3]!];
    assert.throws(() => planAofReplay(gap, base, new Date(1030_000)), (err: Error) => isCode('BadRequest')(err) && /gap: incr-0000000005-0000000000000100/.test(err.message));
    // a gap after the cut does not matter
    assert.deepEqual(planAofReplay(gap, base, new Date(1000_000)).chunks, [chunkName({ seq: 5, offset: 0 })]);
    assert.throws(() => planAofReplay(archive, base, new Date(999_000)), (err: Error) => /later moment only/.test(err.message));
    assert.throws(() => planAofReplay(archive, { format: 'rdb' }, new Date(1030_000)), isCode('BadRequest'));
  });
});
