import { pino, destination as pinoDestination, type Logger } from 'pino';

export type { Logger };

export interface LoggerOptions {
  level?: string;
  /** Component or role name, carried by every line. */
  name: string;
  /** file to append JSON lines to; standard output when absent */
  file?: string;
}

// Secrets must never reach a log line, whatever object a caller hands us.
const redact = {
  paths: [
    'password',
    '*.password',
    '*.*.password',
    'users[*].password',
    '*.users[*].password',
    'rootPassword',
    '*.rootPassword',
    // the engine superuser's password, in a create task's payload and the guest's prepare
    'adminPassword',
    '*.adminPassword',
    '*.*.adminPassword',
    'token',
    '*.token',
    'authorization',
    'headers["x-auth-token"]',
    'headers["x-subject-token"]',
  ],
  censor: '[redacted]',
};

export function createLogger(options: LoggerOptions): Logger {
  const destination = options.file === undefined ? undefined : pinoDestination({ dest: options.file, mkdir: true, sync: false });
  return pino({ name: options.name, level: options.level ?? 'info', redact }, destination);
}

/** The URL with its password masked, for log lines and error messages (state database, message broker). */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}

/** A logger that drops everything, for tests and library defaults. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
