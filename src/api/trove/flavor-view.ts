import type { FlavorRow } from '../../db/index.js';
import { resourceLinks, type LinkContext } from './links.js';

/**
 * Trove's flavor view (reference 2.6): `id` is a number only for all-digit ids without a leading
 * zero, else null, and clients fall back to `str_id`.
 */
export function flavorView(flavor: FlavorRow, ctx: LinkContext) {
  return {
    id: /^[1-9][0-9]*$/.test(flavor.id) ? Number(flavor.id) : null,
    str_id: flavor.id,
    name: flavor.name,
    ram: flavor.ramMb,
    vcpus: flavor.vcpus,
    disk: flavor.diskGb,
    ephemeral: flavor.ephemeralGb,
    links: resourceLinks(ctx, 'flavors', flavor.id),
  };
}
