import { CronExpressionParser } from 'cron-parser';
import { CofferError } from './errors.js';

// Backup schedules take the classic five-field cron pattern (minute hour day-of-month month
// day-of-week), always in UTC so that every taskmanager, wherever it runs, reads it alike.
// cron-parser alone also takes seconds fields, macros and Jenkins' `H` (a random minute that
// would move between parses); only what crontab(5) users expect is let through.

const fieldNames = ['minute', 'hour', 'day of month', 'month', 'day of week'];
const fieldCharacters = /^[0-9A-Za-z*/,#-]+$/;
/** `H`, `H/15`: Jenkins' hashed values (THU, a day name, is fine) */
const hashed = /(^|,)H(?![A-Za-z])/;

function invalid(pattern: string, why: string): CofferError {
  return new CofferError(
    'BadRequest',
    `Invalid cron pattern ${JSON.stringify(pattern)}: ${why}. Give five fields, minute hour day-of-month month day-of-week, in UTC (e.g. "30 2 * * *": every day at 02:30 UTC).`,
  );
}

function parse(pattern: string, after: Date) {
  const fields = pattern.trim() === '' ? [] : pattern.trim().split(/\s+/);
  if (fields.length !== 5) throw invalid(pattern, `it has ${fields.length} field${fields.length === 1 ? '' : 's'}, not 5`);
  fields.forEach((field, i) => {
    if (!fieldCharacters.test(field) || hashed.test(field)) throw invalid(pattern, `the ${fieldNames[i]} field ${JSON.stringify(field)} is not one cron takes`);
  });
  try {
    return CronExpressionParser.parse(fields.join(' '), { currentDate: after, tz: 'UTC' });
  } catch (err) {
    throw invalid(pattern, (err as Error).message.replace(/\.$/, '').toLowerCase());
  }
}

/** Throws BadRequest saying what is wrong unless `pattern` is a five-field cron pattern that fires. */
export function checkCronPattern(pattern: string): void {
  nextCronRun(pattern, new Date());
}

/** The first time after `after` (strictly) that `pattern` fires, in UTC, to the minute. */
export function nextCronRun(pattern: string, after: Date): Date {
  const expression = parse(pattern, after);
  try {
    return expression.next().toDate();
  } catch (err) {
    throw invalid(pattern, `it never fires (${(err as Error).message})`);
  }
}
