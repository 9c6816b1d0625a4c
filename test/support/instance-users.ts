import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { removeInstanceUser } from '../../src/agent/instance-user.js';
import { silentLogger } from '../../src/common/logger.js';

// As root, the agent gives each instance an OS user of its own, removed when the instance is
// deleted. A test that removes a data directory with instances still in it (a failed test, a
// killed serve) removes their users too (and its agents' spare ones), and with them every process
// they still run.

/** The OS users recorded by the instances and agents under `root` (a data directory, or up to two levels above one). */
export async function osUsersUnder(root: string): Promise<string[]> {
  const users: string[] = [];
  const visit = async (dir: string, depth: number): Promise<void> => {
    // an agent's users made ahead of time, not yet any instance's (src/agent/spare-users.ts)
    const spare = await readFile(join(dir, 'spare-users.json'), 'utf8').catch(() => '{}');
    users.push(...((JSON.parse(spare) as { users?: string[] }).users ?? []));
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries.filter((e) => e.isDirectory())) {
      const path = join(dir, entry.name);
      if (entry.name === 'instances') {
        for (const id of await readdir(path).catch(() => [] as string[])) {
          const text = await readFile(join(path, id, 'instance.json'), 'utf8').catch(() => '{}');
          const { osUser } = JSON.parse(text) as { osUser?: unknown };
          if (typeof osUser === 'string') users.push(osUser);
        }
      } else if (depth > 0) {
        await visit(path, depth - 1);
      }
    }
  };
  await visit(root, 2);
  return users;
}

/** Kills what the instance users under `root` still run and removes the users. */
export async function removeInstanceUsersUnder(root: string): Promise<void> {
  for (const user of await osUsersUnder(root)) await removeInstanceUser(user, silentLogger());
}
