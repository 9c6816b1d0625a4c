import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { baseBackupFacts } from '../../src/guest/engines/postgresql/backup.js';

// The facts of a base backup, read from what `pg_basebackup --verbose` wrote to stderr (PostgreSQL
// 15's lines, as captured from a run): a log lacking a WAL position or the tool's last word is
// no complete backup.

const isCode = (code: string) => (err: Error & { code?: string }) => err.code === code;

const log = [
  'pg_basebackup: initiating base backup, waiting for checkpoint to complete',
  'pg_basebackup: checkpoint completed',
  'pg_basebackup: write-ahead log start point: 0/2000028 on timeline 1',
  'pg_basebackup: write-ahead log end point: 0/2000100',
  'pg_basebackup: syncing data to disk ...',
  'pg_basebackup: base backup completed',
  '',
].join('\n');

describe('base backup facts', () => {
  it('reads the WAL positions and timeline, with the server major given', () => {
    assert.deepEqual(baseBackupFacts(log, '15'), { format: 'tar', version: '15', timeline: '1', 'start-lsn': '0/2000028', 'stop-lsn': '0/2000100' });
  });

  it('reads positions past 4 GiB of WAL and later timelines', () => {
    const later = log.replace('0/2000028 on timeline 1', '1A/FF000060 on timeline 12').replace('end point: 0/2000100', 'end point: 1B/138');
    const facts = baseBackupFacts(later, '15');
    assert.equal(facts.timeline, '12');
    assert.equal(facts['start-lsn'], '1A/FF000060');
    assert.equal(facts['stop-lsn'], '1B/138');
  });

  it('refuses a log without a start, an end or the completion, or with an end before the start', () => {
    const without = (line: string) => log.split('\n').filter((l) => !l.includes(line)).join('\n');
    assert.throws(() => baseBackupFacts(without('start point'), '15'), isCode('EngineError'));
    assert.throws(() => baseBackupFacts(without('end point'), '15'), isCode('EngineError'));
    assert.throws(() => baseBackupFacts(without('base backup completed'), '15'), isCode('EngineError'));
    assert.throws(() => baseBackupFacts('', '15'), isCode('EngineError'));
    assert.throws(() => baseBackupFacts(log.replace('end point: 0/2000100', 'end point: 0/1000000'), '15'), isCode('EngineError'));
    // a line quoted inside another one (a server notice, say) is not the tool's own
    assert.throws(() => baseBackupFacts(log.replace('pg_basebackup: base backup completed', 'WARNING: pg_basebackup: base backup completed'), '15'), isCode('EngineError'));
  });
});
