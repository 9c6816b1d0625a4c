import assert from 'node:assert/strict';
import {
  BusKey,
  conductorContract,
  connectTransport,
  conductorTopic,
  createRpcClient,
  guestContract,
  guestTopic,
  serveRpc,
  type RestoreLinkSpec,
  type RpcClient,
} from '../../src/bus/index.js';
import { createWriteStream } from 'node:fs';
import { pino } from 'pino';
import { silentLogger } from '../../src/common/index.js';
import type { BackupStorage } from '../../src/backup/index.js';
import { startGuest, type Guest, type GuestOptions } from '../../src/guest/index.js';
import { until } from '../support/wait.js';
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
  /** every backup report, in order */
  backupReports: { backupId: string; state: string; facts?: Record<string, string>; message?: string }[];
  /** every archived-log report's time, in order */
  walArchived: string[];
  /** the guest's log records at info and above, in order (with `captureLog`) */
  logs: Record<string, unknown>[];
  /** closes the conductor and the bus; the test stops or destroys the guest first */
  closeBus(): Promise<void>;
}

type LeaseAnswer = { lease: 'held'; ttlMs: number } | { lease: 'none' } | { lease: 'fenced' };

export async function startBusGuest(
  options: Pick<GuestOptions, 'instance' | 'engine' | 'runner' | 'desiredState'> &
    Partial<Pick<GuestOptions, 'certificates' | 'warm' | 'backups' | 'walShipIntervalMs' | 'leaseTimes' | 'checkRound' | 'idleProbeIntervalMs' | 'heartbeatIntervalMs' | 'logTrimIntervalMs'>> & {
      /** what the conductor answers the guest's lease renewals (default: no lease needed); throwing: no answer */
      renewLease?: (request: { holdMs?: number | undefined }) => Promise<LeaseAnswer>;
      /** keep the guest's log records in `logs` */
      captureLog?: boolean;
    },
): Promise<BusGuest> {
  const { renewLease, captureLog, ...guestOptions } = options;
  const logs: Record<string, unknown>[] = [];
  const transport = await connectTransport('memory:', { key: BusKey.generate() });
  const beats: BusGuest['beats'] = [];
  const progress: BusGuest['progress'] = [];
  const backupReports: BusGuest['backupReports'] = [];
  const walArchived: string[] = [];
  const conductor = await serveRpc(transport, conductorContract, conductorTopic, {
    heartbeat: async ({ status, message, tls }) => {
      beats.push({ status, message, ...(tls === undefined ? {} : { tls }) });
    },
    heartbeats: async (args) => {
      for (const { status, message, tls } of args.beats) beats.push({ status, message, ...(tls === undefined ? {} : { tls }) });
    },
    agentHeartbeat: async () => undefined,
    reportProgress: async ({ step, percent }) => {
      progress.push({ step, percent });
    },
    updateBackup: async ({ backupId, state, facts, message }) => {
      backupReports.push({ backupId, state, ...(facts === undefined ? {} : { facts }), ...(message === undefined ? {} : { message }) });
    },
    walArchived: async ({ through }) => {
      walArchived.push(through);
    },
    renewLease: async ({ holdMs }) => (renewLease === undefined ? { lease: 'none' as const } : renewLease({ holdMs })),
  });
  const closeBus = async () => {
    await conductor.close();
    await transport.close();
  };
  try {
    const guest = await startGuest({
      ...guestOptions,
      transport,
      // COFFER_TEST_LOG=<file>: the guest's debug log goes there, for a test being debugged
      logger:
        captureLog === true
          ? pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) })
          : process.env.COFFER_TEST_LOG === undefined
            ? silentLogger()
            : pino({ level: 'debug' }, createWriteStream(process.env.COFFER_TEST_LOG, { flags: 'a' })),
      // never fires during a test unless it says so (a round of checks it drives itself, say):
      // the beats recorded are the ones the guest sends on a change
      heartbeatIntervalMs: guestOptions.heartbeatIntervalMs ?? 600_000,
      saveDesiredState: async () => undefined,
      defaultClientCidrs: ['127.0.0.0/8'],
      rootAllowed: true,
      certificates: options.certificates ?? (await testCertificates(options.instance.address)),
    });
    const rpc = createRpcClient(transport, guestContract, guestTopic(options.instance.instanceId));
    return { guest, rpc, beats, progress, backupReports, walArchived, logs, closeBus };
  } catch (err) {
    await closeBus();
    throw err;
  }
}

/**
 * Has `bus` take a full backup into `storage` (archiving its log from it on under `walPrefix`
 * when given) and answers the link a restore reads it by.
 */
export async function fullBackup(
  bus: BusGuest,
  storage: BackupStorage,
  target: { backupId: string; container: string; objectName: string; wrappedKey: string; projectId: string; walPrefix?: string },
): Promise<RestoreLinkSpec> {
  const { backupId, container, objectName, wrappedKey, projectId, walPrefix } = target;
  await bus.rpc.createBackup({
    target: { backupId, container, objectName, wrappedKey },
    kind: 'full',
    projectId,
    ...(walPrefix === undefined ? {} : { walArchive: { container, prefix: walPrefix } }),
  });
  await until(`backup ${backupId} ends`, () => bus.backupReports.some((r) => r.backupId === backupId && (r.state === 'COMPLETED' || r.state === 'FAILED')), 180_000);
  const done = bus.backupReports.find((r) => r.backupId === backupId && r.state === 'COMPLETED');
  assert.ok(done?.facts !== undefined, JSON.stringify(bus.backupReports.at(-1)));
  const stored = await storage.head(container, objectName);
  assert.ok(stored !== undefined, `${objectName} is stored`);
  return { backupId, container, objectName, sha256: stored.sha256, wrappedKey, kind: 'full', facts: done.facts };
}
