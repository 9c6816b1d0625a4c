// test-lane: parallel (an agent as nobody on a random pool: no OS users, no nftables)
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chown } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, it } from 'node:test';
import type { EngineVersionReport } from '../../src/bus/index.js';
import { randomPool } from '../guest/engine-fixture.js';
import { makeDataDir } from '../support/temp-dir.js';

// An agent that is not root runs every engine as its own user, so a tenant's superuser
// could reach the other instances and Coffer's files: it must not offer a root that can run
// programs or open files (PostgreSQL's, MariaDB's). CI runs
// as root, so the agent runs as `nobody` in a child process.

const run = promisify(execFile);
const fixture = fileURLToPath(new URL('./unprivileged-agent.fixture.ts', import.meta.url));
const ordinary = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};

let dataDir: { path: string; remove: () => Promise<void> } | undefined;
after(() => dataDir?.remove());

it('an agent not running as root reports root unavailable where root reaches the OS user, and its guests refuse it', async () => {
  dataDir = await makeDataDir('coffer-plain');
  if (ordinary.uid !== undefined) await chown(dataDir.path, ordinary.uid, ordinary.gid!);
  const { stdout } = await run(process.execPath, ['--import', 'tsx', fixture, dataDir.path, randomPool()], {
    ...ordinary,
    timeout: 120_000,
  });
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
    uid: number;
    engines: EngineVersionReport[];
    enableRoot: { code: string; message: string };
  };
  assert.notEqual(result.uid, 0);
  assert.ok(result.engines.length > 0);
  for (const report of result.engines) {
    // Redis's root (the default user, without CONFIG, MODULE or DEBUG) reaches no file or program
    const contained = report.manager === 'redis';
    assert.equal(report.capabilities.root, contained, `${report.manager} ${report.name}`);
  }
  assert.ok(result.engines.some((report) => report.manager === 'postgresql'));
  assert.equal(result.enableRoot.code, 'OperationNotSupported');
  assert.match(result.enableRoot.message, /Run the Coffer agent as root so that each instance gets its own OS user/);
});
