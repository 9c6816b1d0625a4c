import type { FastifyInstance } from 'fastify';
import { CofferError } from '../common/index.js';

// Request bodies are JSON (application/json or Trove's application/vnd.openstack.trove+json).
// Malformed JSON is Trove's MalformedRequestBody (400); an empty body is no body; a body of any
// other type is ignored, as Trove ignores bodies it has no deserializer for (reference 1.1).

// PostgreSQL text cannot hold a NUL (a state store there would fail with a 500), and no engine
// takes one in a name; a lone surrogate (valid as a JSON escape) has no UTF-8 form and would be
// stored as U+FFFD, a name other than the one given (RFC 7493 I-JSON refuses both).
const unstorable = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Any string of the body, keys included, that cannot be stored; walked without recursion (bodies nest deep). */
function holdsUnstorable(value: unknown): boolean {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const item = pending.pop();
    if (typeof item === 'string') {
      if (unstorable.test(item)) return true;
    } else if (Array.isArray(item)) {
      for (const child of item) pending.push(child);
    } else if (item !== null && typeof item === 'object') {
      for (const [key, child] of Object.entries(item)) pending.push(key, child);
    }
  }
  return false;
}

/** Every request body, whatever its type: 1 MiB holds any request the API takes many times over. */
export const maxBodyBytes = 1024 * 1024;

function bodyTooLarge(limit: number): Error {
  // The statusCode is what the error replies use for errors raised by the HTTP layer (413).
  return Object.assign(new Error(`Request body is too large: the limit is ${limit} bytes.`), { statusCode: 413 });
}

export function registerJsonBody(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  // Fastify matches a RegExp against the whole header, parameters included (`;version=1.0`).
  for (const type of ['application/json', /^application\/vnd\.openstack\.[a-z0-9.-]+\+json\s*(?:;|$)/]) {
    app.addContentTypeParser(type, { parseAs: 'string' }, (_request, body, done) => {
      const text = typeof body === 'string' ? body : body.toString('utf8');
      if (text.trim() === '') {
        done(null, undefined);
        return;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        done(new CofferError('BadRequest', 'Malformed message body: cannot understand JSON'), undefined);
        return;
      }
      if (holdsUnstorable(parsed)) {
        done(new CofferError('BadRequest', 'Malformed message body: strings cannot contain NUL characters or lone surrogates.'), undefined);
        return;
      }
      done(null, parsed);
    });
  }
  // Fastify enforces bodyLimit only for the bodies it reads itself (the JSON parsers above, with
  // parseAs); this one drains the stream, so it counts the bytes and stops at the same limit.
  app.addContentTypeParser('*', (request, payload, done) => {
    const limit = request.routeOptions.bodyLimit ?? maxBodyBytes;
    let received = 0;
    let finished = false;
    const finish = (err: Error | null) => {
      if (finished) return;
      finished = true;
      done(err, undefined);
    };
    payload.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > limit) {
        payload.pause();
        finish(bodyTooLarge(limit));
      }
    });
    payload.on('end', () => finish(null));
    payload.on('error', (err) => finish(err));
  });
}
