import { z } from 'zod';
import { cast, defineService } from '../contract.js';

// Topic `taskmanager`, competing consumers. The flows read their input from the task row, so a
// cast is only a wake-up: a lost cast delays a task until the next sweep but never loses it.
export const taskmanagerContract = defineService('taskmanager', '1.0', {
  runTask: cast(z.object({ taskId: z.string() })),
});

export const taskmanagerTopic = 'taskmanager';
