import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { lookupUser } from '../../src/agent/engine-user.js';
import { removeInstanceUser } from '../../src/agent/instance-user.js';
import { LocalProcessRunner } from '../../src/agent/local-process-runner.js';
import { NetworkWall } from '../../src/agent/network-wall.js';
import { silentLogger } from '../../src/common/logger.js';

// As root, the agent gives each instance an OS user of its own, removed when the instance is
// deleted. A test that removes a data directory with instances still in it (a failed test, a
// killed serve) removes their users too (and its agents' spare ones), and with them every process
// they still run and their walls (nftables), as the agent's delete does.

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

/** Kills what the instance users under `root` still run, removes the users and takes them out of the wall. */
export async function removeInstanceUsersUnder(root: string): Promise<void> {
  const wall = new NetworkWall(new LocalProcessRunner(undefined));
  for (const user of await osUsersUnder(root)) {
    const identity = await lookupUser(user);
    if (identity === undefined) continue;
    await removeInstanceUser(user, silentLogger());
    // as the driver's remove: once nothing runs as it (without nftables there is no wall to take down)
    await wall.remove(identity.uid).catch(() => undefined);
  }
}
