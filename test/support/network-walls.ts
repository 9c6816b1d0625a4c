import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

interface Expression {
  match?: { left?: { payload?: { protocol?: string; field?: string } }; right?: unknown };
  accept?: null;
}

/**
 * Where the network wall lets `uid` connect, as `address:port`, sorted: the accept rules of its
 * chain in Coffer's nftables table (src/agent/network-wall.ts). None when it has no chain.
 */
export async function wallDestinations(uid: number): Promise<string[]> {
  let stdout: string;
  try {
    ({ stdout } = await run('nft', ['-j', 'list', 'chain', 'inet', 'coffer', `wall_${uid}`]));
  } catch {
    return [];
  }
  const rules = (JSON.parse(stdout) as { nftables: { rule?: { expr: Expression[] } }[] }).nftables.flatMap((item) => (item.rule === undefined ? [] : [item.rule.expr]));
  const field = (expr: Expression[], name: string) => expr.find((e) => e.match?.left?.payload?.field === name)?.match?.right;
  return rules
    .filter((expr) => expr.some((e) => 'accept' in e) && field(expr, 'daddr') !== undefined)
    .map((expr) => `${String(field(expr, 'daddr'))}:${String(field(expr, 'dport'))}`)
    .sort();
}

/** What `uid`'s wall chain holds, one rule a line as `nft` lists it; undefined when it has none. */
export async function chainOf(uid: number): Promise<string[] | undefined> {
  try {
    const { stdout } = await run('nft', ['list', 'chain', 'inet', 'coffer', `wall_${uid}`]);
    return stdout
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !/^(table|chain|\})/.test(line));
  } catch {
    return undefined;
  }
}
