import type { FastifyInstance } from 'fastify';
import { troveTimestamp } from '../../common/index.js';
import { requireAdmin } from '../admin-context.js';
import { requireAuth } from '../auth-context.js';
import type { TroveDeps } from './trove-deps.js';

// Trove's management list of compute hosts (`GET /mgmt/hosts`: name and instance count), each
// host being a Coffer agent, with Coffer's additions: when it last reported, whether that is
// recent enough for it to take instances, and what it can run. Admins only.

/** an agent that reported within this is alive (it reports every few seconds) */
const aliveWindowMs = 60_000;

export async function mgmtHostRoutes(app: FastifyInstance, deps: TroveDeps): Promise<void> {
  app.get('/mgmt/hosts', async (request) => {
    requireAdmin(requireAuth(request));
    const now = Date.now();
    const [agents, instances] = await Promise.all([deps.store.agents.listAlive(new Date(0)), deps.store.instances.listAll({ deleted: false })]);
    const counts = new Map<string, number>();
    for (const instance of instances) if (instance.host !== null) counts.set(instance.host, (counts.get(instance.host) ?? 0) + 1);
    return {
      hosts: agents.map((agent) => ({
        name: agent.host,
        instanceCount: counts.get(agent.host) ?? 0,
        last_seen: troveTimestamp(agent.lastSeenAt),
        alive: now - agent.lastSeenAt.getTime() <= aliveWindowMs,
        engines: agent.engines,
        contracts: agent.contracts,
      })),
    };
  });
}
