import { pipeline, Transform, type Readable, type Writable } from 'node:stream';
import { backupKeyId, decodeBackup, decodeBackupInto, startBackupEncoding, unwrapKey, type BackupStorage, type MasterKey } from '../backup/index.js';
import type { conductorContract, CreateBackupInput, PrepareInput, RpcClient } from '../bus/index.js';
import { CofferError, type Logger } from '../common/index.js';
import type { BackupAdmin, RestoreLink } from './engines/engine.js';
import type { ReportProgress } from './progress-reporter.js';

// How a guest takes a backup and reads one back. The engine's tool runs as the engine's OS user
// and writes to a pipe; everything after it (compression, encryption with the project's key,
// the upload with the storage's credentials) runs in the guest's host, out of the engine user's
// reach: a tenant who runs programs as that user sees neither the key nor the credentials.

/** What a host gives its guests for backups: where they live, and the key that unwraps each project's key. */
export interface GuestBackupHost {
  storage: BackupStorage;
  masterKey: MasterKey;
}

const reportEveryMs = 2000;
/**
 * A backup whose tool writes nothing for a while (mariadb-backup waiting on a tenant's table
 * lock, a checkpoint of a large buffer pool) is still reported this often: the taskmanager fails
 * a backup it hears nothing of for two minutes, taking its guest for gone.
 */
const defaultKeepAliveMs = 30_000;

export interface BackupJob {
  admin: BackupAdmin;
  host: GuestBackupHost;
  input: CreateBackupInput;
  instanceId: string;
  /** the instance's data now, in bytes: what progress is measured against */
  dataBytes: number;
  conductor: RpcClient<typeof conductorContract>;
  progress: ReportProgress;
  signal: AbortSignal;
  log: Logger;
  /** how often a backup is reported while nothing else is (default 30 s) */
  keepAliveMs?: number;
  /** where the instance's log is archived from this backup on: recorded with it when the engine reports its log archived (`wal-archiving: on`) */
  archiveFacts?: Record<string, string>;
}

/**
 * Takes the backup and reports it: BUILDING as it goes, COMPLETED only once the object is stored
 * whole and the engine's tool exited successfully, FAILED (with the object removed) otherwise.
 * Never throws: every outcome is a report.
 */
export async function runBackup(job: BackupJob): Promise<void> {
  const { input, host, log } = job;
  const { backupId, container, objectName } = input.target;
  let lastReport = Date.now();
  let storedBytes = 0;
  const report = (update: Omit<Parameters<typeof job.conductor.updateBackup>[0], 'instanceId' | 'backupId'>) => {
    lastReport = Date.now();
    return job.conductor.updateBackup({ instanceId: job.instanceId, backupId, ...update }, { requestId: `req-backup-${backupId}`, instanceId: job.instanceId });
  };
  const keepAliveMs = job.keepAliveMs ?? defaultKeepAliveMs;
  const keepAlive = setInterval(() => {
    if (Date.now() - lastReport < keepAliveMs / 2) return;
    report({ state: 'BUILDING', bytes: storedBytes }).catch((err: unknown) => log.warn({ err }, 'backup keep-alive report not sent'));
  }, keepAliveMs);
  try {
    await report({ state: 'BUILDING', dataBytes: job.dataBytes });
    job.progress('backing up', 0);
    const key = unwrapKey(host.masterKey, input.target.wrappedKey, input.projectId);
    // zstd first: a tool whose output the engine does not watch then writes into it directly
    const encoding = startBackupEncoding({ compression: 'zstd', key, keyId: backupKeyId(key), signal: job.signal });
    const run = await job.admin
      .start({ ...(input.parentFacts === undefined ? {} : { parent: input.parentFacts }), signal: job.signal, output: encoding.input })
      .catch((err: unknown) => {
        encoding.cancel();
        throw err;
      });
    let body: Readable;
    if (run.wroteToOutput === true) {
      body = encoding.fedDirectly();
      // it carries only the tool's end; read, so that it ends and closes
      run.stream.resume();
    } else {
      body = encoding.from(run.stream);
    }
    // Which side failed first decides the reason given. A tool that fails while the upload still
    // reads its output failed on its own; one that fails after the upload gave up on it (a
    // storage gone silent, say: the upload destroys what it reads) was only stopped by that,
    // and its "killed" says nothing.
    let toolFailedFirst: { err: unknown } | undefined;
    // a tool that fails must not leave its `finished` unobserved while the upload is torn down
    const finished = run.finished.then(
      (facts) => ({ facts }),
      (err: unknown) => {
        if (!body.destroyed) toolFailedFirst = { err };
        return { err };
      },
    );
    const stored = await host.storage
      .put(container, objectName, body, {
        metadata: { 'backup-id': backupId, kind: input.kind },
        signal: job.signal,
        onProgress: (bytes: number) => {
          storedBytes = bytes;
          if (Date.now() - lastReport < reportEveryMs) return;
          report({ state: 'BUILDING', bytes }).catch((err: unknown) => log.warn({ err }, 'backup progress report not sent'));
          // compressed bytes against the raw data: a rough measure, held short of done until it is
          if (job.dataBytes > 0) job.progress('backing up', Math.min(95, Math.round((bytes / job.dataBytes) * 100)));
        },
      })
      .catch(async (err: unknown) => {
        // the upload's side first, so that the tool stopped next is known to be stopped by it
        body.destroy();
        run.stream.destroy();
        await finished;
        // the tool's own reason, when it failed first, says more than the broken upload
        throw toolFailedFirst === undefined ? err : toolFailedFirst.err;
      });
    const outcome = await finished;
    // nothing reports the backup running once it has ended
    clearInterval(keepAlive);
    if ('err' in outcome) {
      await host.storage.delete(container, objectName).catch((err: unknown) => log.warn({ err }, 'could not remove the object of a failed backup'));
      throw outcome.err;
    }
    const facts = outcome.facts['wal-archiving'] === 'on' ? { ...outcome.facts, ...job.archiveFacts } : outcome.facts;
    await report({ state: 'COMPLETED', bytes: stored.size, sha256: stored.sha256, facts });
    job.progress('backup stored', 100);
    log.info({ bytes: stored.size }, 'backup stored');
  } catch (err) {
    log.error({ err }, 'backup failed');
    const message = (err instanceof Error ? err.message : String(err)).replace(/\n/g, ' ').slice(0, 1000);
    clearInterval(keepAlive);
    await report({ state: 'FAILED', message }).catch((reportErr: unknown) => log.error({ err: reportErr }, 'could not report a failed backup'));
  }
}

/** Told how many of a restore chain's stored bytes have been read, of how many; must not throw. */
export type RestoreProgress = (readBytes: number, totalBytes: number) => void;

/**
 * The chain a prepare restores, each link opened when the engine reaches it: read from storage
 * with its checksum checked as it streams, and decrypted with the project's key (each frame is
 * authenticated before the engine sees a byte of it). `onProgress` hears of the stored bytes
 * read across the whole chain, against the sizes the storage holds for it.
 */
export function restoreChain(
  host: GuestBackupHost,
  restore: NonNullable<PrepareInput['restore']>,
  signal: AbortSignal,
  onProgress?: RestoreProgress,
): RestoreLink[] {
  const meter = onProgress === undefined ? undefined : chainMeter(host, restore.chain, onProgress);
  return restore.chain.map((link) => {
    const read = async () => {
      const key = unwrapKey(host.masterKey, link.wrappedKey, restore.projectId);
      const stored = await host.storage.get(link.container, link.objectName, { expectedSha256: link.sha256, signal });
      return { key, stored: meter === undefined ? stored : await meter(stored) };
    };
    return {
      kind: link.kind,
      facts: link.facts,
      open: async (): Promise<Readable> => {
        const { key, stored } = await read();
        return decodeBackup(stored, { key, signal });
      },
      // zstd writes into the restoring process itself: the guest handles only the compressed bytes
      writeTo: async (stdin: Writable): Promise<void> => {
        const { key, stored } = await read();
        await decodeBackupInto(stored, stdin, { key, signal });
      },
    };
  });
}

/**
 * Counts the bytes each link's stored stream yields, reporting at most every two seconds and
 * once more at the end of each link. The total is the sizes the storage gives for the chain's
 * objects, asked once, when the first link is read.
 */
function chainMeter(host: GuestBackupHost, chain: NonNullable<PrepareInput['restore']>['chain'], onProgress: RestoreProgress) {
  let total: Promise<number> | undefined;
  let read = 0;
  let lastReport = 0;
  return async (stored: Readable): Promise<Readable> => {
    total ??= Promise.all(chain.map((link) => host.storage.head(link.container, link.objectName))).then((objects) =>
      objects.reduce((sum, object) => sum + (object?.size ?? 0), 0),
    );
    const totalBytes = await total;
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        read += chunk.length;
        if (Date.now() - lastReport >= reportEveryMs) {
          lastReport = Date.now();
          onProgress(read, Math.max(read, totalBytes));
        }
        done(null, chunk);
      },
      flush(done) {
        onProgress(read, Math.max(read, totalBytes));
        done();
      },
    });
    // either side's error (a checksum mismatch, an abort, a reader that gives up) ends both;
    // whoever reads the count sees it
    return pipeline(stored, counted, () => undefined);
  };
}

export const backupsNotOnHost = () =>
  new CofferError('NotImplemented', 'Backups are not configured on this host: start its agent with a backup storage and a master key file.');
