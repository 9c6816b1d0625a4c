import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { basename } from 'node:path';
import { CofferError } from '../common/index.js';

// The agent's nftables changes, run by a small shell that stays up beside it instead of each by
// a process the agent starts itself. Starting a program from the agent forks the agent, whose
// page tables are hundreds of MB: the event loop (the API, the flows, every guest) stops for 3
// to 8 ms on this 2-core box each time, and a create's wall change was one of them. The shell
// forks nft from its own small process, on the other core; the agent only writes the ruleset to
// a pipe and reads one line back.
//
// One change at a time, in the order asked (nft's own transactions are whole or nothing; the
// wall's order per uid is its caller's). A shell that died, or a change that ran past its
// deadline (the shell is killed with what it ran), is started anew at the next change.

/** dash or bash: a ruleset between lines of its own ending in a line `.`; answers the code, and nft's words when it failed */
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

export class NftSession {
  private child: ChildProcessWithoutNullStreams | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  /** `nft`: the nftables program, by path or on the PATH */
  constructor(private readonly nft = 'nft') {}

  /** Applies `ruleset` (nft -f syntax, no line of it a lone `.`) as one transaction; rejects with nft's words. */
  apply(ruleset: string, timeoutMs: number): Promise<void> {
    if (ruleset.split('\n').includes('.')) throw new CofferError('Internal', 'A ruleset line cannot be a lone ".".');
    const run = this.tail.then(() => this.applyNow(ruleset, timeoutMs));
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Ends the shell (its input closed: it exits once a change under way is done). */
  close(): void {
    this.closed = true;
    this.child?.stdin.end();
    this.child = undefined;
  }

  private shell(): ChildProcessWithoutNullStreams {
    if (this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null) return this.child;
    const child = spawn('/bin/sh', ['-c', script, 'nft-session', this.nft], { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    child.stdin.on('error', () => undefined);
    // a shell that cannot start fails the change under way (applyNow listens too)
    child.on('error', () => undefined);
    child.stdout.setEncoding('utf8');
    child.stderr.resume();
    // never keeps the agent's process alive by itself
    child.unref();
    for (const stream of [child.stdin, child.stdout, child.stderr] as unknown as { unref?: () => void }[]) stream.unref?.();
    this.child = child;
    return child;
  }

  private applyNow(ruleset: string, timeoutMs: number): Promise<void> {
    if (this.closed) return Promise.reject(new CofferError('Internal', 'The nftables session is closed.'));
    const child = this.shell();
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
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // gone already
        }
        if (this.child === child) this.child = undefined;
        done(new CofferError('EngineError', `${name} timed out after ${timeoutMs} ms.`));
      }, timeoutMs);
      child.stdout.on('data', onData);
      child.once('exit', onExit);
      child.once('error', onExit);
      child.stdin.write(`${ruleset.endsWith('\n') ? ruleset : `${ruleset}\n`}.\n`);
    });
  }
}
