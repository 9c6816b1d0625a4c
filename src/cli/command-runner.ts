import { CommanderError } from 'commander';
import { ApiError, CliError } from './cli-error.js';
import type { CliIo } from './cli-io.js';

/**
 * Runs one command's work and turns any failure into a message, its next step and exit code 1.
 * Stacks are for developers: the user sees only what to do.
 */
export async function runAction(io: CliIo, work: () => Promise<unknown>): Promise<void> {
  try {
    await work();
  } catch (err) {
    // Commander's own exits (with exitOverride) belong to whoever called parse.
    if (err instanceof CommanderError) throw err;
    io.stderr.write(describe(err));
    io.setExitCode(1);
  }
}

/** The API's request fields that the CLI's flags set, as its "leave out '<field>'" errors name them. */
const flagOfField: Readonly<Record<string, string>> = {
  databases: '--database',
  users: '--user',
  host: '--host',
  allowed_cidrs: '--allowed-cidr',
};

/** An API message in the CLI's words: the flag to leave out, not the JSON field it fills. */
export function inCliWords(message: string): string {
  return message.replace(/leave out '([a-z_]+)'/g, (whole, field: string) => {
    const flag = flagOfField[field];
    return flag === undefined ? whole : `leave out ${flag}`;
  });
}

function describe(err: unknown): string {
  if (err instanceof CliError) {
    const message = err instanceof ApiError ? inCliWords(err.message) : err.message;
    return `Error: ${message}\n${err.hint === undefined ? '' : `${err.hint}\n`}`;
  }
  const message = err instanceof Error ? err.message : String(err);
  return `Error: ${message}\n`;
}
