import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { basename } from 'node:path';
import { CofferError } from '../common/index.js';

// The agent's nftables changes, run by small shells that stay up beside it instead of each by a
// process the agent starts itself. Starting a program from the agent forks the agent, whose page
// tables are hundreds of MB: the event loop (the API, the flows, every guest) stops for 3 to 8 ms
// on this 2-core box each time, and a create's wall change was one of them. A shell forks nft
// from its own small process, on the other core; the agent only writes the ruleset to a pipe and
// reads one line back.
//
// Each shell runs one change at a time; changes asked while every shell is busy go to another
// one, started then (up to `maxShells`), so that a create's wall change does not wait behind a
// spare user's (as before, when each was a process of its own: changes asked together run
// together, and the kernel applies each whole). A caller that needs an order waits for one
// change before it asks for the next. A shell that died, or whose change ran past its deadline
// (it is killed with what it ran), is replaced at the next change.

/** a ruleset between lines of its own ending in a line `.`; answers the code, and nft's words when it failed */
const script = `nft=$1
while :; do
  buf=
  ended=
  while IFS= read -r line; do
    if [ "$line" = . ]; then ended=1; break; fi
    buf="$buf$line
"
  done
  [ -n "$ended" ] || exit 0
  out=$(printf '%s' "$buf" | "$nft" -f - 2>&1)
  rc=$?
  if [ "$rc" -eq 0 ]; then echo 0; else printf '%s %s\\n' "$rc" "$(printf '%s' "$out" | base64 -w0)"; fi
done`;

const env = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };
const maxShells = 4;

interface Shell {
  child: ChildProcessWithoutNullStreams;
  busy: boolean;
  /** killed for its deadline: never given another change */
  killed?: true;
}

export class NftSession {
  private readonly shells: Shell[] = [];
  /** changes waiting for a shell, in the order asked */
  private readonly waiting: (() => void)[] = [];
  private closed = false;

  /** `nft`: the nftables program, by path or on the PATH */
  constructor(private readonly nft = 'nft') {}

  /** Applies `ruleset` (nft -f syntax, no line of it a lone `.`) as one transaction; rejects with nft's words. */
  async apply(ruleset: string, timeoutMs: number): Promise<void> {
    if (ruleset.split('\n').includes('.')) throw new CofferError('Internal', 'A ruleset line cannot be a lone ".".');
    if (this.closed) throw new CofferError('Internal', 'The nftables session is closed.');
    const shell = await this.idleShell();
    try {
      await this.applyIn(shell, ruleset, timeoutMs);
    } finally {
      shell.busy = false;
      this.waiting.shift()?.();
    }
  }

  /** Ends the shells (their input closed: each exits once a change under way is done); a change not yet sent to one is refused. */
  close(): void {
    this.closed = true;
    for (const { child } of this.shells.splice(0)) child.stdin.end();
    // changes still waiting for a shell are refused (idleShell)
    for (const wake of this.waiting.splice(0)) wake();
  }

  /** how many shells are up (tests) */
  get size(): number {
    return this.shells.length;
  }

  private async idleShell(): Promise<Shell> {
    for (;;) {
      if (this.closed) throw new CofferError('Internal', 'The nftables session is closed.');
      // a shell that exited is dropped; its replacement is started below
      for (let i = this.shells.length - 1; i >= 0; i--) {
        const { child, busy, killed } = this.shells[i]!;
        if (!busy && (killed === true || child.exitCode !== null || child.signalCode !== null)) this.shells.splice(i, 1);
      }
      const idle = this.shells.find((shell) => !shell.busy);
      if (idle !== undefined) {
        idle.busy = true;
        return idle;
      }
      if (this.shells.length < maxShells) {
        const shell = { child: this.startShell(), busy: true };
        this.shells.push(shell);
        return shell;
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
  }

  private startShell(): ChildProcessWithoutNullStreams {
    const child = spawn('/bin/sh', ['-c', script, 'nft-session', this.nft], { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    child.stdin.on('error', () => undefined);
    // a shell that cannot start fails the change under way (applyIn listens too)
    child.on('error', () => undefined);
    child.stdout.setEncoding('utf8');
    child.stderr.resume();
    // never keeps the agent's process alive by itself
    child.unref();
    for (const stream of [child.stdin, child.stdout, child.stderr] as unknown as { unref?: () => void }[]) stream.unref?.();
    return child;
  }

  private applyIn(shell: Shell, ruleset: string, timeoutMs: number): Promise<void> {
    const { child } = shell;
    const name = basename(this.nft);
    return new Promise<void>((resolve, reject) => {
      let answer = '';
      const done = (err?: unknown) => {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        child.off('exit', onExit);
        child.off('error', onExit);
        if (err === undefined) resolve();
        else reject(err);
      };
      const onData = (chunk: string) => {
        answer += chunk;
        const end = answer.indexOf('\n');
        if (end < 0) return;
        const [code, words] = answer.slice(0, end).split(' ');
        if (code === '0') return done();
        const details = Buffer.from(words ?? '', 'base64').toString('utf8').trim();
        done(new CofferError('EngineError', `${name} exited with code ${code}.`, { details: details.slice(-1500) }));
      };
      const onExit = () => done(new CofferError('EngineError', `${name} could not run: the shell that runs it exited.`));
      const timer = setTimeout(() => {
        // with what it runs: a hung nft must not answer the next change's question
        shell.killed = true;
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // gone already
        }
        done(new CofferError('EngineError', `${name} timed out after ${timeoutMs} ms.`));
      }, timeoutMs);
      child.stdout.on('data', onData);
      child.once('exit', onExit);
      child.once('error', onExit);
      child.stdin.write(`${ruleset.endsWith('\n') ? ruleset : `${ruleset}\n`}.\n`);
    });
  }
}
