// Trove's resource links (trove/common/views.py create_links): a tenant-scoped `self` and an
// unscoped `bookmark`, both from the https base built from the request's Host.

export interface Link {
  href: string;
  rel: string;
}

export interface LinkContext {
  /** `https://<Host>` */
  linkBase: string;
  tenantId: string;
}

export function resourceLinks(ctx: LinkContext, resourcePath: string, id: string): Link[] {
  return [
    { href: `${ctx.linkBase}/v1.0/${ctx.tenantId}/${resourcePath}/${id}`, rel: 'self' },
    { href: `${ctx.linkBase}/${resourcePath}/${id}`, rel: 'bookmark' },
  ];
}
