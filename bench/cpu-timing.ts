// What a benchmarked run cost, in wall time and CPU time: on a shared machine wall time says how
// much CPU the run got, CPU time says how much it needed. Shared by the backup benchmarks.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector';
import { join } from 'node:path';

export interface Sample {
  ms: number;
  /** CPU time of this process during the run (user + system), ms */
  nodeCpuMs: number;
  /** CPU time of the children it reaped during the run (the tools, zstd), ms */
  childCpuMs: number;
}

/** CPU time of the children this process reaped, ms: /proc/self/stat's cutime and cstime, in clock ticks (100 a second on Linux) */
async function childrenCpuMs(): Promise<number> {
  const stat = await readFile('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

export interface CpuTimer {
  /** times `run`; CPU-profiled into `<profileDir>/<profile>.cpuprofile` when named and a directory was given */
  timed(run: () => Promise<unknown>, profile?: string): Promise<Sample>;
  /** ends the profiler's session */
  close(): void;
}

export function cpuTimer(profileDir?: string): CpuTimer {
  const profiler = profileDir === undefined ? undefined : new Session();
  profiler?.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) => profiler!.post(method, params, (err, result) => (err === null ? resolve(result) : reject(err))));
  const timed = async (run: () => Promise<unknown>, profile?: string): Promise<Sample> => {
    const profiling = profile !== undefined && profiler !== undefined;
    if (profiling) {
      await post('Profiler.enable');
      await post('Profiler.start');
    }
    const children = await childrenCpuMs();
    const cpu = process.cpuUsage();
    const began = performance.now();
    await run();
    const ms = performance.now() - began;
    const used = process.cpuUsage(cpu);
    const sample = { ms, nodeCpuMs: (used.user + used.system) / 1000, childCpuMs: (await childrenCpuMs()) - children };
    if (profiling) {
      const { profile: taken } = (await post('Profiler.stop')) as { profile: object };
      await mkdir(profileDir!, { recursive: true });
      await writeFile(join(profileDir!, `${profile}.cpuprofile`), JSON.stringify(taken));
    }
    return sample;
  };
  return { timed, close: () => profiler?.disconnect() };
}
