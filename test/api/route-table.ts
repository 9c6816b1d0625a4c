import type { FastifyInstance } from 'fastify';

// The routes an app serves, read from Fastify's own table, so that tests covering "every route"
// notice a route added without them.

/** `METHOD path` of every route in Fastify's table (HEAD answers come from GET routes). */
export function registeredRoutes(app: FastifyInstance): Set<string> {
  const routes = new Set<string>();
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^([│ ]*)(?:├── |└── )(.*?) \(([A-Z, ]+)\)$/u.exec(line);
    if (match === null) continue;
    const depth = [...match[1]!].length / 4;
    stack.length = depth;
    const segment = match[2]!;
    const parent = stack[depth - 1] ?? '';
    const path = parent === '/' && !segment.startsWith('/') ? `/${segment}` : `${parent}${segment}`;
    stack[depth] = path;
    for (const method of match[3]!.split(', ')) if (method !== 'HEAD') routes.add(`${method} ${path}`);
  }
  return routes;
}
