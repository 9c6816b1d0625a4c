import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFile, link, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { LocalDirectoryStorage } from '../../src/backup/index.js';
import { silentLogger } from '../../src/common/index.js';
import { GuestLogs } from '../../src/guest/guest-logs.js';
import type { LogControl } from '../../src/guest/engines/engine.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { tempDataDir } from '../support/temp-dir.js';

// The guest's log rules on real files, with the engine's switch recorded: what a publish stores
// (new bytes only, in objects of at most 1 MB), how a file past its limit is cut and shown, and
// which files the host refuses to open.

const container = 'database_logs';
const prefix = 'i1/mariadb-general/';
let root: string;
let dir: string;
let storage: LocalDirectoryStorage;
let enabled: Set<string>;
let logs: GuestLogs;
const control: LogControl = {
  userLogs: ['general'],
  enabled: async () => new Set(enabled),
  setEnabled: async (name, on) => {
    if (on) enabled.add(name);
    else enabled.delete(name);
  },
};
const log = silentLogger();

async function objects(): Promise<string[]> {
  const texts: string[] = [];
  for (const object of await storage.list(container, prefix)) {
    const chunks: Buffer[] = [];
    for await (const chunk of await storage.get(container, object.name)) chunks.push(chunk as Buffer);
    texts.push(Buffer.concat(chunks).toString('utf8'));
  }
  return texts;
}

before(async () => {
  root = await tempDataDir('coffer-gl-');
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('guest logs', () => {
  beforeEach(async () => {
    dir = join(root, String(Date.now() + Math.random()));
    await mkdir(join(dir, 'storage'), { recursive: true });
    storage = new LocalDirectoryStorage(join(dir, 'storage'));
    enabled = new Set();
    logs = new GuestLogs({
      dir,
      instanceId: 'i1',
      manager: 'mariadb',
      files: () => ({ general: join(dir, 'general.log'), error: join(dir, 'error.log') }),
      control,
      storage,
      logger: log,
      limitBytes: 1000,
    });
  });

  it('publishes only the bytes written since the last publish', async () => {
    await writeFile(join(dir, 'general.log'), 'one\ntwo\n');
    const first = await logs.act({ name: 'general', publish: true, container }, log);
    assert.deepEqual([first.status, first.published, first.pending], ['Published', 8, 0]);
    assert.ok(enabled.has('general'), 'publish turns a user log on');
    await appendFile(join(dir, 'general.log'), 'three\n');
    assert.equal((await logs.list()).find((l) => l.name === 'general')!.status, 'Partial');
    await logs.act({ name: 'general', publish: true, container }, log);
    assert.deepEqual(await objects(), ['one\ntwo\n', 'three\n']);
  });

  it('splits a large publish into objects of at most 1 MB, in order', async () => {
    const text = 'x'.repeat(2_500_000);
    await writeFile(join(dir, 'general.log'), text);
    const state = await logs.act({ name: 'general', publish: true, container }, log);
    assert.equal(state.published, 2_500_000);
    const stored = await objects();
    assert.deepEqual(stored.map((o) => o.length), [1_000_000, 1_000_000, 500_000]);
  });

  it('cuts a file grown past its limit and shows it Rotated until the next publish, which starts at its new beginning', async () => {
    await writeFile(join(dir, 'general.log'), 'a'.repeat(500));
    await logs.act({ name: 'general', publish: true, container }, log);
    await appendFile(join(dir, 'general.log'), 'b'.repeat(600));
    await logs.trim();
    assert.equal((await stat(join(dir, 'general.log'))).size, 0);
    await appendFile(join(dir, 'general.log'), 'after-cut\n');
    const listed = (await logs.list()).find((l) => l.name === 'general')!;
    assert.deepEqual([listed.status, listed.pending], ['Rotated', 10]);
    const published = await logs.act({ name: 'general', publish: true, container }, log);
    assert.equal(published.status, 'Published');
    assert.deepEqual(await objects(), ['a'.repeat(500), 'after-cut\n']);
  });

  it('leaves a file under its limit alone', async () => {
    await writeFile(join(dir, 'general.log'), 'c'.repeat(1000));
    await logs.trim();
    assert.equal((await stat(join(dir, 'general.log'))).size, 1000);
  });

  it('looks at a log under its limit in place, without opening it', async () => {
    // a file with another name is refused once opened (and the trim warns); under the limit it
    // is not even opened: the trim of the minute costs one lstat per log
    const warnings: string[] = [];
    const watched = new GuestLogs({
      dir,
      instanceId: 'i1',
      manager: 'mariadb',
      files: () => ({ general: join(dir, 'general.log') }),
      control,
      storage,
      logger: pino({ level: 'warn' }, { write: (line: string) => void warnings.push((JSON.parse(line) as { msg: string }).msg) }),
      limitBytes: 1000,
    });
    const outside = join(root, `small-${Date.now()}`);
    await writeFile(outside, 'y'.repeat(500));
    await link(outside, join(dir, 'general.log'));
    await watched.trim();
    assert.deepEqual(warnings, []);
    await appendFile(outside, 'y'.repeat(600));
    await watched.trim();
    assert.deepEqual(warnings, ['log file not checked against its limit'], 'past its limit it is opened, and refused');
    assert.equal((await readFile(outside, 'utf8')).length, 1100, 'never cut');
  });

  it('refuses a hard link and a FIFO in place of the log, without truncating or blocking', async () => {
    const outside = join(root, `outside-${Date.now()}`);
    await writeFile(outside, 'z'.repeat(5000));
    await link(outside, join(dir, 'general.log'));
    await rejectsWithCode(logs.act({ name: 'general', publish: true, container }, log), 'BadRequest');
    await logs.trim();
    assert.equal((await readFile(outside, 'utf8')).length, 5000, 'a file with another name is never cut');
    execFileSync('mkfifo', [join(dir, 'error.log')]);
    await rejectsWithCode(logs.act({ name: 'error', publish: true, container }, log), 'BadRequest');
    assert.equal((await logs.list()).find((l) => l.name === 'error')!.status, 'Unavailable');
  });

  it('shows a SYS log Ready, refuses to turn it on, and publishes it without a switch', async () => {
    await writeFile(join(dir, 'error.log'), 'started\n');
    const listed = (await logs.list()).find((l) => l.name === 'error')!;
    assert.deepEqual([listed.type, listed.status], ['SYS', 'Ready']);
    await rejectsWithCode(logs.act({ name: 'error', enable: true, container }, log), 'BadRequest');
    const published = await logs.act({ name: 'error', publish: true, container }, log);
    assert.equal(published.status, 'Published');
    assert.deepEqual([...enabled], []);
  });

  it('answers NotImplemented for a publish on a host without storage, and BadRequest for an unknown log', async () => {
    const without = new GuestLogs({ dir, instanceId: 'i1', manager: 'mariadb', files: () => ({ general: join(dir, 'general.log') }), control, storage: undefined, logger: log });
    await rejectsWithCode(without.act({ name: 'general', publish: true, container }, log), 'NotImplemented');
    await rejectsWithCode(logs.act({ name: 'nope', container }, log), 'BadRequest');
  });
});
