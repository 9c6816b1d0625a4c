// bench/idle-health: what the guest's health checks cost idle instances. N real PostgreSQL
// instances (the engine driver, as the guest drives it) are health-checked on a fixed cadence for
// a fixed time, two ways taken in turn each round: over the session the driver keeps between
// checks, and with a new session per check (the driver's session released before each check:
// how every check ran before the session was kept). CPU is counted for Node (this process) and
// for each instance's whole process tree (the postmaster's own time, the time of the backends it
// reaped, and its live children's), from /proc. Prints CPU per check and what that makes per
// 1,000 instances checked every 10 s; asserts nothing.
//
//   node --import tsx bench/idle-health.ts [--instances 10] [--seconds 20] [--interval-ms 500] [--rounds 2]
import { chmod, mkdir, readdir, readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { silentLogger } from '../src/common/logger.js';
import { engineRegistry, type EngineDriver } from '../src/guest/index.js';
import { cleanUp, localRunner, randomNet } from '../test/guest/engine-fixture.js';
import { tempDataDir } from '../test/support/temp-dir.js';

const { values } = parseArgs({
  options: {
    instances: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '20' },
    'interval-ms': { type: 'string', default: '500' },
    rounds: { type: 'string', default: '2' },
  },
});
const [count, seconds, intervalMs, rounds] = [values.instances, values.seconds, values['interval-ms'], values.rounds].map(Number) as [number, number, number, number];
const ticksPerSecond = 100;

/** utime + stime (+ cutime + cstime: reaped children) of `pid`, in seconds */
async function cpuOf(pid: number, withReaped: boolean): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  if (stat === '') return 0;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is state (field 3): utime is field 14, so index 11
  const [utime, stime, cutime, cstime] = [11, 12, 13, 14].map((i) => Number(fields[i]));
  return (utime! + stime! + (withReaped ? cutime! + cstime! : 0)) / ticksPerSecond;
}

async function childrenOf(parents: ReadonlySet<number>): Promise<number[]> {
  const found: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (parents.has(ppid)) found.push(Number(name));
  }
  return found;
}

async function enginesCpu(drivers: EngineDriver[]): Promise<number> {
  const postmasters = new Set((await Promise.all(drivers.map((d) => d.processId()))).filter((pid): pid is number => pid !== undefined));
  let total = 0;
  for (const pid of postmasters) total += await cpuOf(pid, true);
  for (const pid of await childrenOf(postmasters)) total += await cpuOf(pid, false);
  return total;
}

const nodeCpu = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
};

async function measure(drivers: EngineDriver[], fresh: boolean): Promise<{ checks: number; nodeS: number; enginesS: number }> {
  if (!fresh) await Promise.all(drivers.map((d) => d.health()));
  // the /proc scans are the bench's own work: kept out of Node's figure
  const engines0 = await enginesCpu(drivers);
  const node0 = nodeCpu();
  const end = Date.now() + seconds * 1000;
  let checks = 0;
  while (Date.now() < end) {
    const began = Date.now();
    await Promise.all(
      drivers.map(async (driver) => {
        if (fresh) driver.release();
        if ((await driver.health()) !== 'healthy') throw new Error('an instance is not healthy');
      }),
    );
    checks += drivers.length;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, intervalMs - (Date.now() - began))));
  }
  const nodeS = nodeCpu() - node0;
  const enginesS = (await enginesCpu(drivers)) - engines0;
  for (const driver of drivers) driver.release();
  return { checks, nodeS, enginesS };
}

const root = await tempDataDir('coffer-idle-');
const drivers: EngineDriver[] = [];
try {
  const factory = engineRegistry.postgresql;
  const runner = await localRunner();
  const binary = (await factory.discover([], runner)).binaries[0]!;
  const net = randomNet();
  for (let n = 0; n < count; n++) {
    const dir = join(root, `i${n}`);
    await mkdir(dir);
    await chmod(dir, 0o711);
    const driver = factory.create({
      placement: { instanceId: `idle-${n}`, dir, address: `${net}.${n + 2}`, port: factory.standardPort },
      binary,
      runner,
      logger: silentLogger(),
      defaultClientCidrs: ['127.0.0.0/8'],
    });
    await driver.prepare({ memoryMb: 128, databases: [], users: [], adminPassword: `Adm1n-idle-${n}`, access: null, overrides: {} });
    drivers.push(driver);
  }
  console.log(`PostgreSQL ${binary.version}, ${count} instances, checks every ${intervalMs} ms for ${seconds} s, load average before: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log('| round | way | checks | Node CPU per check | engines CPU per check | total per check | per 1,000 instances every 10 s | load average after |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (let round = 1; round <= rounds; round++) {
    for (const fresh of [true, false]) {
      const { checks, nodeS, enginesS } = await measure(drivers, fresh);
      const perCheckMs = ((nodeS + enginesS) * 1000) / checks;
      // 1,000 instances, one check each per 10 s: per-check ms x 100 checks a second = ms of CPU per second
      const coreShare = (perCheckMs * 100) / 1000;
      console.log(
        `| ${round} | ${fresh ? 'new session per check' : 'kept session'} | ${checks} | ${((nodeS * 1000) / checks).toFixed(2)} ms | ${((enginesS * 1000) / checks).toFixed(2)} ms | ${perCheckMs.toFixed(2)} ms | ${(coreShare * 100).toFixed(1)} % of a core | ${loadavg()[0]!.toFixed(2)} |`,
      );
    }
  }
} finally {
  for (const driver of drivers) await driver.stop().catch(() => undefined);
  await cleanUp(root);
}
