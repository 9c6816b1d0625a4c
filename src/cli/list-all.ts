import type { ApiClient } from './api-client.js';
import type { PageLinks } from './api-types.js';

const maxPages = 10_000;

/**
 * Every item of a paginated Trove list. Trove caps pages at 20 items and names the next page in
 * `links[rel=next]`; only its `marker` is reused, because Trove forces that href to https. `path`
 * may carry a query (a filter); the marker is added to it.
 */
export async function listAll<T>(client: ApiClient, path: string, key: string): Promise<T[]> {
  const items: T[] = [];
  const seen = new Set<string>();
  let marker: string | undefined;
  for (let page = 0; page < maxPages; page += 1) {
    const url = marker === undefined ? path : `${path}${path.includes('?') ? '&' : '?'}marker=${encodeURIComponent(marker)}`;
    const body = await client.get<Record<string, unknown> & PageLinks>(url);
    const pageItems = body?.[key];
    if (Array.isArray(pageItems)) items.push(...(pageItems as T[]));
    marker = nextMarker(body);
    if (marker === undefined || seen.has(marker)) break;
    seen.add(marker);
  }
  return items;
}

function nextMarker(body: PageLinks | undefined): string | undefined {
  const next = body?.links?.find((link) => link.rel === 'next');
  if (next === undefined) return undefined;
  try {
    return new URL(next.href).searchParams.get('marker') ?? undefined;
  } catch {
    return undefined;
  }
}
