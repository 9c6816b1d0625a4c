// Trove's routes built with mapper.resource (datastores, mgmt, limits, and the databases, users
// and root extensions) accept a `.json` format suffix: `/datastores/x.json` is `/datastores/x`.
// Its explicitly connected routes (instances, flavors, backups, configurations …) do not
// (reference 1.1). The suffix is stripped from the raw path before routing, so a route needs no
// variant of its own; clients that mean a literal dot in a name send it as %2e, which stays.

const resourceStyle =
  /^\/v1\.0\/[^/]+\/(?:datastores|mgmt|limits|instances\/[^/]+\/(?:databases|users|root))(?:\/|\.json$|$)/;

export function stripFormatSuffix(url: string): string {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (!path.endsWith('.json') || !resourceStyle.test(path)) return url;
  return path.slice(0, -'.json'.length) + (q < 0 ? '' : url.slice(q));
}
