import { CofferError } from '../common/index.js';
import type { TaskHandle } from './task-runner.js';

/** One step of a flow, in the order the flow takes them. */
export interface FlowStep {
  /** recorded as the task's step once `run` completes: a resumed task starts after it */
  name: string;
  run(): Promise<void>;
  /** the payload recorded with the step, read once `run` completed (what a resumed run needs) */
  payload?: () => unknown;
  /**
   * never recorded: run again on every resume that reaches it (a wait on the guest, the end of
   * the action: both safe to repeat, and what a dead worker may have been doing)
   */
  repeatable?: true;
}

/**
 * Runs the steps after the one the task recorded, recording each recordable step as it completes.
 * This is where every flow's resume-after-a-crash lives: a recorded step is never run twice, so a
 * step that must not be repeated (a restart, a prepare with its password) is recorded at once.
 */
export async function runSteps(handle: TaskHandle, steps: readonly FlowStep[]): Promise<void> {
  const recorded = handle.task.step;
  let next = 0;
  if (recorded !== 'start') {
    const at = steps.findIndex((step) => step.name === recorded && step.repeatable !== true);
    if (at < 0) {
      throw new CofferError('Internal', `The ${handle.task.kind} task recorded step "${recorded}", which its flow does not have.`);
    }
    next = at + 1;
  }
  for (const step of steps.slice(next)) {
    handle.signal.throwIfAborted();
    await step.run();
    if (step.repeatable !== true) await handle.recordStep(step.name, step.payload?.());
  }
}
