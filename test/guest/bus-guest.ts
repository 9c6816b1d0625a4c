import {
  BusKey,
  conductorContract,
  connectTransport,
  conductorTopic,
  createRpcClient,
  guestContract,
  guestTopic,
  serveRpc,
  type RpcClient,
} from '../../src/bus/index.js';
import { silentLogger } from '../../src/common/index.js';
import { startGuest, type Guest, type GuestOptions } from '../../src/guest/index.js';
import { testCertificates } from '../support/test-ca.js';

// A guest served on an in-process bus as its agent would start it (signed, as every role's bus
// is), beside a conductor that only records heartbeats: the guest tests call it over the bus,
// as the API and taskmanager do.

export interface BusGuest {
  guest: Guest;
  rpc: RpcClient<typeof guestContract>;
  /** every heartbeat's status, message and TLS report, in order */
  beats: { status: string; message?: string; tls?: { caCertificate: string; expiresAt: string; port: number } }[];
  /** every progress report's step and percent, in order */
  progress: { step: string; percent: number }[];
  /** closes the conductor and the bus; the test stops or destroys the guest first */
  closeBus(): Promise<void>;
}

export async function startBusGuest(
  options: Pick<GuestOptions, 'instance' | 'engine' | 'runner' | 'desiredState'> & Partial<Pick<GuestOptions, 'certificates' | 'warm'>>,
): Promise<BusGuest> {
  const transport = await connectTransport('memory:', { key: BusKey.generate() });
  const beats: BusGuest['beats'] = [];
  const progress: BusGuest['progress'] = [];
  const conductor = await serveRpc(transport, conductorContract, conductorTopic, {
    heartbeat: async ({ status, message, tls }) => {
      beats.push({ status, message, ...(tls === undefined ? {} : { tls }) });
    },
    agentHeartbeat: async () => undefined,
    reportProgress: async ({ step, percent }) => {
      progress.push({ step, percent });
    },
    updateBackup: async () => undefined,
  });
  const closeBus = async () => {
    await conductor.close();
    await transport.close();
  };
  try {
    const guest = await startGuest({
      ...options,
      transport,
      logger: silentLogger(),
      // never fires during a test: the beats recorded are the ones the guest sends on a change
      heartbeatIntervalMs: 600_000,
      saveDesiredState: async () => undefined,
      defaultClientCidrs: ['127.0.0.0/8'],
      rootAllowed: true,
      certificates: options.certificates ?? (await testCertificates(options.instance.address)),
    });
    return { guest, rpc: createRpcClient(transport, guestContract, guestTopic(options.instance.instanceId)), beats, progress, closeBus };
  } catch (err) {
    await closeBus();
    throw err;
  }
}
