import { readFile, stat } from 'node:fs/promises';
import { BusKey, busKeyHowTo } from '../bus/index.js';
import { CofferError } from '../common/index.js';

// The bus key of a distributed role comes from a file that only Coffer's user can read: a key
// that a tenant's engine user (or anyone else on the host) could read signs for everyone.

export async function readBusKeyFile(path: string): Promise<BusKey> {
  let mode: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new CofferError('BadRequest', `The bus key file ${path} is not a regular file.`);
    mode = info.mode & 0o777;
  } catch (err) {
    if (err instanceof CofferError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new CofferError(
      'BadRequest',
      `Cannot read the bus key file ${path} (${code ?? String(err)}). Every role of a deployment needs the same key; make one with: ${busKeyHowTo}`,
      { cause: err },
    );
  }
  if ((mode & 0o077) !== 0) {
    throw new CofferError(
      'BadRequest',
      `The bus key file ${path} can be read by other users (mode ${mode.toString(8).padStart(4, '0')}); whoever reads it can command every guest. Run: chmod 600 ${path}`,
    );
  }
  return BusKey.fromText(await readFile(path, 'utf8'), `The bus key file ${path}`);
}
