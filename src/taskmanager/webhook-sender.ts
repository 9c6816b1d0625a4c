import { createHmac } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import type { WebhookTarget } from '../common/index.js';

// One webhook attempt: a POST of the CloudEvent to the address the guard checked (never a
// second lookup), with a short timeout. Node's http client follows no redirects; a 3xx is an
// answer like any other non-2xx, so a hook cannot bounce Coffer to an address it may not reach.
//
// Signature: X-Coffer-Timestamp is the attempt's Unix time in seconds and X-Coffer-Signature is
// `sha256=` + hex HMAC-SHA256, keyed by the hook's secret, of `<timestamp>.<raw body>`. A receiver
// recomputes it over the bytes it got and refuses a timestamp more than a few minutes old, so a
// captured request cannot be replayed later; the CloudEvent id lets it drop a duplicate.

export const signatureHeader = 'x-coffer-signature';
export const timestampHeader = 'x-coffer-timestamp';

/** `sha256=<hex>` over `<timestamp>.<body>` */
export function webhookSignature(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export interface WebhookPost {
  target: WebhookTarget;
  body: string;
  secret: string;
  eventId: string;
  eventType: string;
  timestamp: number;
  timeoutMs: number;
}

/** Answers the response's status code; throws when no answer came (refused, reset, timed out, TLS). */
export function postWebhook(post: WebhookPost): Promise<number> {
  const { url, address, port } = post.target;
  const isHttps = url.protocol === 'https:';
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const headers = {
    host: url.host,
    'content-type': 'application/cloudevents+json; charset=utf-8',
    'content-length': String(Buffer.byteLength(post.body)),
    'user-agent': 'Coffer-Webhook/1.0',
    'x-coffer-event-id': post.eventId,
    'x-coffer-event-type': post.eventType,
    [timestampHeader]: String(post.timestamp),
    [signatureHeader]: webhookSignature(post.secret, post.timestamp, post.body),
  };
  const options = {
    host: address,
    port,
    path: `${url.pathname}${url.search}`,
    method: 'POST',
    headers,
    signal: AbortSignal.timeout(post.timeoutMs),
    // the certificate is checked against the URL's host name, not the address connected to
    ...(isHttps && isIP(hostname) === 0 ? { servername: hostname } : {}),
  };
  return new Promise<number>((resolve, reject) => {
    const onResponse = (response: IncomingMessage) => {
      // the body is not read: only the status counts, and a huge body must not hold the attempt
      response.destroy();
      resolve(response.statusCode ?? 0);
    };
    const req = isHttps ? httpsRequest(options, onResponse) : httpRequest(options, onResponse);
    req.on('error', (err) => reject(err.name === 'AbortError' ? new Error(`no answer within ${post.timeoutMs} ms`) : err));
    req.end(post.body);
  });
}
