import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

// `<instance dir>/applied-generation`: the highest generation of the instance's desired state
// this guest applied successfully (see the guest contract's `generation`). The host's file, like
// the engine spec: the engine's user neither reads nor writes it.

const generationFile = 'applied-generation';

/** 0 for an instance that never applied a change carrying a generation */
export async function readAppliedGeneration(dir: string): Promise<number> {
  let text: string;
  try {
    text = await readFile(join(dir, generationFile), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  const value = Number(text.trim());
  return Number.isSafeInteger(value) && value >= 0 ? value : 0;
}

/**
 * Records that the change carrying `generation` was applied, unless a higher one already was (a
 * redelivered older change does not move it back); answers the generation applied now.
 */
export async function recordAppliedGeneration(dir: string, generation: number | undefined): Promise<number> {
  const current = await readAppliedGeneration(dir);
  if (generation === undefined || generation <= current) return current;
  // written aside and renamed over: a crash never leaves half a number
  const temporary = join(dir, `.${generationFile}.tmp`);
  await writeFile(temporary, `${generation}\n`, { mode: 0o600 });
  await chmod(temporary, 0o600);
  await rename(temporary, join(dir, generationFile));
  return generation;
}
