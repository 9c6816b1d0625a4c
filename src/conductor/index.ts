// The conductor role: the only writer of what guests and agents report (heartbeats become
// service statuses, with the volume usage and engine health they carry, which the API's views
// read instead of asking guests; agent reports become datastore versions; progress reports a
// running task's progress, backup reports a backup's state), so they need no database access.
import { conductorContract, conductorTopic, serveRpc } from '../bus/index.js';
import type { Transport } from '../bus/index.js';
import { primaryLeaseTimes, type Logger, type PrimaryLeaseTimes } from '../common/index.js';
import type { InstanceHeartbeat, StateStore } from '../db/index.js';
import { agentHeartbeatHandler } from './agent-heartbeat-handler.js';
import { backupUpdateHandler } from './backup-update-handler.js';
import { walArchivedHandler } from './wal-archived-handler.js';
import { heartbeatHandlers } from './heartbeat-handler.js';
import { leaseHandler } from './lease-handler.js';
import { instanceStatusPublisher } from './instance-status-publisher.js';
import { progressHandler } from './progress-handler.js';

export interface ConductorOptions {
  store: StateStore;
  transport: Transport;
  logger: Logger;
  /** the primary lease's times (tests shorten them); default primaryLeaseTimes */
  leaseTimes?: PrimaryLeaseTimes;
}

export interface Conductor {
  /**
   * Every live instance's last heartbeat, from the state database, so that any conductor of a
   * deployment tells the same (each hears only its share of the heartbeats): its /metrics.
   */
  heartbeats(): Promise<InstanceHeartbeat[]>;
  stop(): Promise<void>;
}

export async function startConductor(options: ConductorOptions): Promise<Conductor> {
  const { store, transport, logger } = options;
  const beats = heartbeatHandlers(store, logger, instanceStatusPublisher(transport, logger));
  const subscription = await serveRpc(
    transport,
    conductorContract,
    conductorTopic,
    {
      heartbeat: beats.one,
      heartbeats: beats.many,
      agentHeartbeat: agentHeartbeatHandler(store, logger),
      reportProgress: progressHandler(store, logger),
      updateBackup: backupUpdateHandler(store, transport, logger),
      walArchived: walArchivedHandler(store, logger),
      renewLease: leaseHandler(store, logger, options.leaseTimes ?? primaryLeaseTimes),
    },
    logger,
  );
  return { heartbeats: () => store.conductorLastSeen.listHeartbeats(), stop: () => subscription.close() };
}
