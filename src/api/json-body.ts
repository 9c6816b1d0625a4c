import type { FastifyInstance } from 'fastify';
import { CofferError } from '../common/index.js';

// Request bodies are JSON (application/json or Trove's application/vnd.openstack.trove+json).
// Malformed JSON is Trove's MalformedRequestBody (400); an empty body is no body; a body of any
// other type is ignored, as Trove ignores bodies it has no deserializer for (reference 1.1).

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
      try {
        done(null, JSON.parse(text));
      } catch {
        done(new CofferError('BadRequest', 'Malformed message body: cannot understand JSON'), undefined);
      }
    });
  }
  app.addContentTypeParser('*', (_request, payload, done) => {
    payload.resume();
    payload.on('end', () => done(null, undefined));
    payload.on('error', (err) => done(err, undefined));
  });
}
