// test-lane: parallel (a table of its own, named at random, deleted at the end)
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { NftSession } from '../../src/agent/nft-session.js';

// The agent's nftables changes go through shells kept up beside it (the agent is not forked for
// each): each change is one nft transaction, with nft's own words when it fails; changes asked
// together run side by side (a few shells at most), and a shell that died is replaced.

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

  it('applies each change whole or not at all, with nft’s words when one fails', async () => {
    await session.apply(`add table ${table}\n`, 10_000);
    await session.apply(`add chain ${table} a\nadd rule ${table} a accept\n`, 10_000);
    await session.apply(`add chain ${table} b\n`, 10_000);
    assert.deepEqual(await chains(), ['a', 'b']);
    assert.equal(session.size, 1, 'one after the other: one shell');

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
    await assert.rejects(session.apply(`add chain ${table} e\n.\nadd chain ${table} f\n`, 10_000), /lone/);
  });

  it('runs changes asked together side by side, in shells of their own (no change waits behind another)', async () => {
    await Promise.all(['h1', 'h2', 'h3'].map((chain) => session.apply(`add chain ${table} ${chain}\n`, 10_000)));
    const three = await chains();
    assert.ok(['h1', 'h2', 'h3'].every((chain) => three.includes(chain)));
    assert.equal(session.size, 3);
    // and six at once: four shells at most, the rest wait for one
    await Promise.all(['k1', 'k2', 'k3', 'k4', 'k5', 'k6'].map((chain) => session.apply(`add chain ${table} ${chain}\n`, 10_000)));
    const all = await chains();
    for (const chain of ['h1', 'h2', 'h3', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6']) assert.ok(all.includes(chain), chain);
    assert.equal(session.size, 4);
  });

  it('starts a shell again when one died', async () => {
    const shell = (session as unknown as { shells: { child: ChildProcess }[] }).shells[0]?.child;
    assert.ok(shell?.pid !== undefined);
    shell.kill('SIGKILL');
    // the shell is unref'd (it never keeps the agent up): its exit is polled for
    while (shell.exitCode === null && shell.signalCode === null) await new Promise((resolve) => setTimeout(resolve, 5));
    await session.apply(`add chain ${table} g\n`, 10_000);
    assert.ok((await chains()).includes('g'));
    assert.ok(!(session as unknown as { shells: { child: ChildProcess }[] }).shells.some(({ child }) => child === shell), 'the dead one is gone');
  });

  it('refuses changes once closed, those waiting for a shell too', async () => {
    const closing = new NftSession();
    const asked = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6'].map((chain) => closing.apply(`add chain ${table} ${chain}\n`, 10_000));
    closing.close();
    // every one settles (the agent stops): the two waiting for a shell are refused as closed
    const outcomes = await Promise.allSettled(asked);
    for (const outcome of outcomes.slice(4)) {
      assert.equal(outcome.status, 'rejected');
      assert.match(String((outcome as PromiseRejectedResult).reason), /closed/);
    }
    await assert.rejects(closing.apply(`add chain ${table} c7\n`, 10_000), /closed/);
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
