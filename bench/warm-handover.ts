// bench/warm-handover: what handing a warm cluster to an instance's own OS user adds to a create.
// As root, the warm pool's clusters are made by `coffer-db`; the instance that takes one gets
// it chowned (coreutils, never following links) to its own user before its engine starts.
//
//   node --import tsx bench/warm-handover.ts [--runs 5] [--engine postgresql|mariadb]
//
// Root only. Makes each cluster with the pool's own initdb (mariadb-install-db), flushes it to disk (as a pool entry
// made minutes earlier would be), then times the hand-over alone.
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureEngineUser } from '../src/agent/engine-user.js';
import { createInstanceUser, removeInstanceUser } from '../src/agent/instance-user.js';
import { LocalProcessRunner } from '../src/agent/index.js';
import { chownTree } from '../src/agent/owner-tree.js';
import { silentLogger } from '../src/common/logger.js';
import { engineRegistry } from '../src/guest/index.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, engine: { type: 'string', default: 'postgresql' } } });
const runs = Number(values.runs);
const engineName = values.engine!;
if (engineName !== 'postgresql' && engineName !== 'mariadb') throw new Error('--engine is postgresql or mariadb');
const engine = engineRegistry[engineName];
if (process.getuid?.() !== 0) throw new Error('bench/warm-handover runs as root: only root gives instances users of their own');

const logger = silentLogger();
const poolUser = await ensureEngineUser('coffer-db', logger);
const runner = new LocalProcessRunner(poolUser);
const [binary] = (await engine.discover([], runner)).binaries;
if (binary === undefined) throw new Error(`no ${engineName} binaries`);
const root = await mkdtemp(join(tmpdir(), 'coffer-handover-'));
await chmod(root, 0o711);
const instanceUser = await createInstanceUser(`bench-handover-${process.pid}`, logger);
const times: number[] = [];
let entries = 0;
try {
  for (let run = 0; run < runs; run += 1) {
    const dir = join(root, String(run));
    await mkdir(dir, { mode: 0o711 });
    await engine.warm!.make(dir, binary, runner, new AbortController().signal);
    execFileSync('sync');
    const began = performance.now();
    await chownTree(dir, poolUser.uid, instanceUser);
    times.push(performance.now() - began);
    entries = Number(execFileSync('find', [dir, '-user', String(instanceUser.uid), '-printf', '.']).length);
  }
} finally {
  await removeInstanceUser(instanceUser.name, logger);
  await rm(root, { recursive: true, force: true });
}
const sorted = [...times].sort((a, b) => a - b);
const ms = (value: number) => `${value.toFixed(1)} ms`;
console.log(
  `${engineName} ${binary.version}: ${entries} entries handed over in ${ms(sorted[Math.floor(sorted.length / 2)]!)} (median of ${runs}; ` +
    `min ${ms(sorted[0]!)}, max ${ms(sorted.at(-1)!)}), load ${execFileSync('cat', ['/proc/loadavg']).toString().split(' ')[0]}`,
);
