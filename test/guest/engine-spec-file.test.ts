import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { readEngineSpec, writeEngineSpec, type EngineSpec } from '../../src/guest/engines/engine-spec-file.js';
import { tempDataDir } from '../support/temp-dir.js';

// The spec as read is kept between reads; every way the file changes is read again.

let dir: string;
before(async () => {
  dir = await tempDataDir('coffer-spec-');
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const spec: EngineSpec = { memoryMb: 512, access: null, overrides: { hz: 20 } };

it('reads every change to the file, through the writer or behind its back, and hands out copies', async () => {
  assert.equal(await readEngineSpec(dir), undefined);
  await writeEngineSpec(dir, spec);
  const first = await readEngineSpec(dir);
  assert.deepEqual(first, spec);
  first!.overrides['hz'] = 99;
  assert.deepEqual(await readEngineSpec(dir), spec, "a caller's change to what it read is not the file's");
  // written at once after a read, with the same size: another inode, another change time
  await writeEngineSpec(dir, { ...spec, overrides: { hz: 30 } });
  assert.deepEqual((await readEngineSpec(dir))?.overrides, { hz: 30 });
  // rewritten in place (same inode), by hand
  await writeFile(join(dir, 'engine-spec.json'), JSON.stringify({ ...spec, memoryMb: 1024 }));
  assert.equal((await readEngineSpec(dir))?.memoryMb, 1024);
  await rm(join(dir, 'engine-spec.json'));
  assert.equal(await readEngineSpec(dir), undefined, 'a removed spec is gone');
});
