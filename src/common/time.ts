/** Trove's timestamp format: naive UTC, seconds precision, no `Z` (`2019-12-23T20:53:38`). */
export function troveTimestamp(date: Date): string {
  return date.toISOString().slice(0, 19);
}

/** Keystone's timestamp format: UTC with microseconds and `Z` (`2030-01-01T00:00:00.000000Z`). */
export function keystoneTimestamp(date: Date): string {
  return `${date.toISOString().slice(0, 23)}000Z`;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
