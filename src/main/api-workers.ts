import cluster, { type Worker } from 'node:cluster';
import { CofferError, type Logger } from '../common/index.js';

// Trove's api_workers: `coffer api --api-workers N` runs N API processes that share the port
// (node:cluster; the first process accepts connections and hands them out in turn), so the API
// uses N cores. Each worker is a whole `coffer api` (same flags, its own state-database pool and
// bus connection), as N processes behind a balancer would be; nothing is shared between them
// but the port. The first worker starts alone, so the state database is migrated and the admin
// bootstrapped once; the others start once it listens.

/** the message a worker sends to the primary once its API listens */
const listeningMessage = 'coffer-api-listening';
/** which worker a process is (0 is the first), given to it at fork */
const workerIndexEnv = 'COFFER_API_WORKER_INDEX';
/** a worker that dies after starting is replaced after this long (not in a tight loop) */
const replaceDelayMs = 1000;

/** Whether this process is one of the API's workers, and which (0 is the first). */
export function apiWorkerIndex(): number | undefined {
  if (!cluster.isWorker) return undefined;
  return Number(process.env[workerIndexEnv] ?? '0');
}

/** Tells the primary this worker's API listens (nothing when not a worker). */
export function announceApiListening(): void {
  if (cluster.isWorker) process.send?.(listeningMessage);
}

/**
 * In the primary: forks `count` workers (this same command) and keeps them running until the
 * returned stop. Fails, stopping any worker it started, when a worker exits before it listens.
 */
export async function runApiWorkers(count: number, logger: Logger): Promise<() => Promise<void>> {
  const workers = new Map<number, Worker>();
  let stopping = false;

  const fork = (index: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const worker = cluster.fork({ [workerIndexEnv]: String(index) });
      workers.set(index, worker);
      let listening = false;
      worker.on('message', (message: unknown) => {
        if (message !== listeningMessage || listening) return;
        listening = true;
        logger.info({ worker: index, workerPid: worker.process.pid }, 'api worker listening');
        resolve();
      });
      worker.on('exit', (code, signal) => {
        if (workers.get(index) === worker) workers.delete(index);
        if (!listening) {
          reject(new CofferError('Internal', `API worker ${index} exited (${signal ?? code}) before it listened; its own log says why.`));
          return;
        }
        if (stopping) return;
        logger.error({ worker: index, workerPid: worker.process.pid, code, signal }, 'api worker exited; starting another in its place');
        setTimeout(() => {
          if (!stopping) fork(index).catch((err: unknown) => logger.error({ err, worker: index }, 'api worker could not be replaced'));
        }, replaceDelayMs).unref();
      });
    });

  const stop = async () => {
    stopping = true;
    const exits = [...workers.values()].map(
      (worker) =>
        new Promise<void>((resolve) => {
          if (worker.isDead()) return resolve();
          worker.once('exit', () => resolve());
          // each worker stops its API cleanly on SIGTERM, as a lone `coffer api` does
          worker.process.kill('SIGTERM');
        }),
    );
    await Promise.all(exits);
  };

  try {
    await fork(0);
    await Promise.all(Array.from({ length: count - 1 }, (_, n) => fork(n + 1)));
  } catch (err) {
    await stop();
    throw err;
  }
  logger.info({ workers: count }, 'api listening');
  return stop;
}
