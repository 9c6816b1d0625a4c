/**
 * An error the user can act on: a one-line message and, optionally, the next step to take.
 * The command runner prints both and exits 1; nothing else about it (no stack) reaches the user.
 */
export class CliError extends Error {
  readonly hint: string | undefined;

  constructor(message: string, hint?: string) {
    super(message);
    this.name = 'CliError';
    this.hint = hint;
  }
}

/** An HTTP error answer from Coffer, with Trove's message (`body[firstKey].message`). */
export class ApiError extends CliError {
  readonly status: number;

  constructor(status: number, message: string, hint?: string) {
    super(message, hint);
    this.name = 'ApiError';
    this.status = status;
  }
}

export const defaultUrl = 'http://127.0.0.1:8779';

export function notLoggedIn(url: string = defaultUrl, why?: string): CliError {
  return new CliError(`Not logged in${why === undefined ? '' : ` (${why})`}. Run \`coffer login --url ${url}\`.`);
}
