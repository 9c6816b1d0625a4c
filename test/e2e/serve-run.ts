import type { Session } from '../support/api-client.js';
import { freePort, startRole, type RoleProcess } from '../support/coffer-process.js';
import { makeDataDir } from '../support/temp-dir.js';
import { adminSession } from './instance-lifecycle.js';

// `coffer serve` as the end-to-end tests start it: a fresh data directory, a free port, the
// admin's password from the environment, and an admin session once it serves.

export interface ServeRun {
  /** the running `coffer serve` (a new process after restart) */
  readonly serve: RoleProcess;
  dataDir: { path: string; remove: () => Promise<void> };
  baseUrl: string;
  session: Session;
  /** stops coffer serve (its engines keep running) and starts it again on the same port and data directory */
  restart(): Promise<void>;
  /** stops coffer serve, then removes its data directory */
  stop(): Promise<void>;
}

export async function startServe(dataDirPrefix: string, adminPassword: string, extraArgs: readonly string[] = []): Promise<ServeRun> {
  const dataDir = await makeDataDir(dataDirPrefix);
  const port = await freePort();
  const start = () =>
    startRole(['serve', '--port', String(port), '--data-dir', dataDir.path, ...extraArgs], {
      COFFER_ADMIN_PASSWORD: adminPassword,
    });
  const serving = (process: RoleProcess) => process.waitFor(/serving the Trove API/, 60_000);
  let serve = start();
  const stop = async () => {
    await serve.stop();
    await dataDir.remove();
  };
  try {
    await serving(serve);
    const baseUrl = `http://127.0.0.1:${port}`;
    return {
      get serve() {
        return serve;
      },
      dataDir,
      baseUrl,
      session: await adminSession(baseUrl, adminPassword),
      async restart() {
        await serve.stop();
        serve = start();
        await serving(serve);
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
