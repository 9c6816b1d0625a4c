import { Readable } from 'node:stream';

// A download fails once the storage sends nothing for `idleMs` while its reader waits: the timer
// runs only while a read waits on the source, so a slow consumer (a restore into a busy engine)
// is never taken for a stalled storage.

export class IdleTimeoutError extends Error {
  constructor(idleMs: number) {
    super(`no progress for ${idleMs} ms`);
    this.name = 'TimeoutError';
  }
}

export function idleWatched(source: Readable, idleMs: number): Readable {
  const chunks = source[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  return new Readable({
    read() {
      timer = setTimeout(() => this.destroy(new IdleTimeoutError(idleMs)), idleMs);
      chunks.next().then(
        ({ done, value }: IteratorResult<Buffer>) => {
          clearTimeout(timer);
          this.push(done ? null : value);
        },
        (err: unknown) => {
          clearTimeout(timer);
          this.destroy(err as Error);
        },
      );
    },
    destroy(err, callback) {
      clearTimeout(timer);
      source.destroy();
      callback(err);
    },
  });
}
