import { resizeVolumeTaskPayload } from '../bus/index.js';
import { CofferError } from '../common/index.js';
import { type ActionFlowDeps, callGuest, endAction, messageOf, resumed, startAction } from './action-flow-support.js';
import type { TaskHandle } from './task-runner.js';

/**
 * resize_volume (reference 3.6). The local compute driver's volume is the instance's directory
 * on the host's filesystem, with no size of its own to grow: the new size is the instance's
 * allowance, which the API recorded with the task (quotas count it from then on) and which the
 * guest holds the engine to (a full volume refuses writes): the guest is told the new size, which
 * lifts a full volume's read-only mode. A driver with real volumes (or a directory quota) grows
 * them here too; when either fails, the old size is given back.
 */
export function resizeVolumeFlow(deps: ActionFlowDeps) {
  return async (handle: TaskHandle): Promise<void> => {
    const parsed = resizeVolumeTaskPayload.safeParse(handle.task.payload ?? {});
    const started = await startAction(deps, handle, 'RESIZING', parsed.data?.requestId);
    if (started === undefined) return;
    const { instance, log, guest, context } = started;
    try {
      if (!parsed.success) throw new CofferError('Internal', 'The volume resize task has no readable sizes.');
      // Growing is the only way: a size larger than asked (recorded since) stays.
      const volumeSizeGb = Math.max(parsed.data.newSizeGb, instance.volumeSizeGb);
      const usage = await callGuest(deps, handle, 'resize the volume', log, () => guest.resizeVolume({ sizeGb: volumeSizeGb }, context));
      log.info({ volumeSizeGb, usedBytes: usage.usedBytes }, 'guest holds the new volume size');
      await endAction(deps, handle, 'RESIZING', { ...resumed(parsed.data.resumeTask), volumeSizeGb });
      log.info({ volumeSizeGb }, 'volume resized');
    } catch (err) {
      if (handle.signal.aborted) throw err;
      log.error({ err }, 'volume resize failed');
      const oldSizeGb = parsed.data?.oldSizeGb;
      await endAction(
        deps,
        handle,
        'RESIZING',
        { ...resumed(parsed.data?.resumeTask), ...(oldSizeGb === undefined ? {} : { volumeSizeGb: oldSizeGb }) },
        `Resize of the volume failed: ${messageOf(err)}`,
      );
      throw err;
    }
  };
}
