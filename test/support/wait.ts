import assert from 'node:assert/strict';

// The tests' one way to wait for something that happens in the background: poll, and fail the
// test with what was awaited once the time is up.

const pollMs = 10;
const defaultTimeoutMs = 15_000;

/** Reads until `ok` accepts what was read, and returns that. */
export async function eventually<T>(
  what: string,
  read: () => T | Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs = defaultTimeoutMs,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** Polls `probe` until it gives something other than undefined, and returns that. */
export async function waitUntil<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = defaultTimeoutMs,
): Promise<T> {
  return (await eventually(what, probe, (value) => value !== undefined, timeoutMs)) as T;
}

/** Polls until `condition` holds. */
export async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = defaultTimeoutMs): Promise<void> {
  await eventually(what, condition, (held) => held, timeoutMs);
}
