import assert from 'node:assert/strict';
import { mkdir, mkdtemp, open, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalDirectoryStorage } from '../../src/backup/index.js';
import { rejectsWithCode } from '../support/coffer-errors.js';
import { backupStorageSuite, bodyOf } from './storage.suite.js';

/** every file and directory under `dir`, dot-files included, relative to it */
async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  return entries.sort();
}

backupStorageSuite('local', { credentials: false, network: false }, async () => {
  const parent = await mkdtemp(join(tmpdir(), 'coffer-local-storage-'));
  const root = join(parent, 'backups');
  await mkdir(root);
  return {
    storage: new LocalDirectoryStorage(root),
    // a directory stores a body whole; the suite's bodies are a few MiB all the same
    partBytes: 1024 * 1024,
    unreachable: () => new LocalDirectoryStorage(join(parent, 'not-mounted')),
    secrets: [],
    async corrupt(container, name) {
      const file = await open(join(root, container, name), 'r+');
      try {
        const { size } = await file.stat();
        const byte = Buffer.alloc(1);
        await file.read(byte, 0, 1, Math.floor(size / 2));
        byte[0] = byte[0]! ^ 0xff;
        await file.write(byte, 0, 1, Math.floor(size / 2));
      } finally {
        await file.close();
      }
    },
    // what is left once objects are gone: files, and the directories a name's `/` made
    rawNames: (container) => walk(join(root, container)),
    close: () => rm(parent, { recursive: true, force: true }),
  };
});

describe('LocalDirectoryStorage', () => {
  let parent: string;
  let root: string;
  let storage: LocalDirectoryStorage;

  before(async () => {
    parent = await mkdtemp(join(tmpdir(), 'coffer-local-storage-'));
    root = join(parent, 'backups');
    await mkdir(root, { mode: 0o755 });
    storage = new LocalDirectoryStorage(root);
  });
  after(() => rm(parent, { recursive: true, force: true }));

  it('keeps directories 0700 and files 0600, so that engine users cannot read backups', async () => {
    await storage.ensureContainer('modes');
    await storage.put('modes', 'inst/wal/0001', bodyOf(Buffer.from('wal')), { metadata: { kind: 'wal' } });
    for (const path of ['modes', 'modes/inst', 'modes/inst/wal']) {
      assert.equal((await stat(join(root, path))).mode & 0o777, 0o700, path);
    }
    for (const path of ['modes/inst/wal/0001', 'modes/inst/wal/.0001.meta.json']) {
      assert.equal((await stat(join(root, path))).mode & 0o777, 0o600, path);
    }
  });

  it('tightens a container made by hand with a looser mode', async () => {
    await mkdir(join(root, 'loose'), { mode: 0o755 });
    await storage.ensureContainer('loose');
    assert.equal((await stat(join(root, 'loose'))).mode & 0o777, 0o700);
  });

  it('writes nowhere outside its root, whatever the name', async () => {
    await storage.ensureContainer('inside');
    const before = await walk(parent);
    for (const name of ['../escaped', '../../escaped', 'a/../../../escaped', '/tmp/escaped']) {
      await rejectsWithCode(storage.put('inside', name, bodyOf(Buffer.from('x'))), 'BadRequest');
    }
    await rejectsWithCode(storage.ensureContainer('..'), 'BadRequest');
    await rejectsWithCode(storage.put('..', 'escaped', bodyOf(Buffer.from('x'))), 'BadRequest');
    assert.deepEqual(await walk(parent), before);
  });

  it('does not make its root: an unmounted volume is reported, not written in its place', async () => {
    const unmounted = new LocalDirectoryStorage(join(parent, 'unmounted'));
    await rejectsWithCode(unmounted.ensureContainer('c'), 'BackupStorageUnavailable');
    await assert.rejects(stat(join(parent, 'unmounted')));
  });

  it('shows no object whose record does not describe the file (a put cut between its renames)', async () => {
    await storage.ensureContainer('torn');
    await storage.put('torn', 'object', bodyOf(Buffer.from('first version')));
    // the file replaced and the record not: as if the process died between the two
    await writeFile(join(root, 'torn', 'object'), 'a longer second version');
    assert.equal(await storage.head('torn', 'object'), undefined);
    assert.deepEqual(await storage.list('torn'), []);
    await rejectsWithCode(storage.get('torn', 'object'), 'NotFound');
  });

  it('refuses a name that is both an object and a folder of objects', async () => {
    await storage.ensureContainer('clash');
    await storage.put('clash', 'a', bodyOf(Buffer.from('x')));
    await rejectsWithCode(storage.put('clash', 'a/b', bodyOf(Buffer.from('y'))), 'BadRequest');
    assert.equal(await storage.head('clash', 'a/b'), undefined);
    assert.deepEqual(
      (await walk(join(root, 'clash'))).map((p) => relative('.', p)),
      ['.a.meta.json', 'a'],
    );
  });
});
