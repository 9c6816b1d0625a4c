import type { Session } from '../support/api-client.js';
import { freePort, startRole, type RoleProcess } from '../support/coffer-process.js';
import { makeDataDir } from '../support/temp-dir.js';
import { adminSession } from './instance-lifecycle.js';

// `coffer serve` as the end-to-end tests start it: a fresh data directory, a free port, the
// admin's password from the environment, and an admin session once it serves.

export interface ServeRun {
  serve: RoleProcess;
  dataDir: { path: string; remove: () => Promise<void> };
  baseUrl: string;
  session: Session;
  /** stops coffer serve, then removes its data directory */
  stop(): Promise<void>;
}

export async function startServe(dataDirPrefix: string, adminPassword: string, extraArgs: readonly string[] = []): Promise<ServeRun> {
  const dataDir = await makeDataDir(dataDirPrefix);
  const port = await freePort();
  const serve = startRole(['serve', '--port', String(port), '--data-dir', dataDir.path, ...extraArgs], {
    COFFER_ADMIN_PASSWORD: adminPassword,
  });
  const stop = async () => {
    await serve.stop();
    await dataDir.remove();
  };
  try {
    await serve.waitFor(/serving the Trove API/, 60_000);
    const baseUrl = `http://127.0.0.1:${port}`;
    return { serve, dataDir, baseUrl, session: await adminSession(baseUrl, adminPassword), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
