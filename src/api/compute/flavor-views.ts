import type { FlavorRow } from '../../db/index.js';
import { computeLinks, type ComputeLinkContext } from './compute-links.js';
import { atLeast, type Microversion } from './microversion.js';

// Nova's flavor views (nova/api/openstack/compute/views/flavors.py). Coffer's flavors are all
// public and enabled, have no swap and no extra specs.

export interface FlavorViewContext extends ComputeLinkContext {
  version: Microversion;
}

export function flavorSummaryView(flavor: FlavorRow, ctx: FlavorViewContext) {
  return {
    id: flavor.id,
    name: flavor.name,
    ...(atLeast(ctx.version, 55) ? { description: null } : {}),
    links: computeLinks(ctx, 'flavors', flavor.id),
  };
}

export function flavorDetailView(flavor: FlavorRow, ctx: FlavorViewContext) {
  return {
    id: flavor.id,
    name: flavor.name,
    ram: flavor.ramMb,
    disk: flavor.diskGb,
    vcpus: flavor.vcpus,
    'OS-FLV-EXT-DATA:ephemeral': flavor.ephemeralGb,
    'OS-FLV-DISABLED:disabled': false,
    // an empty string until 2.75, which Coffer does not reach
    swap: '',
    rxtx_factor: 1.0,
    'os-flavor-access:is_public': true,
    ...(atLeast(ctx.version, 55) ? { description: null } : {}),
    ...(atLeast(ctx.version, 61) ? { extra_specs: {} } : {}),
    links: computeLinks(ctx, 'flavors', flavor.id),
  };
}
