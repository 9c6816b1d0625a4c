import type { ProcessRunner, StreamOptions } from '../process-runner.js';

// A check tool (pg_amcheck, redis-check-rdb) reports what it found on its standard output and
// says with a failure status that it found something; the runner's error keeps only a tail of
// the output, so the output is read here, whole up to a limit, whatever the status.

/** what a check tool may print; past this its report is cut (its first problems are what users read) */
const outputLimit = 1024 * 1024;

export interface CheckedToolRun {
  stdout: string;
  /** the runner's EngineError when the tool failed, timed out or was aborted; undefined when it exited 0 */
  failure: unknown;
}

export async function runCheckTool(runner: ProcessRunner, file: string, args: readonly string[], options: StreamOptions): Promise<CheckedToolRun> {
  const tool = runner.stream(file, args, options);
  tool.stdin.end();
  const chunks: Buffer[] = [];
  let size = 0;
  const read = (async () => {
    for await (const chunk of tool.stdout) {
      if (size >= outputLimit) continue;
      const part = (chunk as Buffer).subarray(0, outputLimit - size);
      chunks.push(part);
      size += part.length;
    }
  })();
  const [output, exit] = await Promise.allSettled([read, tool.exited]);
  const stdout = Buffer.concat(chunks).toString('utf8');
  if (exit.status === 'rejected') return { stdout, failure: exit.reason };
  if (output.status === 'rejected') return { stdout, failure: output.reason };
  return { stdout, failure: undefined };
}
