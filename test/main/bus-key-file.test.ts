import assert from 'node:assert/strict';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { inspect } from 'node:util';
import { BusKey } from '../../src/bus/index.js';
import { CofferError } from '../../src/common/errors.js';
import { readBusKeyFile } from '../../src/main/bus-key-file.js';
import { makeDataDir } from '../support/temp-dir.js';

// The key file of a distributed role: only its owner may read it, and it must hold a real key.

let dir: { path: string; remove: () => Promise<void> };
before(async () => {
  dir = await makeDataDir('coffer-bus-key');
});
after(async () => {
  await dir.remove();
});

const goodKey = Buffer.alloc(32, 7).toString('base64');

async function keyFile(name: string, text: string, mode: number): Promise<string> {
  const path = join(dir.path, name);
  await writeFile(path, text);
  await chmod(path, mode);
  return path;
}

test('a mode-0600 file with 32 base64 bytes gives a key; the same text gives the same key id', async () => {
  const path = await keyFile('good.key', `${goodKey}\n`, 0o600);
  const key = await readBusKeyFile(path);
  assert.equal(key.id, BusKey.fromText(goodKey).id);
  assert.notEqual(key.id, BusKey.generate().id);
});

test('a key file others can read is refused, saying the mode and the chmod', async () => {
  for (const mode of [0o640, 0o604, 0o644]) {
    const path = await keyFile(`open-${mode.toString(8)}.key`, goodKey, mode);
    await assert.rejects(readBusKeyFile(path), (err: unknown) => {
      assert.ok(err instanceof CofferError);
      assert.match(err.message, new RegExp(`mode 0${mode.toString(8)}`));
      assert.match(err.message, new RegExp(`chmod 600 ${path}`));
      return true;
    });
  }
});

test('a missing, short or non-base64 key file is refused with how to make one', async () => {
  const howTo = /head -c 32 \/dev\/urandom \| base64 > .*chmod 600/;
  await assert.rejects(readBusKeyFile(join(dir.path, 'absent.key')), (err: Error) => /ENOENT/.test(err.message) && howTo.test(err.message));
  const short = await keyFile('short.key', Buffer.alloc(16, 1).toString('base64'), 0o600);
  await assert.rejects(readBusKeyFile(short), (err: Error) => /16 bytes/.test(err.message) && howTo.test(err.message));
  const text = await keyFile('text.key', 'my secret passphrase!', 0o600);
  await assert.rejects(readBusKeyFile(text), (err: Error) => /not base64/.test(err.message) && howTo.test(err.message));
});

test('a key never shows its bytes when printed, inspected or serialised', () => {
  const key = BusKey.fromText(goodKey);
  for (const shown of [String(key), JSON.stringify({ key }), inspect(key), inspect({ nested: { key } })]) {
    assert.doesNotMatch(shown, new RegExp(goodKey.slice(0, 12).replace(/[+/]/g, '\\$&')));
    assert.match(shown, new RegExp(key.id));
  }
});
