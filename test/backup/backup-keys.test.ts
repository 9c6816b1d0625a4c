import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { inspect } from 'node:util';
import {
  backupKeyId,
  MasterKey,
  newProjectKey,
  readMasterKeyFile,
  readOrCreateMasterKeyFile,
  unwrapKey,
  wrapKey,
} from '../../src/backup/backup-keys.js';
import { assertCode } from './codec-helpers.js';
import { makeDataDir } from '../support/temp-dir.js';

// Backup keys: a master key only Coffer's user can read, and per-project data keys stored
// wrapped under it, each bound to its project.

let dir: { path: string; remove: () => Promise<void> };
before(async () => {
  dir = await makeDataDir('coffer-backup-keys');
});
after(async () => {
  await dir.remove();
});

const rawKey = randomBytes(32);

async function keyFile(name: string, content: string | Buffer, mode: number): Promise<string> {
  const path = join(dir.path, name);
  await writeFile(path, content);
  await chmod(path, mode);
  return path;
}

function sameKey(a: MasterKey, b: MasterKey): boolean {
  // the bytes stay inside the module: what one wraps, the other must unwrap
  try {
    unwrapKey(b, wrapKey(a, newProjectKey(), 'p'), 'p');
    return true;
  } catch {
    return false;
  }
}

test('a mode-0600 key file holds the key as hex, base64 (with or without newline) or 32 raw bytes', async () => {
  const expected = await readMasterKeyFile(await keyFile('raw.key', rawKey, 0o600));
  for (const [name, content] of [
    ['hex.key', `${rawKey.toString('hex')}\n`],
    ['HEX.key', rawKey.toString('hex').toUpperCase()],
    ['base64.key', `${rawKey.toString('base64')}\n`],
    ['base64url.key', rawKey.toString('base64url')],
  ] as const) {
    const key = await readMasterKeyFile(await keyFile(name, content, 0o600));
    assert.equal(key.id, expected.id, name);
    assert.ok(sameKey(key, expected), name);
  }
  assert.equal(expected.id, backupKeyId(rawKey));
});

test('a key file the group or others can read is refused, saying the mode and the chmod', async () => {
  for (const mode of [0o640, 0o604, 0o644, 0o660, 0o606]) {
    const path = await keyFile(`open-${mode.toString(8)}.key`, rawKey.toString('hex'), mode);
    await assert.rejects(readMasterKeyFile(path), (err) => {
      assertCode(err, 'BadRequest', new RegExp(`mode 0${mode.toString(8)}.*decrypt every project's backups.*chmod 600 ${path}`));
      return true;
    });
  }
  // owner-only modes other than 0600 are fine
  await readMasterKeyFile(await keyFile('owner-only.key', rawKey.toString('hex'), 0o400));
});

test('a missing, short, long or non-key file is refused with how to make one, never showing its content', async () => {
  const howTo = /head -c 32 \/dev\/urandom \| base64 > .*chmod 600/;
  await assert.rejects(readMasterKeyFile(join(dir.path, 'absent.key')), (err: Error) => /ENOENT/.test(err.message) && howTo.test(err.message));
  await assert.rejects(readMasterKeyFile(dir.path), /not a regular file/);
  for (const [name, content] of [
    ['short.key', randomBytes(16).toString('hex')],
    ['long.key', randomBytes(48).toString('base64')],
    ['raw31.key', randomBytes(31)],
    ['phrase.key', 'correct horse battery staple, my secret passphrase'],
  ] as const) {
    const path = await keyFile(name, content, 0o600);
    await assert.rejects(readMasterKeyFile(path), (err) => {
      assertCode(err, 'BadRequest', /does not hold a 32-byte key/);
      assert.match((err as Error).message, howTo);
      if (typeof content === 'string') assert.ok(!(err as Error).message.includes(content.slice(0, 12)));
      return true;
    });
  }
});

test('coffer serve makes a 0600 key file when there is none, then reads the same key back', async () => {
  const data = join(dir.path, 'serve-data');
  await mkdir(data);
  const path = join(data, 'backup-master.key');
  const made = await readOrCreateMasterKeyFile(path);
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  assert.match(await readFile(path, 'utf8'), /^[0-9a-f]{64}\n$/);
  const again = await readOrCreateMasterKeyFile(path);
  assert.equal(again.id, made.id);
  assert.ok(sameKey(made, again));
  assert.deepEqual(await readdir(data), ['backup-master.key'], 'no temporary file is left');
});

test('starts racing to make the key all end up with the one on disk', async () => {
  const data = join(dir.path, 'race-data');
  await mkdir(data);
  const path = join(data, 'backup-master.key');
  const keys = await Promise.all(Array.from({ length: 8 }, () => readOrCreateMasterKeyFile(path)));
  const onDisk = await readMasterKeyFile(path);
  for (const key of keys) assert.equal(key.id, onDisk.id);
  assert.deepEqual(await readdir(data), ['backup-master.key']);
});

test('an existing key file that is too open is refused, not replaced', async () => {
  const path = await keyFile('serve-open.key', rawKey.toString('hex'), 0o644);
  await assert.rejects(readOrCreateMasterKeyFile(path), /chmod 600/);
  assert.equal(await readFile(path, 'utf8'), rawKey.toString('hex'));
});

test('a master key never shows its bytes when printed, inspected or serialised', () => {
  const key = MasterKey.fromFileContent(rawKey);
  const hex = rawKey.toString('hex');
  const b64 = rawKey.toString('base64');
  for (const shown of [String(key), `${key}`, JSON.stringify({ key }), inspect(key), inspect({ nested: { key } }, { showHidden: true })]) {
    assert.ok(!shown.includes(hex) && !shown.includes(b64) && !shown.includes(hex.slice(0, 16)), shown);
    assert.match(shown, new RegExp(key.id));
  }
});

test('a project key wraps into a short versioned string and unwraps to the same bytes', () => {
  const master = MasterKey.generate();
  const key = newProjectKey();
  assert.equal(key.length, 32);
  assert.notDeepEqual(newProjectKey(), key);
  const wrapped = wrapKey(master, key, 'project-a');
  assert.match(wrapped, new RegExp(`^v1\\.${master.id}\\.[A-Za-z0-9_-]+$`));
  assert.ok(wrapped.length < 128, `${wrapped.length} characters`);
  assert.ok(!wrapped.includes(key.toString('base64url')) && !wrapped.includes(key.toString('hex')));
  assert.deepEqual(unwrapKey(master, wrapped, 'project-a'), key);
  assert.notEqual(wrapKey(master, key, 'project-a'), wrapped, 'a fresh nonce each time');
});

test('another master key cannot unwrap, and the message says the master key changed', () => {
  const master = MasterKey.generate();
  const other = MasterKey.generate();
  const wrapped = wrapKey(master, newProjectKey(), 'project-a');
  assert.throws(
    () => unwrapKey(other, wrapped, 'project-a'),
    (err) => (assertCode(err, 'BackupDecryptionFailed', new RegExp(`wrapped under master key ${master.id}.*is ${other.id}.*replaced`)), true),
  );
  // the same, when the id in the string was edited to match: the tag still fails
  const forged = wrapped.replace(master.id, other.id);
  assert.throws(() => unwrapKey(other, forged, 'project-a'), (err) => (assertCode(err, 'BackupDecryptionFailed', /cannot be unwrapped/), true));
});

test("a key wrapped for one project does not unwrap as another's", () => {
  const master = MasterKey.generate();
  const wrapped = wrapKey(master, newProjectKey(), 'project-a');
  assert.throws(
    () => unwrapKey(master, wrapped, 'project-b'),
    (err) => (assertCode(err, 'BackupDecryptionFailed', /project project-b cannot be unwrapped .*altered, or it belongs to another project/), true),
  );
});

test('every altered character of a wrapped key is refused', () => {
  const master = MasterKey.generate();
  const wrapped = wrapKey(master, newProjectKey(), 'project-a');
  for (let at = 0; at < wrapped.length; at++) {
    const altered = wrapped.slice(0, at) + (wrapped[at] === 'A' ? 'B' : 'A') + wrapped.slice(at + 1);
    assert.throws(() => unwrapKey(master, altered, 'project-a'), (err) => (assertCode(err, 'BackupDecryptionFailed'), true), `character ${at}`);
  }
  for (const broken of ['', 'v1', 'v2.x.y', `${wrapped}.extra`, wrapped.slice(0, -2), `${wrapped}AA`]) {
    assert.throws(() => unwrapKey(master, broken, 'project-a'), (err) => (assertCode(err, 'BackupDecryptionFailed'), true), broken);
  }
});
