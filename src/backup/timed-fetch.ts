import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { IdleTimeoutError, idleWatched } from './idle-watched-stream.js';

// fetch with an idle timeout instead of a total one: a request fails once nothing has moved for
// `idleMs` (no connection, no response, no byte of a body sent or received), however long a
// large body takes while it keeps moving. A storage that accepts connections and then says
// nothing fails the call instead of hanging it.

export interface TimedRequest {
  method: string;
  headers?: Record<string, string>;
  body?: Buffer;
  signal?: AbortSignal;
}

export interface TimedResponse {
  response: Response;
  /** the response body as a stream whose idle time is watched too; the timer stops when it ends */
  stream(): Readable;
  /** reads the whole (small) body as text */
  text(): Promise<string>;
  /** discards the body (lets the connection be reused) */
  discard(): Promise<void>;
}

const pieceBytes = 256 * 1024;


export async function timedFetch(url: string, request: TimedRequest, idleMs: number): Promise<TimedResponse> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const stop = () => {
    clearTimeout(timer);
    request.signal?.removeEventListener('abort', onAbort);
  };
  const touch = () => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(new IdleTimeoutError(idleMs)), idleMs);
  };
  const onAbort = () => controller.abort(request.signal?.reason);
  if (request.signal?.aborted) throw request.signal.reason;
  request.signal?.addEventListener('abort', onAbort, { once: true });
  touch();

  // the body goes out in pieces so that each piece taken by the socket counts as progress
  let body: ReadableStream<Uint8Array> | undefined;
  if (request.body !== undefined) {
    const bytes = request.body;
    let offset = 0;
    body = new ReadableStream<Uint8Array>({
      pull(stream) {
        touch();
        if (offset >= bytes.length) {
          stream.close();
          return;
        }
        stream.enqueue(bytes.subarray(offset, offset + pieceBytes));
        offset += pieceBytes;
      },
    });
  }

  let response: Response;
  try {
    response = await fetch(url, {
      method: request.method,
      headers: {
        ...request.headers,
        ...(request.body === undefined ? {} : { 'content-length': String(request.body.length) }),
      },
      ...(body === undefined ? {} : { body, duplex: 'half' }),
      signal: controller.signal,
    } as RequestInit);
  } catch (err) {
    stop();
    throw controller.signal.aborted ? controller.signal.reason : err;
  }
  touch();

  const settle = async <T>(read: () => Promise<T>): Promise<T> => {
    try {
      return await read();
    } catch (err) {
      throw controller.signal.aborted ? controller.signal.reason : err;
    } finally {
      stop();
    }
  };

  return {
    response,
    stream() {
      // from here the body's own reads are watched, not the time the consumer takes; the
      // caller's signal still aborts the request until the stream closes
      clearTimeout(timer);
      if (response.body === null) {
        stop();
        return Readable.from([]);
      }
      const stream = idleWatched(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), idleMs);
      stream.once('close', stop);
      return stream;
    },
    text: () => settle(() => response.text()),
    discard: () => settle(async () => void (await response.arrayBuffer())),
  };
}
