import { spawn } from 'node:child_process';
import { readFile, rm, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../common/index.js';

// The primary lease's backstop (GitLab's lesson: a primary that lost its lock kept committing for
// half an hour because nothing outside the process that should have stopped it enforced it).
// The guest stops its engine itself when its lease runs out, but the guest lives in the agent's
// process, and engines outlive their agent by design: an agent that crashes or hangs would leave
// a primary taking writes while the control plane promotes a replica. So a primary holding a
// lease also has a watchdog, a small shell loop in a process of its own that outlives the agent:
// the guest writes the lease's deadline and the engine's pid to a file of the host's at every
// renewal, and the watchdog kills the engine (its children and process group with it: a
// PostgreSQL backend outlives its postmaster for a moment) once the deadline has passed by
// `graceMs` (time for the guest's own, orderly stop first). It ends when the file goes: the
// instance needs no lease any more.

/** after the deadline, the guest's own stop goes first; the control plane fails over later still */
const graceMs = 300;
const fileName = 'primary-lease';

const script = `
f="$1"; grace="$2"; killed=""
while [ -f "$f" ]; do
  read deadline pid started < "$f" || exit 0
  now=$(date +%s%3N)
  if [ "$deadline $pid" != "$killed" ] && [ -n "$pid" ] && [ "$pid" -gt 1 ] && [ "$now" -gt $((deadline + grace)) ]; then
    # the engine only: a pid reused since (another process, started later) is left alone
    if [ "$(cut -d' ' -f22 "/proc/$pid/stat" 2>/dev/null)" = "$started" ]; then
      kill -STOP "$pid" 2>/dev/null; pkill -KILL -P "$pid" 2>/dev/null; kill -KILL -- "-$pid" 2>/dev/null; kill -KILL "$pid" 2>/dev/null
    fi
    killed="$deadline $pid"
  fi
  sleep 0.2
done
`;

export class LeaseWatchdog {
  private readonly file: string;
  private started = false;

  constructor(
    dir: string,
    private readonly logger: Logger,
  ) {
    this.file = join(dir, fileName);
  }

  /** the engine (`pid`, its process group with it) must not run past `deadline` (epoch ms) */
  async arm(deadline: number, pid: number | undefined): Promise<void> {
    // the process's start time (clock ticks since boot) goes with its pid, so the watchdog, which
    // runs as the host, never kills a process that took the pid over after the engine's died
    const started = pid === undefined ? undefined : await startTime(pid);
    const temporary = `${this.file}.tmp`;
    await writeFile(temporary, `${Math.round(deadline)} ${started === undefined ? 0 : pid} ${started ?? 0}\n`, { mode: 0o600 });
    await rename(temporary, this.file);
    if (!this.started) await this.ensureRunning();
  }

  /** no lease needed any more: the watchdog ends */
  async disarm(): Promise<void> {
    await rm(this.file, { force: true });
    this.started = false;
  }

  /** the instance is being deleted: the watchdog goes now, not on its next look */
  async stop(): Promise<void> {
    await this.disarm();
    const pidFile = `${this.file}.watchdog`;
    const known = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
    if (known > 1 && (await isWatchdog(known, this.file))) {
      try {
        process.kill(known, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    await rm(pidFile, { force: true });
  }

  /** one watchdog per instance: a guest restarted beside a running one leaves it be */
  private async ensureRunning(): Promise<void> {
    const pidFile = `${this.file}.watchdog`;
    const known = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
    if (known > 1 && (await isWatchdog(known, this.file))) {
      this.started = true;
      return;
    }
    const child = spawn('sh', ['-c', script, 'coffer-lease-watchdog', this.file, String(graceMs)], { detached: true, stdio: 'ignore' });
    child.unref();
    if (child.pid === undefined) {
      this.logger.error('the lease watchdog did not start');
      return;
    }
    await writeFile(pidFile, `${child.pid}\n`, { mode: 0o600 });
    this.started = true;
    this.logger.info({ pid: child.pid }, 'lease watchdog started');
  }
}

/** field 22 of /proc/<pid>/stat, read past the command name (which may hold spaces) */
async function startTime(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

async function isWatchdog(pid: number, file: string): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.includes('coffer-lease-watchdog') && cmdline.includes(file);
}
