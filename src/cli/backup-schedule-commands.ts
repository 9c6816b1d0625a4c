import type { Command } from 'commander';
import type { ApiClient } from './api-client.js';
import type { BackupScheduleView, InstanceView } from './api-types.js';
import { ApiError, CliError } from './cli-error.js';
import type { CliIo } from './cli-io.js';
import { runAction } from './command-runner.js';
import { timestampText } from './instance-format.js';
import { findInstance } from './instance-lookup.js';
import { positiveInteger } from './option-parsers.js';
import { openSession } from './session.js';
import { printJson, renderFields } from './table-format.js';

// `coffer backup schedule set|show|clear`: Coffer's backup schedule of one instance, a cron
// pattern in UTC and how many and how old of its backups are kept. The taskmanager takes the
// backups; one that cannot (a busy instance, the quota) is skipped and `show` says why. With
// --verify each completed one is also verified (as `coffer backup verify`), once.

const example = '--cron "30 2 * * *" --keep-count 7';
const pathOf = (instance: InstanceView) => `/instances/${encodeURIComponent(instance.id)}/backup_schedule`;

interface SetFlags {
  cron: string;
  incremental?: boolean;
  keepCount?: number;
  keepDays?: number;
  name?: string;
  verify?: boolean;
  json?: boolean;
}

/** The scheduler's own wording when a completed backup's verification could not start (the run itself did start a backup). */
const verificationError = /^The verification of backup /;

function keepsText(schedule: BackupScheduleView): string {
  const limits = [
    ...(schedule.retain_count === null ? [] : [`the newest ${schedule.retain_count}`]),
    ...(schedule.retain_days === null ? [] : [`none older than ${schedule.retain_days} day${schedule.retain_days === 1 ? '' : 's'}`]),
  ];
  return `${limits.join(', ')} (always the newest completed one, and what it builds on)`;
}

function lastRunText(schedule: BackupScheduleView): string {
  if (schedule.last_run === null) return 'never';
  const when = timestampText(schedule.last_run) ?? schedule.last_run;
  if (schedule.last_error !== null && !verificationError.test(schedule.last_error)) return `${when}: skipped`;
  return schedule.last_backup_id === null ? when : `${when}: started backup ${schedule.last_backup_id}`;
}

function verifiesText(schedule: BackupScheduleView): string {
  if (schedule.verify !== true) return 'no';
  const last = schedule.last_verified_backup_id;
  return `each completed backup, once${last === null || last === undefined ? '' : ` (last: backup ${last})`}`;
}

function scheduleFields(schedule: BackupScheduleView, instance: InstanceView): Array<[string, string | null]> {
  return [
    ['Instance', `${instance.name} (${instance.id})`],
    ['Cron (UTC)', schedule.pattern],
    ['Backups', schedule.incremental ? 'incremental (a full one to start each chain)' : 'full'],
    ['Names', `${schedule.name ?? 'scheduled'}-<UTC time>`],
    ['Keeps', keepsText(schedule)],
    ['Verifies', verifiesText(schedule)],
    ['Next run', timestampText(schedule.next_run) ?? schedule.next_run],
    ['Last run', lastRunText(schedule)],
    ['Last error', schedule.last_error],
  ];
}

/** A 404 from the schedule route for an instance just found means it has no schedule. */
function noSchedule(err: unknown, instance: InstanceView): never {
  if (err instanceof ApiError && err.status === 404) {
    throw new CliError(`${instance.name} has no backup schedule.`, `Set one with \`coffer backup schedule set ${instance.name} ${example}\`.`);
  }
  throw err;
}

async function setSchedule(io: CliIo, client: ApiClient, ref: string, flags: SetFlags): Promise<void> {
  if (flags.keepCount === undefined && flags.keepDays === undefined) {
    throw new CliError('Say how long the schedule keeps its backups.', `Give --keep-count <n> (the newest n), --keep-days <n> (none older), or both, e.g. ${example}.`);
  }
  const instance = await findInstance(client, ref);
  const body = {
    backup_schedule: {
      pattern: flags.cron,
      ...(flags.incremental === true ? { incremental: true } : {}),
      ...(flags.keepCount === undefined ? {} : { retain_count: flags.keepCount }),
      ...(flags.keepDays === undefined ? {} : { retain_days: flags.keepDays }),
      ...(flags.name === undefined ? {} : { name: flags.name }),
      ...(flags.verify === true ? { verify: true } : {}),
    },
  };
  const answer = await client.request('PUT', pathOf(instance), body);
  const schedule = (answer.body as { backup_schedule: BackupScheduleView }).backup_schedule;
  if (flags.json === true) return printJson(io.stdout, schedule);
  io.stdout.write(
    `Backups of ${instance.name}: ${schedule.incremental ? 'incremental' : 'full'}, at "${schedule.pattern}" (UTC); keeps ${keepsText(schedule)}.\n` +
      (schedule.verify === true ? 'Each one is verified once it completed: `coffer backup show <backup>` says how that went.\n' : '') +
      `Next run: ${timestampText(schedule.next_run) ?? schedule.next_run}. ` +
      `Check on it with \`coffer backup schedule show ${instance.name}\`; its backups: \`coffer backup list --instance ${instance.name}\`.\n`,
  );
}

export function registerBackupScheduleCommands(backup: Command, io: CliIo): void {
  const schedule = backup
    .command('schedule')
    .description("An instance's backup schedule: when Coffer backs it up (cron, in UTC) and how many and how old of those backups it keeps");

  schedule
    .command('set <instance>')
    .description(
      "Back up the instance (ID or name) on a cron pattern, in UTC, and delete the schedule's older backups; replaces its schedule if it has one. " +
        'Backups you take yourself are never deleted by it.',
    )
    .requiredOption('--cron <pattern>', 'five fields, minute hour day-of-month month day-of-week, in UTC: "30 2 * * *" is every day at 02:30 UTC')
    .option('--incremental', 'incremental backups, each since the newest one (a full one starts each chain); where the datastore has them')
    .option('--keep-count <n>', "keep the schedule's newest n completed backups (1 to 1000)", positiveInteger)
    .option('--keep-days <n>', "keep none of the schedule's backups older than n days (1 to 3650)", positiveInteger)
    .option('--name <prefix>', 'what its backups are named, before the time they are taken (default "scheduled")')
    .option('--verify', 'verify each backup once it completed, as `coffer backup verify` does (restored into a scratch instance and checked)')
    .option('--json', 'print the API object as JSON')
    .addHelpText(
      'after',
      '\nAt least one of --keep-count and --keep-days; with both, both limits apply.\n' +
        'The newest completed backup, and the backups it is built on, are always kept.\n' +
        'Without --verify, setting the schedule again turns verification off.',
    )
    .action((ref: string, flags: SetFlags) =>
      runAction(io, async () => {
        const client = await openSession(io);
        await setSchedule(io, client, ref, flags);
      }),
    );

  schedule
    .command('show <instance>')
    .description("Show the instance's backup schedule: its pattern, what it keeps, whether it verifies its backups, its next run, and what its last run did")
    .option('--json', 'print the API object as JSON')
    .action((ref: string, flags: { json?: boolean }) =>
      runAction(io, async () => {
        const client = await openSession(io);
        const instance = await findInstance(client, ref);
        const found = await client.getMember<BackupScheduleView>(pathOf(instance), 'backup_schedule').catch((err: unknown) => noSchedule(err, instance));
        if (flags.json === true) return printJson(io.stdout, found);
        io.stdout.write(renderFields(scheduleFields(found, instance)));
      }),
    );

  schedule
    .command('clear <instance>')
    .description("Stop backing up the instance on a schedule; the backups the schedule took stay (delete them with `coffer backup delete`)")
    .action((ref: string) =>
      runAction(io, async () => {
        const client = await openSession(io);
        const instance = await findInstance(client, ref);
        await client.delete(pathOf(instance)).catch((err: unknown) => noSchedule(err, instance));
        io.stdout.write(`${instance.name} is no longer backed up on a schedule. The backups it took stay: \`coffer backup list --instance ${instance.name}\`.\n`);
      }),
    );
}
