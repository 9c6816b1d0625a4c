import type { FastifyRequest } from 'fastify';
import { CofferError } from '../../common/index.js';
import { headerValue } from '../auth-context.js';

// Nova's microversions (nova/api/openstack/api_version_request.py): a request names the version it
// wants in `OpenStack-API-Version: compute 2.X` (preferred) or the legacy
// `X-OpenStack-Nova-API-Version: 2.X`; none means 2.1, `latest` the maximum. Coffer answers up to
// 2.73: every field a server or flavor view gains up to there is served (2.74's create options and
// 2.75's query-parameter strictness are not).

export interface Microversion {
  major: number;
  minor: number;
}

export const minMicroversion: Microversion = { major: 2, minor: 1 };
export const maxMicroversion: Microversion = { major: 2, minor: 73 };

export function formatMicroversion(v: Microversion): string {
  return `${v.major}.${v.minor}`;
}

/** `v` is at least 2.`minor` */
export function atLeast(v: Microversion, minor: number): boolean {
  return v.major > 2 || (v.major === 2 && v.minor >= minor);
}

function compare(a: Microversion, b: Microversion): number {
  return a.major === b.major ? a.minor - b.minor : a.major - b.major;
}

/** The version of `compute` an `OpenStack-API-Version` header asks for (it may list services, comma-separated). */
function fromServiceHeader(value: string): string | undefined {
  for (const item of value.split(',')) {
    const [service, version] = item.trim().split(/\s+/, 2);
    if (service?.toLowerCase() === 'compute') return version ?? '';
  }
  return undefined;
}

/** Error with an HTTP status of its own: Nova's 406 for a version outside the range. */
class NotAcceptable extends Error {
  readonly statusCode = 406;
}

/** The microversion a request asks for: 400 for a malformed one, 406 for one outside 2.1..max (as Nova). */
export function requestedMicroversion(request: FastifyRequest): Microversion {
  const header = headerValue(request, 'openstack-api-version');
  const asked = (header === undefined ? undefined : fromServiceHeader(header)) ?? headerValue(request, 'x-openstack-nova-api-version');
  if (asked === undefined) return minMicroversion;
  const wanted = asked.trim();
  if (wanted.toLowerCase() === 'latest') return maxMicroversion;
  const match = /^([1-9]\d{0,2})\.(0|[1-9]\d{0,3})$/.exec(wanted);
  if (match === null) {
    throw new CofferError('BadRequest', `API Version String ${wanted.slice(0, 40)} is of invalid format. Must be of format MajorNum.MinorNum.`);
  }
  const version = { major: Number(match[1]), minor: Number(match[2]) };
  if (compare(version, minMicroversion) < 0 || compare(version, maxMicroversion) > 0) {
    throw new NotAcceptable(
      `Version ${formatMicroversion(version)} is not supported by the API. Minimum is ${formatMicroversion(minMicroversion)} and maximum is ${formatMicroversion(maxMicroversion)}.`,
    );
  }
  return version;
}

/** The headers every versioned answer carries (Nova's wsgi.Resource). */
export function microversionHeaders(v: Microversion): Record<string, string> {
  return {
    'openstack-api-version': `compute ${formatMicroversion(v)}`,
    'x-openstack-nova-api-version': formatMicroversion(v),
    vary: 'OpenStack-API-Version, X-OpenStack-Nova-API-Version',
  };
}
