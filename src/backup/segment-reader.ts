import { addAbortSignal, type Readable } from 'node:stream';

// Cuts a body stream into segments (Swift) or parts (S3) of a fixed size, each buffered whole so
// that its length and MD5 are known before it is sent. A segment is handed out only once the
// stream has more to give or has ended, so the caller knows which one is the last: a body that
// fits in one segment is then stored as a plain object. At most one segment plus one chunk of
// the body is held here.

export interface Segment {
  index: number;
  data: Buffer;
  last: boolean;
}

export async function* readSegments(body: Readable, size: number, signal?: AbortSignal): AsyncGenerator<Segment> {
  // aborting destroys the body, which ends the iteration below with the abort's reason
  if (signal !== undefined) addAbortSignal(signal, body);
  let pieces: Buffer[] = [];
  let length = 0;
  let index = 0;
  for await (const chunk of body) {
    const piece = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array | string);
    pieces.push(piece);
    length += piece.length;
    while (length > size) {
      const all = Buffer.concat(pieces, length);
      yield { index: index++, data: all.subarray(0, size), last: false };
      pieces = [all.subarray(size)];
      length -= size;
    }
  }
  signal?.throwIfAborted();
  yield { index, data: Buffer.concat(pieces, length), last: true };
}

/**
 * Runs `upload` for each segment, one at a time, while the next one is being read: at most two
 * segments are in memory. Resolves with the uploads' results in order; the first failure stops
 * the reading and rejects (segments already uploaded are the caller's to remove).
 */
export async function uploadSegments<T>(
  segments: AsyncGenerator<Segment>,
  upload: (segment: Segment) => Promise<T>,
): Promise<T[]> {
  const results: T[] = [];
  let pending: Promise<void> | undefined;
  try {
    for await (const segment of segments) {
      if (pending !== undefined) await pending;
      pending = upload(segment).then((result) => {
        results[segment.index] = result;
      });
      // a failure is seen at the next await; until then it must not count as unhandled
      pending.catch(() => undefined);
    }
    if (pending !== undefined) await pending;
  } catch (err) {
    // the upload under way is still the caller's to clean up after: wait for it to settle
    await pending?.catch(() => undefined);
    throw err;
  }
  return results;
}
