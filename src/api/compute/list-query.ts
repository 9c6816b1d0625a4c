import { CofferError } from '../../common/index.js';
import { queryParam } from '../query-param.js';

// The paging parameters of Nova's lists (nova/api/openstack/common.py get_limit_and_marker):
// `limit` at most max_limit (1000), `marker` the id of the last item seen.

const maxLimit = 1000;

export function limitAndMarker(query: unknown): { limit: number; marker: string | undefined } {
  const raw = queryParam(query, 'limit');
  let limit = maxLimit;
  if (raw !== undefined) {
    if (!/^-?\d+$/.test(raw)) throw new CofferError('BadRequest', 'limit param must be an integer');
    const asked = Number(raw);
    if (asked < 0) throw new CofferError('BadRequest', 'limit param must be positive');
    limit = Math.min(asked, maxLimit);
  }
  const marker = queryParam(query, 'marker');
  return { limit, marker: marker === '' ? undefined : marker };
}

/** The page after `marker` of an ordered list; Nova answers an unknown marker with 400. */
export function pageAfter<T>(items: readonly T[], idOf: (item: T) => string, limit: number, marker: string | undefined): T[] {
  let start = 0;
  if (marker !== undefined) {
    const at = items.findIndex((item) => idOf(item) === marker);
    if (at < 0) throw new CofferError('BadRequest', `marker [${marker}] not found`);
    start = at + 1;
  }
  return items.slice(start, start + limit);
}

/** oslo's bool_from_string(strict=True), as Nova reads all_tenants: an empty value is true. */
export function strictBool(value: string): boolean {
  const v = value.trim().toLowerCase();
  if (v === '' || ['1', 't', 'true', 'on', 'y', 'yes'].includes(v)) return true;
  if (['0', 'f', 'false', 'off', 'n', 'no'].includes(v)) return false;
  throw new CofferError(
    'BadRequest',
    `Invalid input received: Unrecognized value '${value.slice(0, 40)}', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'`,
  );
}
