import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CofferError } from '../../src/common/errors.js';
import type { TaskRow } from '../../src/db/index.js';
import { runSteps, type FlowStep } from '../../src/taskmanager/flow-steps.js';
import type { TaskHandle } from '../../src/taskmanager/task-runner.js';

// The resume rule of every flow, with a hand-made handle that records what the runner would.

function handleAt(step: string): { handle: TaskHandle; recorded: { step: string; payload: unknown }[] } {
  const recorded: { step: string; payload: unknown }[] = [];
  const task = { id: 't1', kind: 'restart', instanceId: 'i1', step, payload: null } as unknown as TaskRow;
  return {
    recorded,
    handle: { task, signal: new AbortController().signal, recordStep: async (s, payload) => void recorded.push({ step: s, payload }) },
  };
}

function steps(ran: string[]): FlowStep[] {
  return [
    { name: 'one', run: async () => void ran.push('one'), payload: () => ({ after: 'one' }) },
    { name: 'two', run: async () => void ran.push('two') },
    { name: 'wait', repeatable: true, run: async () => void ran.push('wait') },
  ];
}

test('a new task runs every step and records each but the repeatable ones, with their payloads', async () => {
  const ran: string[] = [];
  const { handle, recorded } = handleAt('start');
  await runSteps(handle, steps(ran));
  assert.deepEqual(ran, ['one', 'two', 'wait']);
  assert.deepEqual(recorded, [
    { step: 'one', payload: { after: 'one' } },
    { step: 'two', payload: undefined },
  ]);
});

test('a resumed task starts after its recorded step and repeats only the repeatable ones', async () => {
  const ran: string[] = [];
  const { handle, recorded } = handleAt('one');
  await runSteps(handle, steps(ran));
  assert.deepEqual(ran, ['two', 'wait']);
  assert.deepEqual(recorded.map((r) => r.step), ['two']);
});

test('a recorded step the flow does not have is an internal error, and nothing runs', async () => {
  const ran: string[] = [];
  await assert.rejects(runSteps(handleAt('wait').handle, steps(ran)), (err) => err instanceof CofferError && err.code === 'Internal' && /"wait"/.test(err.message));
  assert.deepEqual(ran, []);
});
