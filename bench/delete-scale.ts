// bench/delete-scale: what one instance delete costs the agent as the number of instances on the
// host grows (issue 14: deletes ran at 5/s with 120 instances and at 0.7/s with 1,000).
//
//   node --import tsx bench/delete-scale.ts [--others 20,300] [--deletes 10] [--processes 3] [--files 300] [--orphans] [--out bench/results/delete-scale.md]
//
// As root. For each count in --others it places that many instances plus --deletes more with the
// local compute driver on a fresh data directory under TMPDIR (/tmp by default: where the tests'
// and the benches' data directories are), each with an OS user of its own walled in with one
// allowed destination, --processes `sleep` processes running as that user in its directory (an
// idle engine's postmaster and workers), --files files of that user in its data directory (a
// small cluster's worth), and one file of the user in /tmp and one in /dev/shm (what a tenant or
// a killed engine leaves). No engine runs: the driver's `remove` is what the agent's delete runs
// once the guest has stopped the engine, and it is timed alone, one delete at a time, on the last
// --deletes instances. Beside it, the host-wide work a delete did before issue 14's fix, timed
// once at each size: a JS walk of /proc reading every status file, `nft -j list table inet
// coffer`, and `find /tmp -xdev -user <uid>`.
import { spawn, execFile } from 'node:child_process';
import { chown, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { LoopbackAllocator } from '../src/agent/address-allocator.js';
import type { PlacedInstance } from '../src/agent/compute-driver.js';
import { LocalComputeDriver } from '../src/agent/local-compute-driver.js';
import { chownTree } from '../src/agent/owner-tree.js';
import { silentLogger } from '../src/common/logger.js';
import { removeInstanceUsersUnder } from '../test/support/instance-users.js';
import { tempDataDir } from '../test/support/temp-dir.js';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    others: { type: 'string', default: '20,300' },
    deletes: { type: 'string', default: '10' },
    processes: { type: 'string', default: '3' },
    files: { type: 'string', default: '300' },
    // the processes are orphans of PID 1 (started through a shell that exits), as a tenant's
    // programs are and an adopted engine's: PID 1 has to reap them once killed
    orphans: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
if (process.getuid?.() !== 0) throw new Error('bench/delete-scale runs as root: only root gives each instance an OS user of its own');
const sizes = values.others!.split(',').map(Number);
const deletes = Number(values.deletes);
const processCount = Number(values.processes);
const fileCount = Number(values.files);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const ms = (began: number) => Math.round((performance.now() - began) * 10) / 10;
const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');

/** The /proc walk each delete made before (instance-user.ts's processesOf). */
async function walkProc(uid: number): Promise<number> {
  let found = 0;
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const status = await readFile(`/proc/${name}/status`, 'utf8').catch(() => '');
    if (/^State:\s+Z/m.test(status)) continue;
    const uids = /^Uid:\s+(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/).map(Number) ?? [];
    if (uids.includes(uid)) found += 1;
  }
  return found;
}

async function furnish(driver: LocalComputeDriver, instance: PlacedInstance, marks: string[]): Promise<void> {
  const runner = await driver.runnerFor(instance);
  const identity = runner.identity!;
  await driver.wall(instance, [{ address: instance.record.address, port: instance.record.port }]);
  const data = join(instance.dir, 'data');
  await mkdir(data);
  for (let d = 0; d * 50 < fileCount; d += 1) {
    const sub = join(data, `d${d}`);
    await mkdir(sub);
    await Promise.all(Array.from({ length: Math.min(50, fileCount - d * 50) }, (_, f) => writeFile(join(sub, `f${f}`), 'x')));
  }
  await chownTree(data, 0, identity);
  for (const path of [`/tmp/.coffer-bench-${identity.name}`, `/dev/shm/coffer-bench-${identity.name}`]) {
    await writeFile(path, 'x');
    await chown(path, identity.uid, identity.gid);
    marks.push(path);
  }
  for (let p = 0; p < processCount; p += 1) {
    const [file, args] = values.orphans === true ? ['sh', ['-c', 'sleep 3600 & exit 0']] : ['sleep', ['3600']];
    const child = spawn(file, args, { uid: identity.uid, gid: identity.gid, cwd: data, detached: true, stdio: 'ignore' });
    child.unref();
  }
}

const rows: string[] = [];
const phaseRows: string[] = [];
for (const others of sizes) {
  const dataDir = await tempDataDir('coffer-dscale-');
  const driver = new LocalComputeDriver({ dataDir, addresses: new LoopbackAllocator(`127.${200 + Math.floor(Math.random() * 50)}.0.0/16`), logger: silentLogger() });
  await driver.open(() => ({ standardPort: 5432, span: 1 }));
  const placed: PlacedInstance[] = [];
  const marks: string[] = [];
  try {
    const began = performance.now();
    for (let i = 0; i < others + deletes; i += 1) {
      const instance = await driver.place({
        instanceId: `dscale-${i}-${Date.now().toString(36)}`,
        engine: { manager: 'postgresql', version: '15' },
        flavor: { id: 'small', ramMb: 512, vcpus: 1 },
        volumeSizeGb: 1,
        ports: { standardPort: 5432, span: 1 },
      });
      await furnish(driver, instance, marks);
      placed.push(instance);
    }
    const procs = (await readdir('/proc')).filter((n) => /^\d+$/.test(n)).length;
    const files = await run('find', ['/tmp', '-xdev', '-printf', '.'], { maxBuffer: 64 * 1024 * 1024 }).then(
      ({ stdout }) => stdout.length,
      (err: { stdout?: string }) => err.stdout?.length ?? 0,
    );
    console.log(`${others} others + ${deletes}: placed in ${(ms(began) / 1000).toFixed(1)} s; ${procs} processes on the host, ${files} entries under /tmp; load ${load()}`);

    // the host-wide work of the old delete, at this size
    const probeUid = (await driver.runnerFor(placed.at(-1)!)).identity!.uid;
    let t = performance.now();
    await walkProc(probeUid);
    const procWalk = ms(t);
    t = performance.now();
    const listing = await run('nft', ['-j', 'list', 'table', 'inet', 'coffer'], { maxBuffer: 256 * 1024 * 1024 });
    const nftList = ms(t);
    t = performance.now();
    await run('find', ['/tmp', '-xdev', '-user', String(probeUid)], { maxBuffer: 64 * 1024 * 1024 }).catch(() => undefined);
    const findTmp = ms(t);
    console.log(`  /proc walk ${procWalk} ms, nft list ${nftList} ms (${listing.stdout.length} bytes), find /tmp ${findTmp} ms`);

    // the host-wide parts of the new delete, each timed alone as a user with nothing running
    const spare = `coffer-dsp${Date.now().toString(36).slice(-6)}`;
    await run('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', spare]);
    const asSpare = { uid: Number((await run('id', ['-u', spare])).stdout), gid: Number((await run('id', ['-g', spare])).stdout), cwd: '/' };
    const phases: Record<string, number> = {};
    const time = async (name: string, work: () => Promise<unknown>) => {
      const t0 = performance.now();
      await work().catch(() => undefined);
      phases[name] = ms(t0);
    };
    await time('kill as user', () => run('sh', ['-c', 'kill -9 -1'], asSpare));
    await time('probe', () => run('prlimit', ['--nproc=2:2', '--', 'sh', '-c', ': & wait'], asSpare));
    const temp = ['/tmp', '/var/tmp', '/dev/shm', '/run/lock', '/dev/mqueue'];
    await time('find as user', () => run('find', [...temp, '-xdev', '-user', String(probeUid), '-print'], { ...asSpare, uid: probeUid, maxBuffer: 64 * 1024 * 1024 }));
    await time('userdel', () => run('userdel', [spare]));
    console.log(`  new delete's parts: ${JSON.stringify(phases)}`);
    phaseRows.push(`| ${others} | ${procs} | ${Object.values(phases).join(' | ')} |`);

    const loadBefore = load();
    const times: number[] = [];
    for (const instance of placed.slice(others)) {
      const t0 = performance.now();
      await driver.remove(instance.record.id);
      times.push(ms(t0));
    }
    const loadAfter = load();
    console.log(`  remove: median ${median(times)} ms, min ${Math.min(...times)}, max ${Math.max(...times)} (${times.join(', ')}); load ${loadBefore} → ${loadAfter}`);
    rows.push(
      `| ${others} | ${procs} | ${files} | ${median(times)} | ${Math.min(...times)}-${Math.max(...times)} | ${procWalk} | ${nftList} | ${findTmp} | ${loadBefore} → ${loadAfter} |`,
    );
    const t1 = performance.now();
    for (const instance of placed.slice(0, others)) await driver.remove(instance.record.id);
    console.log(`  removed the ${others} others in ${(ms(t1) / 1000).toFixed(1)} s`);
  } finally {
    await driver.close();
    await removeInstanceUsersUnder(dataDir);
    await rm(dataDir, { recursive: true, force: true });
    await Promise.all(marks.map((path) => rm(path, { force: true })));
  }
}

const report = [
  `${new Date().toISOString()}, ${cpus().length} cores, commit ${await run('git', ['rev-parse', '--short', 'HEAD']).then(({ stdout }) => stdout.trim(), () => 'unknown')}; ${deletes} deletes each, ${processCount} processes${values.orphans === true ? ' (orphans of PID 1)' : ''} and ${fileCount} files per instance`,
  '',
  '| other instances | processes on the host | entries under /tmp | remove, median ms | min-max ms | JS /proc walk ms | nft list table ms | find /tmp -user ms | load average (1, 5, 15 min) before → after the deletes |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows,
  '',
  "The new delete's parts that could grow with the host, each timed once at each size (kill -9 -1 and the RLIMIT_NPROC probe as a user with nothing running; find over the five temp directories as an instance user, without -delete; userdel of a user with nothing running):",
  '',
  '| other instances | processes on the host | kill as user ms | probe ms | find as user ms | userdel ms |',
  '| --- | --- | --- | --- | --- | --- |',
  ...phaseRows,
].join('\n');
console.log(`\n${report}`);
if (values.out !== undefined) await writeFile(values.out, `${report}\n`, { flag: 'a' });
