import { InvalidArgumentError } from 'commander';

export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError('Expected a whole number of at least 1.');
  }
  return n;
}

export function positiveSeconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError('Expected a number of seconds greater than 0.');
  }
  return n;
}

export function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw new InvalidArgumentError('Expected a number (0 or more).');
  }
  return n;
}

/** For repeatable options: `--database a --database b` gives ['a', 'b']. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export interface UserSpec {
  name: string;
  password: string;
}

/** `name:password`; the password may itself contain ':'. */
export function userSpec(value: string): UserSpec {
  const colon = value.indexOf(':');
  if (colon <= 0 || colon === value.length - 1) {
    throw new InvalidArgumentError('Expected name:password.');
  }
  return { name: value.slice(0, colon), password: value.slice(colon + 1) };
}

/**
 * A backup container, as the API takes one: a valid Swift container, S3 key prefix and directory
 * name alike, which no shell reads as more than a name.
 */
export function containerName(value: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(value)) {
    throw new InvalidArgumentError('Expected 1 to 128 letters, digits, "_", "." or "-", starting with a letter or digit.');
  }
  return value;
}
