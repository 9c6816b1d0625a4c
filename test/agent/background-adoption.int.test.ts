// test-lane: parallel (agents as root: they add and remove OS users and their walls; only its own directories)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { agentContract, agentTopic, createRpcClient, guestContract, guestTopic } from '../../src/bus/index.js';
import { suffix } from '../guest/engine-fixture.js';
import { until } from '../support/wait.js';
import { agentHarness } from './agent-harness.js';

// A restarted agent serves at once and re-adopts the instances it finds in the background, a few
// at a time; a request for an instance still being re-adopted runs only once it is adopted.
// Adoption is held at its start (the agent's beforeAdopt hook) for as long as the test needs.

/** A promise and the function that settles it. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

describe('agent re-adoption in the background', () => {
  const { transport, beats, announcements, newAgent, prepared } = agentHarness('coffer-readopt-');

  it('serves before its instances are re-adopted, adopts two at a time, and holds requests for one until it is adopted', async () => {
    const { agent: first, options } = await newAgent({ warmPoolSize: 0 });
    const ids = [`ra-${suffix()}`, `rb-${suffix()}`, `rc-${suffix()}`];
    const firstRpc = createRpcClient(transport, agentContract, agentTopic(options.host));
    for (const id of ids) await prepared(firstRpc, id, 'Adm1n-readopt');
    await first.stop();

    const holds = new Map(ids.map((id) => [id, gate()]));
    const announced = announcements.length;
    const entered: string[] = [];
    const { agent } = await newAgent({
      dataDir: options.dataDir,
      host: options.host,
      warmPoolSize: 0,
      adoptionConcurrency: 2,
      beforeAdopt: async (instanceId) => {
        entered.push(instanceId);
        await holds.get(instanceId)?.opened;
      },
    });
    // startAgent resolved: the agent serves, with none of its instances adopted yet, and says so
    assert.deepEqual(agent.adopting().sort(), [...ids].sort());
    await until('the new agent announced itself', () => announcements.length > announced);
    assert.deepEqual(announcements[announced]!.adopting?.sort(), [...ids].sort(), 'its first beat names the instances it has yet to take up');
    const rpc = createRpcClient(transport, agentContract, agentTopic(options.host));
    const listed = await rpc.listServers({});
    assert.deepEqual(listed.map((server) => server.instanceId).sort(), [...ids].sort(), 'instances being adopted are listed');

    // two begin at once, and no third while both are held
    await until('two adoptions under way', () => entered.length === 2);
    assert.equal(entered.length, 2);
    const [held, other] = entered as [string, string];
    const third = ids.find((id) => !entered.includes(id))!;

    // a request for a held instance waits for its adoption: it answers after its first health check
    const mark = beats.length;
    const answered = createRpcClient(transport, guestContract, guestTopic(held))
      .listDatabases({})
      .then((result) => ({ result, adoptedBeat: beats.findIndex((b, i) => i >= mark && b.instanceId === held && b.status === 'HEALTHY') }));
    holds.get(held)!.open();
    const { result, adoptedBeat } = await answered;
    assert.deepEqual(result.databases.map((database) => database.name), ['appdb']);
    assert.ok(adoptedBeat >= 0, 'the instance heartbeat HEALTHY (its adoption check) before the request ran');

    // a slot freed: the third begins while the other is still held
    await until('the third adoption under way', () => entered.includes(third));
    assert.ok(agent.adopting().includes(other) && agent.adopting().includes(third));
    assert.ok(!agent.adopting().includes(held));
    holds.get(other)!.open();
    holds.get(third)!.open();
    await agent.adopted;
    assert.deepEqual(agent.adopting(), []);
    const after = announcements.length;
    await until('a beat after the adoptions', () => announcements.length > after);
    assert.equal(announcements.at(-1)!.adopting, undefined, 'no instance left to name');
    for (const id of ids) {
      assert.ok(beats.some((b, i) => i >= mark && b.instanceId === id && b.status === 'HEALTHY'), `${id} adopted and HEALTHY`);
    }
  });
});
