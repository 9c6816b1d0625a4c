import type { FastifyRequest } from 'fastify';
import { nextPageLink, pageRequest } from './pagination.js';
import type { Link } from './links.js';

// Pages of lists the guest returns whole (databases, users): sorted by their key, the page
// starts after the marker key, and a `next` link follows only when more items remain
// (reference 1.6: databases by name, users by `name@host`).

export interface ListPage<T> {
  items: T[];
  links?: Link[];
}

export function pageOfList<T>(request: FastifyRequest, linkBase: string, all: readonly T[], keyOf: (item: T) => string): ListPage<T> {
  const { limit, marker } = pageRequest(request);
  // Code-point order, as the marker comparison below; locale order would make pages overlap.
  const sorted = [...all].sort((a, b) => compare(keyOf(a), keyOf(b)));
  const rest = marker === undefined ? sorted : sorted.filter((item) => compare(keyOf(item), marker) > 0);
  const items = rest.slice(0, limit);
  const last = items[items.length - 1];
  if (rest.length <= limit || last === undefined) return { items };
  return { items, links: [nextPageLink(request, linkBase, keyOf(last))] };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
