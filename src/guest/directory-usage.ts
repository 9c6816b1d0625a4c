import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Bytes allocated on disk under `dir` (what `du` counts), tolerant of files vanishing mid-walk. */
export async function directoryUsage(dir: string): Promise<number> {
  let total = 0;
  const visit = async (path: string): Promise<void> => {
    const stats = await lstat(path).catch(() => undefined);
    if (stats === undefined) return;
    total += stats.blocks * 512;
    if (!stats.isDirectory()) return;
    const entries = await readdir(path).catch(() => [] as string[]);
    await Promise.all(entries.map((name) => visit(join(path, name))));
  };
  await visit(dir);
  return total;
}
