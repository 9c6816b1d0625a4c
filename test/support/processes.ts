import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

function readOr(read: () => string): string {
  try {
    return read();
  } catch {
    return ''; // the process ended, or its cwd is not ours to read
  }
}

/**
 * Pids of processes whose command line or working directory mentions `needle` (an instance id
 * or directory). Engines start from their data directory with relative paths, so that `ps` shows
 * no instance id: the working directory is where the id still shows, to root.
 */
export function processesMentioning(needle: string): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => pid !== process.pid)
    .filter((pid) => {
      const args = readOr(() => readFileSync(`/proc/${pid}/cmdline`, 'utf8')).replaceAll('\0', ' ');
      const cwd = readOr(() => readlinkSync(`/proc/${pid}/cwd`));
      return args.includes(needle) || cwd.includes(needle);
    });
}

interface ProcessEntry {
  pid: number;
  ppid: number;
  /** the kernel's short name (at most 15 characters), e.g. pg_basebackup, zstd, postgres */
  name: string;
}

/** Every process but zombies: a killed process whose parent died may linger as one where init does not reap. */
function liveProcesses(): ProcessEntry[] {
  const out: ProcessEntry[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const text = readOr(() => readFileSync(`/proc/${entry}/stat`, 'utf8'));
    if (text === '') continue;
    // "pid (comm) state ppid …": comm may hold spaces and parentheses
    const close = text.lastIndexOf(')');
    const [state, ppid] = text.slice(close + 2).split(' ');
    if (state === 'Z') continue;
    out.push({ pid: Number(entry), ppid: Number(ppid), name: text.slice(text.indexOf('(') + 1, close) });
  }
  return out;
}

/** The live processes descended from `pid` (children, their children, ...), not `pid` itself. */
export function liveDescendants(pid: number): { pid: number; name: string }[] {
  const all = liveProcesses();
  const found: ProcessEntry[] = [];
  const parents = new Set([pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const proc of all) {
      if (parents.has(proc.ppid) && !parents.has(proc.pid)) {
        parents.add(proc.pid);
        found.push(proc);
        grew = true;
      }
    }
  }
  return found.map(({ pid: p, name }) => ({ pid: p, name }));
}

/** Which of `pids` still run (zombies left out). */
export function stillRunning(pids: readonly number[]): number[] {
  const live = new Set(liveProcesses().map((proc) => proc.pid));
  return pids.filter((pid) => live.has(pid));
}
