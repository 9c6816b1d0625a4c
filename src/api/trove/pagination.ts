import type { FastifyRequest } from 'fastify';
import { CofferError } from '../../common/index.js';
import { queryParam } from '../query-param.js';
import type { Link } from './links.js';

// Marker pagination (reference 1.6): at most `pageSize` items per page whatever the client asks,
// and a `next` link only when another page follows.

const defaultPageSize = 20;

export function pageRequest(request: FastifyRequest, pageSize = defaultPageSize): { limit: number; marker?: string } {
  const rawLimit = queryParam(request.query, 'limit');
  let limit = pageSize;
  if (rawLimit !== undefined && rawLimit !== '') {
    if (!/^-?\d+$/.test(rawLimit)) throw new CofferError('BadRequest', `Invalid limit: ${rawLimit}.`);
    const asked = Number(rawLimit);
    if (asked > 0) limit = Math.min(asked, pageSize);
  }
  const marker = queryParam(request.query, 'marker');
  return marker === undefined || marker === '' ? { limit } : { limit, marker };
}

/** `https://<Host><path>?<the request's query with marker replaced>` */
export function nextPageLink(request: FastifyRequest, linkBase: string, marker: string): Link {
  const [path = '', query = ''] = request.url.split('?', 2);
  const params = new URLSearchParams(query);
  params.set('marker', marker);
  return { rel: 'next', href: `${linkBase}${path}?${params.toString()}` };
}
