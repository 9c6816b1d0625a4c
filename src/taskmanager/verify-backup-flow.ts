import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  createRpcClient,
  guestContract,
  guestTopic,
  verifyBackupTaskPayload,
  type DataCheckResult,
  type RequestContext,
  type VerifyBackupTaskPayload,
} from '../bus/index.js';
import { CofferError, newUuid, sleep, type Logger } from '../common/index.js';
import { backupChain, type BackupRow } from '../db/index.js';
import { callGuest, messageOf } from './action-flow-support.js';
import { storageOf, type BackupFlowDeps } from './backup-flow-deps.js';
import { engineFailed } from './flow-support.js';
import { runSteps } from './flow-steps.js';
import { createScratchInstance, deleteScratchInstance } from './scratch-instance.js';
import type { TaskHandle } from './task-runner.js';

/** What a verification needs beyond the backup flows: how long a scratch instance may take to build, be checked and go. */
export interface VerifyBackupFlowDeps extends BackupFlowDeps {
  buildTimeoutMs: number;
  deleteTimeoutMs: number;
  /** the longest the engine's check may run */
  dataCheckTimeoutMs: number;
  /** how often the guest is asked how its check stands */
  dataCheckPollMs: number;
}

type Outcome = NonNullable<VerifyBackupTaskPayload['outcome']>;

/** what a create or delete of the scratch instance gets beyond its own timeout, which ends it first */
const graceMs = 60_000;
// BLOCKED: a scratch instance whose restored data fills its volume still serves the reads a check makes
const readyStatuses = new Set(['HEALTHY', 'RUNNING', 'BLOCKED']);

/**
 * verify_backup (Coffer's): the API recorded the backup's verification RUNNING and this task,
 * whose subject is the backup. The flow reads every object of the backup's chain back from the
 * storage against the checksum recorded when it was stored, restores the backup into a scratch
 * instance (scratch-instance.ts) through the create_instance flow, waits for its guest to report
 * the engine healthy, asks the guest for the engine's own check of all the data, and records
 * PASSED or FAILED with what it found. The scratch instance is always deleted, whatever failed,
 * and the outcome is recorded only once it is gone.
 */
export function verifyBackupFlow(deps: VerifyBackupFlowDeps) {
  return async (handle: TaskHandle): Promise<void> => {
    let payload = verifyBackupTaskPayload.parse(handle.task.payload ?? {});
    const backupId = handle.task.instanceId;
    const context: RequestContext = { requestId: payload.requestId ?? `req-${newUuid()}` };
    const log = deps.logger.child({ backupId, taskId: handle.task.id, requestId: context.requestId });
    const verification = await deps.store.backupVerifications.get(backupId);
    if (verification?.status !== 'RUNNING') {
      log.info({ status: verification?.status }, 'verification no longer running; nothing to do');
      return;
    }
    // an earlier verification's task ended without removing its scratch instance: its delete goes first
    if (payload.leftoverScratchInstanceId !== undefined) await deleteScratchInstance(deps, payload.leftoverScratchInstanceId, context);
    const step = (message: string) => deps.store.backupVerifications.update(backupId, { message });
    const scratchId = async () => payload.scratchInstanceId ?? (await deps.store.backupVerifications.get(backupId))?.scratchInstanceId ?? undefined;
    try {
      await runSteps(handle, [
        {
          name: 'objects-checked',
          run: async () => {
            const backup = await deps.store.backups.get(backupId);
            if (backup === undefined) throw new CofferError('NotFound', `Backup ${backupId} was deleted.`);
            await step("reading the backup back from storage against its recorded checksum");
            await checkStoredObjects(deps, backup, handle.signal);
          },
        },
        {
          name: 'scratch-created',
          run: async () => {
            const backup = await deps.store.backups.get(backupId);
            if (backup === undefined) throw new CofferError('NotFound', `Backup ${backupId} was deleted.`);
            await step('restoring it into a scratch instance');
            payload = { ...payload, scratchInstanceId: await createScratchInstance(deps, backup, context) };
            log.info({ scratchInstanceId: payload.scratchInstanceId }, 'restoring into a scratch instance');
          },
          payload: () => payload,
        },
        {
          name: 'checked',
          run: async () => {
            const id = payload.scratchInstanceId!;
            await waitForScratch(deps, handle, id);
            await step("running the engine's own check of the data");
            const result = await checkData(deps, handle, id, { ...context, instanceId: id }, log);
            log.info({ checks: result.checks }, 'data checked');
            payload = { ...payload, outcome: verdict(result) };
          },
          payload: () => payload,
        },
        {
          name: 'done',
          repeatable: true,
          run: async () => finish(deps, handle, backupId, await scratchId(), payload.outcome!, context, log),
        },
      ]);
    } catch (err) {
      if (handle.signal.aborted) throw err;
      log.error({ err }, 'verification failed');
      await finish(deps, handle, backupId, await scratchId(), { status: 'FAILED', message: messageOf(err), checks: null }, context, log);
    }
  };
}

/** Reads each object of the chain whole, discarding it: the storage's read fails on bytes that differ from the recorded checksum. */
async function checkStoredObjects(deps: VerifyBackupFlowDeps, backup: BackupRow, signal: AbortSignal): Promise<void> {
  const storage = storageOf(deps);
  for (const link of await backupChain(deps.store, backup)) {
    const stored = await storage.get(link.container, link.objectName, { expectedSha256: link.sha256!, signal });
    await pipeline(stored, new Writable({ write: (_chunk, _encoding, done) => done() }), { signal });
  }
}

/** Starts the guest's check and asks how it stands until it ends (a check of a large instance runs for hours). */
async function checkData(deps: VerifyBackupFlowDeps, handle: TaskHandle, id: string, context: RequestContext, log: Logger): Promise<DataCheckResult> {
  const guest = createRpcClient(deps.transport, guestContract, guestTopic(id));
  const deadline = Date.now() + deps.dataCheckTimeoutMs;
  for (;;) {
    const check = await callGuest(deps, handle, 'checkData', log, () => guest.checkData({}, context));
    if (check.state === 'done') return check.result;
    if (check.state === 'failed') throw new CofferError('EngineError', `The engine's check could not run: ${check.message}`);
    if (Date.now() >= deadline) throw new CofferError('GuestTimeout', `The engine's check did not end within ${Math.round(deps.dataCheckTimeoutMs / 60_000)} minutes.`);
    await sleep(deps.dataCheckPollMs, handle.signal);
  }
}

function verdict(result: DataCheckResult): Outcome {
  const errors = result.checks.errors ?? result.problems.length;
  if (errors === 0 && result.problems.length === 0) {
    return { status: 'PASSED', message: "Restored into a scratch instance; the engine's own check found no errors.", checks: result.checks };
  }
  const first = result.problems.slice(0, 3).join(' | ');
  return {
    status: 'FAILED',
    message: `The engine's own check found ${Math.max(errors, result.problems.length)} error(s) in the restored data: ${first}`.slice(0, 1000),
    checks: result.checks,
  };
}

/** Waits until the scratch instance's guest reports the restored engine healthy; a build that failed says why. */
async function waitForScratch(deps: VerifyBackupFlowDeps, handle: TaskHandle, id: string): Promise<void> {
  const instance = await deps.store.instances.get(id);
  if (instance === undefined) throw new CofferError('NotFound', 'The scratch instance of the verification was deleted before it was checked.');
  const deadline = instance.createdAt.getTime() + deps.buildTimeoutMs + graceMs;
  const state = await deps.waiter.waitFor(
    [id],
    ([row]) => {
      if (row!.instance === undefined) return 'gone';
      const task = row!.instance.taskStatus;
      if (task === 'NONE' && row!.status !== undefined && readyStatuses.has(row!.status.status)) return 'ready';
      if (task.startsWith('BUILDING_ERROR') || task === 'DELETING' || task === 'DELETING_ERROR') return 'failed';
      return undefined;
    },
    { timeoutMs: Math.max(0, deadline - Date.now()), signal: handle.signal },
  );
  if (state === 'ready') return;
  if (state === 'failed') throw new CofferError('TaskFailed', `The backup could not be restored: ${(await engineFailed(deps.store, id)).message}`);
  if (state === 'gone') throw new CofferError('NotFound', 'The scratch instance of the verification was deleted before it was checked.');
  throw new CofferError('GuestTimeout', `The backup was not restored within ${Math.round((deps.buildTimeoutMs + graceMs) / 1000)} s.`);
}

/**
 * Deletes the scratch instance and waits until it is gone, then records the outcome. A scratch
 * instance that cannot be deleted fails the verification, naming it, so an operator can.
 */
async function finish(
  deps: VerifyBackupFlowDeps,
  handle: TaskHandle,
  backupId: string,
  scratchId: string | undefined,
  outcome: Outcome,
  context: RequestContext,
  log: Logger,
): Promise<void> {
  let end = outcome;
  if (scratchId !== undefined) {
    await deps.store.backupVerifications.update(backupId, { message: 'removing the scratch instance' });
    const left = await removeScratch(deps, handle, scratchId, context).catch((err: unknown) => {
      if (handle.signal.aborted) throw err;
      return messageOf(err);
    });
    if (left !== undefined) {
      log.error({ scratchInstanceId: scratchId, reason: left }, 'the scratch instance of a verification was not deleted');
      const why = `Its scratch instance ${scratchId} could not be deleted (${left}): an admin deletes it with DELETE /instances/${scratchId}.`;
      end = { ...outcome, status: 'FAILED', message: `${outcome.status === 'FAILED' ? `${outcome.message ?? ''} ` : ''}${why}`.slice(0, 1000) };
    }
  }
  // the database being away is waited out (until the lease is lost; the worker that takes the task
  // over ends it then): a verification is never left RUNNING by a flow that lost its last write
  for (;;) {
    try {
      await deps.store.backupVerifications.finish(backupId, { status: end.status, message: end.message, checks: end.checks, finishedAt: new Date() });
      break;
    } catch (err) {
      if (err instanceof CofferError) throw err;
      log.warn({ err }, 'could not record the end of the verification; retrying');
      await sleep(1000, handle.signal);
    }
  }
  log.info({ status: end.status }, 'verification ended');
}

/** undefined once the scratch instance is gone; else why it is not */
async function removeScratch(deps: VerifyBackupFlowDeps, handle: TaskHandle, id: string, context: RequestContext): Promise<string | undefined> {
  await deleteScratchInstance(deps, id, context);
  const state = await deps.waiter.waitFor(
    [id],
    ([row]) => (row!.instance === undefined ? 'gone' : row!.instance.taskStatus === 'DELETING_ERROR' ? 'failed' : undefined),
    { timeoutMs: deps.deleteTimeoutMs + graceMs, signal: handle.signal },
  );
  if (state === 'gone') return undefined;
  if (state === 'failed') return (await deps.store.faults.latest(id))?.message ?? 'its delete failed';
  return `it was not deleted within ${Math.round((deps.deleteTimeoutMs + graceMs) / 1000)} s`;
}
