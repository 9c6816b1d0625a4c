import type { Link } from '../trove/links.js';

// Nova's resource links (nova/api/openstack/common.py ViewBuilder): `self` under /v2.1 and an
// unversioned `bookmark`, each with the project id only when the request's URL carried one.

export interface ComputeLinkContext {
  /** the public base URL, no trailing slash */
  base: string;
  /** the project id of the request's URL (`/v2.1/{project_id}/servers`), undefined without one */
  urlProjectId: string | undefined;
}

function projectPart(ctx: ComputeLinkContext): string {
  return ctx.urlProjectId === undefined ? '' : `/${ctx.urlProjectId}`;
}

export function computeLinks(ctx: ComputeLinkContext, collection: 'servers' | 'flavors', id: string): Link[] {
  return [
    { rel: 'self', href: `${ctx.base}/v2.1${projectPart(ctx)}/${collection}/${id}` },
    { rel: 'bookmark', href: `${ctx.base}${projectPart(ctx)}/${collection}/${id}` },
  ];
}

export function bookmarkLink(ctx: ComputeLinkContext, collection: 'servers' | 'flavors', id: string): Link {
  return { rel: 'bookmark', href: `${ctx.base}${projectPart(ctx)}/${collection}/${id}` };
}

/** Nova's `<collection>_links`: a `next` link when the page is full (Nova adds one whenever it is). */
export function nextLink(ctx: ComputeLinkContext, collection: string, requestUrl: string, marker: string): Link {
  const query = requestUrl.split('?', 2)[1] ?? '';
  const params = new URLSearchParams(query);
  params.set('marker', marker);
  return { rel: 'next', href: `${ctx.base}/v2.1${projectPart(ctx)}/${collection}?${params.toString()}` };
}
