import type { Command } from 'commander';
import type { ApiClient } from './api-client.js';
import { ApiError, CliError } from './cli-error.js';
import type { CliIo } from './cli-io.js';
import { runAction } from './command-runner.js';
import { timestampText } from './instance-format.js';
import { openSession } from './session.js';
import { printJson, renderFields, renderTable } from './table-format.js';

// `coffer webhook create|list|show|delete|deliveries`: the project's webhooks (Coffer's
// extension). The signing secret is printed once, by create; a secret of one's own comes from
// standard input, never an argument (arguments show up in `ps` and shell history).

interface WebhookView {
  id: string;
  url: string;
  events: string[] | null;
  created: string;
  secret?: string;
}

interface DeliveryView {
  id: string;
  event_id: string;
  type: string;
  instance_id: string;
  state: string;
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  created: string;
  updated: string;
  delivered: string | null;
  next_attempt: string | null;
}

const eventPrefix = 'org.coffer.instance.';
/** `status` for org.coffer.instance.status: what a user types and reads */
const shortType = (type: string) => (type.startsWith(eventPrefix) ? type.slice(eventPrefix.length) : type);
const eventsText = (events: string[] | null) => (events === null ? 'all' : events.map(shortType).join(', '));
const pathOf = (id: string) => `/webhooks/${encodeURIComponent(id)}`;

/** A 404 for a hook id means the project has no such hook. */
function noHook(err: unknown, id: string): never {
  if (err instanceof ApiError && err.status === 404) throw new CliError(`No webhook ${id} in this project.`, 'List them with `coffer webhook list`.');
  throw err;
}

async function readSecret(io: CliIo): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of io.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  const secret = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (secret === '') throw new CliError('--secret-stdin was given but standard input was empty.');
  return secret;
}

async function createHook(io: CliIo, client: ApiClient, url: string, flags: { events?: string; secretStdin?: boolean; json?: boolean }): Promise<void> {
  const events = flags.events?.split(',').map((e) => e.trim()).filter((e) => e !== '').map((e) => (e.includes('.') && e.startsWith('org.') ? e : `${eventPrefix}${e}`));
  const secret = flags.secretStdin === true ? await readSecret(io) : undefined;
  const hook = await client.postMember<WebhookView>('/webhooks', 'webhook', {
    webhook: { url, ...(secret === undefined ? {} : { secret }), ...(events === undefined ? {} : { events }) },
  });
  if (flags.json === true) return printJson(io.stdout, hook);
  io.stdout.write(
    `Webhook ${hook.id} sends ${eventsText(hook.events)} events of this project's instances to ${hook.url}.\n` +
      (secret === undefined
        ? `Its signing secret, shown this once (keep it where the receiver checks X-Coffer-Signature):\n${hook.secret ?? ''}\n`
        : 'It signs with the secret you gave (X-Coffer-Signature).\n') +
      `See what it delivered with \`coffer webhook deliveries ${hook.id}\`.\n`,
  );
}

export function registerWebhookCommands(program: Command, io: CliIo): void {
  const webhook = program.command('webhook').description("The project's webhooks: URLs that receive its instances' events as signed CloudEvents");

  webhook
    .command('create <url>')
    .description('Send the events of this project\'s instances to URL (http or https, a host Coffer may reach); prints the signing secret once')
    .option('--events <types>', 'only these, comma-separated: status, warning, task.started, task.done, task.failed, backup.completed, backup.failed, replication.promoted, replication.failover, replication.rejoined (default: all)')
    .option('--secret-stdin', 'sign with the secret read from standard input (16 to 256 printable characters) instead of a generated one')
    .option('--json', 'print the API object as JSON (with the secret)')
    .action((url: string, flags: { events?: string; secretStdin?: boolean; json?: boolean }) =>
      runAction(io, async () => createHook(io, await openSession(io), url, flags)),
    );

  webhook
    .command('list')
    .description("List the project's webhooks")
    .option('--json', 'print the API objects as JSON')
    .action((flags: { json?: boolean }) =>
      runAction(io, async () => {
        const hooks = await (await openSession(io)).getMember<WebhookView[]>('/webhooks', 'webhooks');
        if (flags.json === true) return printJson(io.stdout, hooks);
        if (hooks.length === 0) {
          io.stdout.write('No webhooks in this project. Add one with `coffer webhook create <url>`.\n');
          return;
        }
        io.stdout.write(renderTable(['ID', 'URL', 'Events', 'Created'], hooks.map((h) => [h.id, h.url, eventsText(h.events), timestampText(h.created)])));
      }),
    );

  webhook
    .command('show <id>')
    .description('Show a webhook (its secret is never shown again)')
    .option('--json', 'print the API object as JSON')
    .action((id: string, flags: { json?: boolean }) =>
      runAction(io, async () => {
        const hook = await (await openSession(io)).getMember<WebhookView>(pathOf(id), 'webhook').catch((err: unknown) => noHook(err, id));
        if (flags.json === true) return printJson(io.stdout, hook);
        io.stdout.write(renderFields([['ID', hook.id], ['URL', hook.url], ['Events', eventsText(hook.events)], ['Created', timestampText(hook.created)]]));
      }),
    );

  webhook
    .command('delete <id>')
    .description('Delete a webhook and its delivery log; deliveries on their way are dropped')
    .action((id: string) =>
      runAction(io, async () => {
        await (await openSession(io)).delete(pathOf(id)).catch((err: unknown) => noHook(err, id));
        io.stdout.write(`Webhook ${id} deleted.\n`);
      }),
    );

  webhook
    .command('deliveries <id>')
    .description("A webhook's delivery log, newest first: each event, its attempts and how the last one went")
    .option('--json', 'print the API objects as JSON')
    .action((id: string, flags: { json?: boolean }) =>
      runAction(io, async () => {
        const log = await (await openSession(io)).getMember<DeliveryView[]>(`${pathOf(id)}/deliveries`, 'deliveries').catch((err: unknown) => noHook(err, id));
        if (flags.json === true) return printJson(io.stdout, log);
        if (log.length === 0) {
          io.stdout.write(`Nothing delivered by webhook ${id} yet: it gets the events recorded after it was created.\n`);
          return;
        }
        const last = (d: DeliveryView) =>
          d.state === 'delivered'
            ? `${d.last_status_code ?? ''} at ${timestampText(d.delivered ?? undefined) ?? ''}`
            : [d.last_error ?? '', d.state === 'pending' && d.next_attempt !== null ? `next try ${timestampText(d.next_attempt) ?? ''}` : ''].filter((t) => t !== '').join('; ');
        io.stdout.write(
          renderTable(
            ['Time', 'Event', 'Instance', 'State', 'Attempts', 'Last'],
            log.map((d) => [timestampText(d.created), shortType(d.type), d.instance_id, d.state, d.attempts, last(d)]),
          ),
        );
      }),
    );
}
