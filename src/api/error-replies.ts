import { STATUS_CODES } from 'node:http';
import { isCofferError, type ErrorCode } from '../common/index.js';
import { errorStatus, faultByStatus } from './error-status.js';

// Turns whatever a handler threw into one of the two error bodies the API speaks: Trove's
// `{"<fault>":{"code","message"}}` under /v1.0 and Keystone's `{"error":{"code","title","message"}}`
// under /identity. Internal failures never reach the client beyond a request id to quote.

export interface ErrorReply {
  status: number;
  headers: Record<string, string>;
  body: unknown;
  /** true when the failure is ours (5xx): the caller logs it with its cause */
  internal: boolean;
}

export interface ErrorReplyContext {
  requestId: string;
  /** where to authenticate, for the WWW-Authenticate header of a 401 */
  identityUri: string;
}

export const authRequiredMessage = 'The request you have made requires authentication.';

interface Classified {
  status: number;
  fault: string;
  message: string;
  code: ErrorCode | undefined;
}

function classify(err: unknown): Classified {
  if (isCofferError(err)) {
    const mapped = errorStatus[err.code];
    return { ...mapped, message: err.message, code: err.code };
  }
  // Errors raised by Fastify itself (body too large, unsupported media type ...) carry a 4xx status.
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const message = err instanceof Error ? err.message : (STATUS_CODES[status] ?? 'Bad Request');
    return { status, fault: faultByStatus[status] ?? 'badRequest', message, code: undefined };
  }
  return { status: 500, fault: 'instanceFault', message: '', code: 'Internal' };
}

function wwwAuthenticate(ctx: ErrorReplyContext): Record<string, string> {
  return { 'www-authenticate': `Keystone uri="${ctx.identityUri}"` };
}

export function troveErrorReply(err: unknown, ctx: ErrorReplyContext): ErrorReply {
  const c = classify(err);
  if (c.code === 'Unauthorized') {
    // Token failures are answered by keystonemiddleware in front of Trove, in Keystone's shape.
    return {
      status: 401,
      headers: wwwAuthenticate(ctx),
      body: { error: { code: 401, title: 'Unauthorized', message: authRequiredMessage } },
      internal: false,
    };
  }
  if (c.status >= 500 && c.status !== 501 && c.status !== 503) {
    const message =
      `Internal Server Error. Please keep this ID to help us figure out what went wrong: (${ctx.requestId}).`;
    return { status: 500, headers: {}, body: { instanceFault: { code: 500, message } }, internal: true };
  }
  return { status: c.status, headers: {}, body: { [c.fault]: { code: c.status, message: c.message } }, internal: false };
}

export function keystoneErrorReply(err: unknown, ctx: ErrorReplyContext): ErrorReply {
  const c = classify(err);
  const internal = c.status >= 500 && c.status !== 501 && c.status !== 503;
  const status = internal ? 500 : c.status;
  const message = internal ? 'An unexpected error prevented the server from fulfilling your request.' : c.message;
  return {
    status,
    headers: status === 401 ? wwwAuthenticate(ctx) : {},
    body: { error: { code: status, title: STATUS_CODES[status] ?? 'Error', message } },
    internal,
  };
}

/**
 * Nova's error bodies: the same `{"<fault>":{"code","message"}}` as Trove's, with Nova's
 * `computeFault` for its own failures and for statuses it has no name for (406 for a microversion
 * out of range).
 */
export function computeErrorReply(err: unknown, ctx: ErrorReplyContext): ErrorReply {
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  if (status === 406 && err instanceof Error) {
    return { status: 406, headers: {}, body: { computeFault: { code: 406, message: err.message } }, internal: false };
  }
  const out = troveErrorReply(err, ctx);
  const body = out.body as Record<string, unknown>;
  if (out.status >= 500 && 'instanceFault' in body) {
    return { ...out, body: { computeFault: body.instanceFault } };
  }
  return out;
}
