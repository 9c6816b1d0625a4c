// bench/redis-idle: issue 14, the floor under "all idle CPU under 5 % of a core per 1,000": what
// idle redis-server processes started by hand cost by themselves, at each `hz` asked for (1 is
// the least Redis accepts; 10 is its standard), side by side in the same window and load.
//
//   node --import tsx bench/redis-idle.ts [--count 200] [--hz 1,10] [--seconds 60] [--settle 15] [--subnet 127.84]
//
// Each server runs with the settings Coffer gives an m1.tiny that bear on an idle server (as
// bench/density's raw servers: AOF with fsync every second, maxmemory, noeviction, a password,
// the save schedule), on an address of its own, and nothing connects to it in the window.
// CPU over the window, two ways, both summed over every thread of every server:
//   - schedstat: /proc/<pid>/task/<tid>/schedstat, ns actually on a CPU;
//   - ticks: utime + stime of /proc/<pid>/stat, the clock-tick sampling that `top`, `ps` and
//     bench/density read. A server woken by a timer mostly runs just after a tick and ends before
//     the next, so ticks undercount short periodic wake-ups; schedstat does not.
// Prints % of a core per 1,000 servers for each hz. Asserts nothing; everything started is
// stopped and removed at the end.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { maxmemoryMb } from '../src/guest/engines/redis/config.js';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '200' },
    hz: { type: 'string', default: '1,10' },
    seconds: { type: 'string', default: '60' },
    settle: { type: 'string', default: '15' },
    subnet: { type: 'string', default: '127.84' },
  },
});
const count = Number(values.count);
const seconds = Number(values.seconds);
const settle = Number(values.settle);
const hzList = values.hz!.split(',').map(Number);
for (const [name, n] of Object.entries({ count, seconds, settle })) {
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} takes a whole number`);
}
if (count < 1 || count * hzList.length > 250 * 250) throw new Error('--count: 1 to 62,500 servers in all');
if (hzList.some((hz) => !Number.isInteger(hz) || hz < 1 || hz > 500)) throw new Error('--hz takes whole numbers from 1 to 500');

const password = 'Redis-idle-pass-1234';
const ramMb = 256; // m1.tiny
const ticksPerSecond = 100;
const loadText = () => loadavg().map((l) => l.toFixed(2)).join(' ');
const log = (text: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${text}\n`);

interface Cpu {
  ns: number;
  ticks: number;
}

async function cpuOf(pid: number): Promise<Cpu> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // the fields after the command's closing parenthesis: utime and stime are the 12th and 13th
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  let ns = 0;
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    ns += Number((await readFile(`/proc/${pid}/task/${tid}/schedstat`, 'utf8')).split(' ')[0]);
  }
  return { ns, ticks };
}

async function cpuOfAll(pids: number[]): Promise<Cpu> {
  const all = await Promise.all(pids.map(cpuOf));
  return all.reduce((sum, one) => ({ ns: sum.ns + one.ns, ticks: sum.ticks + one.ticks }), { ns: 0, ticks: 0 });
}

async function answers(host: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const client = new Redis({ host, port: 6379, password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => {}); // a refused connect before the server listens: the attempt's own rejection says it
    try {
      await client.connect();
      await client.ping();
      return;
    } catch (err) {
      if (attempt > 200) throw err;
      await sleep(50);
    } finally {
      client.disconnect();
    }
  }
}

const dir = await mkdtemp(join(tmpdir(), 'coffer-redis-idle-'));
const servers: { hz: number; child: ChildProcess }[] = [];
try {
  let n = 0;
  for (const hz of hzList) {
    for (let i = 0; i < count; i++, n++) {
      const host = `${values.subnet}.${1 + Math.floor(n / 250)}.${1 + (n % 250)}`;
      const child = spawn(
        'redis-server',
        [
          '--bind', host, '--port', '6379', '--dir', dir, '--dbfilename', `dump-${n}.rdb`, '--appenddirname', `aof-${n}`,
          '--appendonly', 'yes', '--appendfsync', 'everysec', '--maxmemory', `${maxmemoryMb(ramMb)}mb`,
          '--maxmemory-policy', 'noeviction', '--requirepass', password, '--save', '3600 1 300 100 60 10000',
          '--hz', String(hz), '--logfile', '',
        ],
        { stdio: 'ignore' },
      );
      servers.push({ hz, child });
      await answers(host);
    }
    log(`${count} servers at hz ${hz} answer`);
  }
  log(`settling ${settle} s; load ${loadText()}`);
  await sleep(settle * 1000);
  const pidsOf = (hz: number) => servers.filter((s) => s.hz === hz).map((s) => s.child.pid!);
  const before = await Promise.all(hzList.map((hz) => cpuOfAll(pidsOf(hz))));
  const loadBefore = loadText();
  const started = performance.now();
  await sleep(seconds * 1000);
  const after = await Promise.all(hzList.map((hz) => cpuOfAll(pidsOf(hz))));
  const window = (performance.now() - started) / 1000;
  const perThousand = (cpuSeconds: number) => ((cpuSeconds / window) * 100 * 1000) / count;
  console.log(`\n${count} idle redis-server per hz, ${window.toFixed(1)} s window; load ${loadBefore} → ${loadText()}`);
  console.log('| hz | % of a core per 1,000 (schedstat) | % of a core per 1,000 (ticks) | µs of CPU per server per second |');
  console.log('| --- | --- | --- | --- |');
  hzList.forEach((hz, k) => {
    const ns = after[k]!.ns - before[k]!.ns;
    const ticks = after[k]!.ticks - before[k]!.ticks;
    console.log(
      `| ${hz} | ${perThousand(ns / 1e9).toFixed(1)} | ${perThousand(ticks / ticksPerSecond).toFixed(1)} | ${(ns / 1e3 / window / count).toFixed(0)} |`,
    );
  });
} finally {
  await Promise.all(
    servers
      .filter((s) => s.child.exitCode === null && s.child.signalCode === null)
      .map((s) => {
        const exited = once(s.child, 'exit');
        s.child.kill('SIGTERM');
        return exited;
      }),
  );
  await rm(dir, { recursive: true, force: true });
}
