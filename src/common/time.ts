/** Trove's timestamp format: naive UTC, seconds precision, no `Z` (`2019-12-23T20:53:38`). */
export function troveTimestamp(date: Date): string {
  // built from the UTC fields: toISOString cost twice as much, and a detail page of 20 instances
  // formats about 80 of these (issue 14)
  const year = date.getUTCFullYear();
  if (year < 1000 || year > 9999 || Number.isNaN(year)) return date.toISOString().slice(0, 19);
  return `${year}-${twoDigits(date.getUTCMonth() + 1)}-${twoDigits(date.getUTCDate())}T${twoDigits(date.getUTCHours())}:${twoDigits(date.getUTCMinutes())}:${twoDigits(date.getUTCSeconds())}`;
}

function twoDigits(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
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
