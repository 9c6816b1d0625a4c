// test-lane: parallel (pure functions)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isCofferError } from '../../src/common/index.js';
import { binlogEvents, endsTransaction, nextBinlogName } from '../../src/guest/engines/mysql-family/binlog-files.js';
import { planReplay } from '../../src/guest/engines/mysql-family/binlog-replay.js';
import type { ArchivedLogFile } from '../../src/guest/engines/engine.js';

// Which archived binlog files a point-in-time restore replays, and what mariadb-binlog's headers say.

const base = { 'wal-archiving': 'on', 'wal-start': 'coffer-binlog.000002', 'binlog-file': 'coffer-binlog.000002', 'binlog-position': '1234', 'completed-at': '2026-12-03T10:00:00.500Z' };
const file = (n: number, lastCommit?: string): ArchivedLogFile => ({
  name: `coffer-binlog.${String(n).padStart(6, '0')}`,
  facts: lastCommit === undefined ? {} : { 'last-commit': lastCommit },
});
const badRequest = (pattern: RegExp) => (err: unknown) => isCofferError(err) && err.code === 'BadRequest' && pattern.test(err.message);

describe('planReplay', () => {
  const files = [file(1, '2026-12-03T09:00:00.000Z'), file(2, '2026-12-03T10:00:01.000Z'), file(3), file(4, '2026-12-03T10:00:05.000Z'), file(5, '2026-12-03T10:00:09.000Z')];

  it('replays from the backup position up to the first file with a change at or after the end of the target second', () => {
    const plan = planReplay(files, base, new Date('2026-12-03T10:00:04.700Z'));
    assert.deepEqual(plan, { files: ['coffer-binlog.000002', 'coffer-binlog.000003', 'coffer-binlog.000004'], startPosition: 1234, stopAt: new Date('2026-12-03T10:00:05.000Z') });
  });

  it('replays every file after the backup when the target is past the archive', () => {
    assert.deepEqual(planReplay(files, base, new Date('2026-12-03T11:00:00Z')).files, files.slice(1).map((f) => f.name));
  });

  it('refuses a gap, a missing archive, a moment before the backup completed, and a backup without a binlog position', () => {
    assert.throws(() => planReplay([file(2, '2026-12-03T10:00:01.000Z'), file(4)], base, new Date('2026-12-03T11:00:00Z')), badRequest(/has a gap: file 3/));
    assert.throws(() => planReplay([file(1)], base, new Date('2026-12-03T11:00:00Z')), badRequest(/is missing/));
    assert.throws(() => planReplay(files, base, new Date('2026-12-03T09:59:00Z')), badRequest(/later moment only/));
    assert.throws(() => planReplay(files, { ...base, 'wal-archiving': 'off' }, new Date('2026-12-03T11:00:00Z')), badRequest(/does not record where its binary log begins/));
  });
});

describe('binlog files', () => {
  it('reads event times (UTC, whole seconds) and which events end a transaction', () => {
    const output = [
      '# at 4',
      '#261203 19:22:14 server id 1  end_log_pos 256 CRC32 0x2f0a8171 \tStart: binlog v 4, server v 10.11.19-MariaDB-0+deb12u1-log created 261203 19:22:14',
      '#261203 19:22:19 server id 1  end_log_pos 435 CRC32 0xd50e3ef4 \tGTID 0-1-4 trans',
      '#261203 19:22:19 server id 1  end_log_pos 576 CRC32 0x0813afc3 \tWrite_rows: table id 18 flags: STMT_END_F',
      '#261203 19:22:20 server id 1  end_log_pos 607 CRC32 0xa701b0a6 \tXid = 8',
      '#261203 19:22:25 server id 1  end_log_pos 901 CRC32 0xabf08420 \tRotate to coffer-binlog.000002  pos: 4',
    ].join('\n');
    const events = binlogEvents(output);
    assert.equal(events.length, 5);
    assert.deepEqual(events.filter(endsTransaction).map((e) => e.at.toISOString()), ['2026-12-03T19:22:20.000Z']);
  });

  it('numbers files as the server does', () => {
    assert.equal(nextBinlogName('coffer-binlog.000009'), 'coffer-binlog.000010');
    assert.equal(nextBinlogName('coffer-binlog.999999'), 'coffer-binlog.1000000');
  });
});
