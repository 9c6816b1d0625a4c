// test-lane: parallel (a table of its own, named at random, deleted at the end)
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { NftSession } from '../../src/agent/nft-session.js';

// The agent's nftables changes go through a shell kept up beside it (the agent is not forked for
// each): each change is one nft transaction, applied in the order asked, with nft's own words
// when it fails, and a shell that died is started again.

const run = promisify(execFile);
const notRoot = process.getuid?.() !== 0 && 'only root can set nftables';

describe('nft session', { skip: notRoot }, () => {
  const table = `inet coffer_test_${Math.floor(Math.random() * 1e9)}`;
  const session = new NftSession();

  after(async () => {
    session.close();
    await run('nft', ['delete', 'table', ...table.split(' ')]).catch(() => undefined);
  });

  const chains = async (): Promise<string[]> => {
    const { stdout } = await run('nft', ['list', 'table', ...table.split(' ')]);
    return [...stdout.matchAll(/chain (\S+) \{/g)].map((match) => match[1]!);
  };

  it('applies changes in the order asked, each whole or not at all, with nft’s words when one fails', async () => {
    // asked together: each needs the one before it
    await Promise.all([
      session.apply(`add table ${table}\n`, 10_000),
      session.apply(`add chain ${table} a\nadd rule ${table} a accept\n`, 10_000),
      session.apply(`add chain ${table} b\n`, 10_000),
    ]);
    assert.deepEqual(await chains(), ['a', 'b']);

    // the second line fails: the first is not applied either
    await assert.rejects(session.apply(`add chain ${table} c\nadd rule ${table} nowhere accept\n`, 10_000), (err: Error & { details?: string }) => {
      assert.match(err.message, /nft exited with code 1/);
      assert.match(err.details ?? '', /nowhere/);
      return true;
    });
    assert.deepEqual(await chains(), ['a', 'b']);

    // the same shell goes on
    await session.apply(`add chain ${table} d`, 10_000);
    assert.deepEqual(await chains(), ['a', 'b', 'd']);
    assert.throws(() => session.apply(`add chain ${table} e\n.\nadd chain ${table} f\n`, 10_000), /lone/);
  });

  it('starts the shell again when it died', async () => {
    const shell = (session as unknown as { child?: ChildProcess }).child;
    assert.ok(shell?.pid !== undefined);
    shell.kill('SIGKILL');
    // the shell is unref'd (it never keeps the agent up): its exit is polled for
    while (shell.exitCode === null && shell.signalCode === null) await new Promise((resolve) => setTimeout(resolve, 5));
    await session.apply(`add chain ${table} g\n`, 10_000);
    assert.ok((await chains()).includes('g'));
    assert.notEqual((session as unknown as { child?: ChildProcess }).child?.pid, shell.pid);
  });

  it('fails with the reason when there is no nft to run', async () => {
    const missing = new NftSession('/nonexistent/nft');
    try {
      await assert.rejects(missing.apply(`add table ${table}\n`, 10_000), /nft exited with code 127/);
    } finally {
      missing.close();
    }
  });
});
