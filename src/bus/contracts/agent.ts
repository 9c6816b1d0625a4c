import { z } from 'zod';
import { call, defineService } from '../contract.js';

export const engineRef = z.object({
  /** datastore manager, e.g. "postgresql" */
  manager: z.string(),
  /** datastore version name, e.g. "15" */
  version: z.string(),
});

export const flavorSpec = z.object({
  id: z.string(),
  ramMb: z.number().int().positive(),
  vcpus: z.number().int().positive(),
});

export const serverInfo = z.object({
  instanceId: z.string(),
  host: z.string(),
  address: z.string(),
  port: z.number().int(),
});
export type ServerInfo = z.infer<typeof serverInfo>;

// Topic `agent.<host>`: the compute driver of one host.
export const agentContract = defineService('agent', '1.1', {
  /**
   * Idempotent: allocates (or returns the already allocated) directory and address, and starts
   * the instance's guest on `guest.<instanceId>`. It does not initialise the engine: that is
   * the guest's `prepare`.
   */
  createServer: call(
    z.object({
      instanceId: z.string(),
      engine: engineRef,
      flavor: flavorSpec,
      volumeSizeGb: z.number().int().positive(),
    }),
    serverInfo,
    30_000,
  ),
  /** Idempotent: stops the engine and the guest, removes the directory, frees the address. */
  deleteServer: call(z.object({ instanceId: z.string() }), z.object({ deleted: z.boolean() }), 60_000),
  /**
   * since 1.1: moves the instance to another version of its engine (engine.ts `upgrade`): its
   * guest closes, the engine stops, the data is moved, and a guest of the new version takes the
   * instance up again, starting the engine as its desired state says. On failure the instance
   * is taken up again on its old version, its data as it was, and the error says why.
   */
  upgradeServer: call(z.object({ instanceId: z.string(), version: z.string() }), z.object({ method: z.string() }), 6 * 60 * 60_000),
  /** the instances this agent hosts */
  listServers: call(z.object({}), z.array(serverInfo), 15_000),
});

export function agentTopic(host: string): string {
  return `agent.${host}`;
}
