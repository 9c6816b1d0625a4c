import { CliError } from './cli-error.js';
import type { CliIo } from './cli-io.js';

/**
 * The login password, from (in order) standard input when asked, COFFER_PASSWORD, or a prompt
 * without echo. It is never taken from an argument: those show up in `ps` and shell history.
 */
export async function readPassword(io: CliIo, fromStdin: boolean): Promise<string> {
  if (fromStdin) {
    const text = await readAll(io.stdin);
    // Drop the newline `echo` or a file adds; anything else is part of the password.
    const password = text.replace(/\r?\n$/, '');
    if (password === '') throw new CliError('--password-stdin was given but standard input was empty.');
    return password;
  }
  const fromEnv = io.env.COFFER_PASSWORD;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (io.stdin.isTTY === true && io.stdin.setRawMode !== undefined) {
    return promptHidden(io, 'Password: ');
  }
  throw new CliError(
    'No password given.',
    'Pipe it in with --password-stdin, set COFFER_PASSWORD, or run `coffer login` in a terminal.',
  );
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function promptHidden(io: CliIo, prompt: string): Promise<string> {
  const { stdin, stderr } = io;
  return new Promise((resolve, reject) => {
    let value: string[] = [];
    const finish = (err?: Error) => {
      stdin.removeListener('data', onData);
      stdin.setRawMode?.(false);
      // Paused, the terminal no longer keeps the process alive.
      stdin.pause();
      stderr.write('\n');
      if (err === undefined) resolve(value.join(''));
      else reject(err);
    };
    const onData = (chunk: string | Buffer) => {
      for (const char of chunk.toString()) {
        if (char === '\r' || char === '\n' || char === '\u0004') return finish();
        if (char === '\u0003') return finish(new CliError('Login cancelled.'));
        if (char === '\u007f' || char === '\b') value = value.slice(0, -1);
        else if (char >= ' ') value.push(char);
      }
    };
    stderr.write(prompt);
    stdin.setRawMode?.(true);
    stdin.on('data', onData);
    stdin.resume();
  });
}
