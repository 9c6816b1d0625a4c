import type { Command } from 'commander';
import { sleep } from '../common/index.js';
import type { ApiClient } from './api-client.js';
import { ApiError } from './cli-error.js';
import type { CliIo } from './cli-io.js';
import { runAction } from './command-runner.js';
import { findInstance } from './instance-lookup.js';
import { openSession } from './session.js';

// `coffer logs`: an engine's log through the API. Trove's POST /instances/{id}/log publishes what
// the log gained (and turns a tenant's log on), then Coffer's GET /instances/{id}/log/{name}
// reads the published objects back from the backup storage; --follow publishes and reads what is
// new again and again, until interrupted or the instance is gone. What is printed is what was
// published: bytes the guest cut off a file past its size limit before a publish are not there.

interface LogsOptions {
  log: string;
  follow?: boolean;
}

interface LogContents {
  text: string;
  next: number;
  more: boolean;
}

/** how many poll intervals apart --follow publishes (2 s with the real 250 ms) */
const followEvery = 8;

function logPath(id: string): string {
  return `/instances/${encodeURIComponent(id)}/log`;
}

/** publishes, then prints every object from `from` on; answers where the next read starts */
async function publishAndPrint(io: CliIo, client: ApiClient, id: string, name: string, from: number): Promise<number> {
  await client.post(logPath(id), { name, publish: 1 });
  let next = from;
  for (;;) {
    const contents = await client.getMember<LogContents>(`${logPath(id)}/${encodeURIComponent(name)}?from=${next}`, 'contents');
    if (contents.text !== '') io.stdout.write(contents.text);
    next = contents.next;
    if (!contents.more) return next;
  }
}

async function showLogs(io: CliIo, idOrName: string, options: LogsOptions): Promise<void> {
  const client = await openSession(io);
  const { id, name } = await findInstance(client, idOrName);
  let next = await publishAndPrint(io, client, id, options.log, 0);
  while (options.follow === true) {
    await sleep(io.pollIntervalMs * followEvery);
    try {
      next = await publishAndPrint(io, client, id, options.log, next);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        io.stderr.write(`${name} is gone: no more log to follow.\n`);
        return;
      }
      throw err;
    }
  }
}

export function registerLogsCommand(program: Command, io: CliIo): void {
  program
    .command('logs <id-or-name>')
    .description(
      "Print an instance's engine log: publishes what it gained to the backup storage (turning a general or slow-query log on) and prints everything published",
    )
    .option('--log <name>', 'which log (general, slow_query; admins also error and the others)', 'general')
    .option('--follow', 'keep publishing and printing what is new, every 2 s')
    .action((idOrName: string, options: LogsOptions) => runAction(io, () => showLogs(io, idOrName, options)));
}
