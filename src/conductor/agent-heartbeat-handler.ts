import type { z } from 'zod';
import { engineVersionKey, type conductorContract, type EngineVersionReport } from '../bus/index.js';
import { newUuid } from '../common/index.js';
import type { Logger } from '../common/index.js';
import type { StateStore } from '../db/index.js';

type AgentHeartbeat = z.output<typeof conductorContract.methods.agentHeartbeat.input>;

/**
 * Records that an agent is alive and which engine versions its host can run (the taskmanager
 * places instances by that), and registers those versions as datastore versions. A version another agent runs stays active even when this host lacks its binary.
 */
export function agentHeartbeatHandler(store: StateStore, logger: Logger) {
  // Agents repeat the same engine list every few seconds: write it only when it changes.
  const lastReport = new Map<string, string>();
  return async (beat: AgentHeartbeat): Promise<void> => {
    const runnable = beat.engines.filter((e) => e.active).map((e) => engineVersionKey(e.manager, e.name));
    await store.agents.heartbeat(beat.host, new Date(), runnable, beat.contracts ?? {});
    // the views say so until each instance's own next heartbeat
    if (beat.adopting !== undefined) await store.serviceStatuses.markAwaitingAdoption(beat.adopting);
    const key = JSON.stringify(beat.engines);
    if (lastReport.get(beat.host) === key) return;
    for (const engine of beat.engines) await registerVersion(store, engine);
    lastReport.set(beat.host, key);
    logger.info({ host: beat.host, engines: beat.engines.map((e) => `${e.datastore} ${e.name}${e.active ? '' : ' (inactive)'}`) }, 'agent engines registered');
  };
}

async function registerVersion(store: StateStore, engine: EngineVersionReport): Promise<void> {
  const datastore = await store.datastores.ensureDatastore(engine.datastore, newUuid());
  const existing = await store.datastores.getVersionByName(datastore.id, engine.name);
  if (existing?.active && !engine.active) return;
  const version = await store.datastores.upsertVersion({
    id: existing?.id ?? newUuid(),
    datastoreId: datastore.id,
    name: engine.name,
    version: engine.version,
    manager: engine.manager,
    active: engine.active,
    inactiveReason: engine.active ? null : engine.inactiveReason,
    updatedAt: new Date(),
    // The API answers what a version cannot do from these, before any message reaches a guest.
    capabilities: engine.capabilities,
    parameters: engine.parameters,
  });
  if (version.active && datastore.defaultVersionId === null) {
    await store.datastores.setDefaultVersion(datastore.id, version.id);
  }
}
