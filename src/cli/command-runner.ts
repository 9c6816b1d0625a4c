import { CommanderError } from 'commander';
import { CliError } from './cli-error.js';
import type { CliIo } from './cli-io.js';

/**
 * Runs one command's work and turns any failure into a message, its next step and exit code 1.
 * Stacks are for developers: the user sees only what to do.
 */
export async function runAction(io: CliIo, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (err) {
    // Commander's own exits (with exitOverride) belong to whoever called parse.
    if (err instanceof CommanderError) throw err;
    io.stderr.write(describe(err));
    io.setExitCode(1);
  }
}

function describe(err: unknown): string {
  if (err instanceof CliError) {
    return `Error: ${err.message}\n${err.hint === undefined ? '' : `${err.hint}\n`}`;
  }
  const message = err instanceof Error ? err.message : String(err);
  return `Error: ${message}\n`;
}
