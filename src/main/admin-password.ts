import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bootstrapIdentity } from '../api/index.js';
import { newPassword } from '../common/index.js';
import type { StateStore } from '../db/index.js';

/**
 * Creates the bootstrap admin on first start. Its password is COFFER_ADMIN_PASSWORD when given;
 * otherwise it is generated, printed this once, and kept in a mode-0600 file in the data
 * directory. Later starts leave the existing admin alone.
 */
export async function bootstrapAdmin(
  store: StateStore,
  dataDir: string,
  configured: string | undefined,
  print: (line: string) => void,
): Promise<void> {
  const password = configured ?? newPassword(24);
  const { created } = await bootstrapIdentity(store, password);
  if (!created || configured !== undefined) return;
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, 'admin-password');
  await writeFile(file, `${password}\n`, { mode: 0o600 });
  print(`Created user "admin" in project "admin" with password: ${password}`);
  print(`(shown only this once; it is also kept in ${file}, readable only by you)`);
}
