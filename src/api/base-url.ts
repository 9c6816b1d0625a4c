import type { FastifyRequest } from 'fastify';

/** The base URL clients should use (no trailing slash): the configured one, else the request's own. */
export function publicBase(request: FastifyRequest, publicUrl: string | undefined): string {
  if (publicUrl !== undefined && publicUrl !== '') return publicUrl.replace(/\/+$/, '');
  return `${request.protocol}://${request.host || 'localhost'}`;
}

/**
 * Trove builds resource links from the request's Host header and always with https (reference
 * 1.5, trove/common/views.py create_links), whatever the scheme the request came in on.
 */
export function troveLinkBase(request: FastifyRequest): string {
  return `https://${request.host || 'localhost'}`;
}
