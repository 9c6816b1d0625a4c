import type { DatastoreRow, DatastoreVersionRow } from '../../db/index.js';
import { resourceLinks, type LinkContext } from './links.js';

// Trove's datastore and datastore-version views (reference 2.7, trove/datastore/views.py).

export interface DatastoreViewContext extends LinkContext {
  isAdmin: boolean;
}

export function datastoreVersionView(version: DatastoreVersionRow, ctx: DatastoreViewContext, withDatastoreId: boolean) {
  return {
    id: version.id,
    name: version.name,
    version: version.version,
    links: resourceLinks(ctx, 'datastores/versions', version.id),
    ...(withDatastoreId ? { datastore: version.datastoreId } : {}),
    ...(ctx.isAdmin
      ? {
          active: version.active,
          // Trove's image fields have no meaning without Glance; kept for clients that read them.
          packages: '',
          image: null,
          image_tags: [],
          // Coffer's addition: why a version cannot run (its engine binary is missing ...).
          ...(version.inactiveReason === null ? {} : { inactive_reason: version.inactiveReason }),
        }
      : {}),
  };
}

export function datastoreView(datastore: DatastoreRow, versions: DatastoreVersionRow[], ctx: DatastoreViewContext) {
  return {
    id: datastore.id,
    name: datastore.name,
    links: resourceLinks(ctx, 'datastores', datastore.id),
    versions: versions.map((v) => datastoreVersionView(v, ctx, false)),
    ...(datastore.defaultVersionId === null ? {} : { default_version: datastore.defaultVersionId }),
  };
}
