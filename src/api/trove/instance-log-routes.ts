import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { GuestLogState } from '../../bus/index.js';
import { CofferError } from '../../common/index.js';
import { requireAuth } from '../auth-context.js';
import { parseTroveBody } from '../parse-body.js';
import { loadGuestTarget, type GuestTarget, type InstanceParams } from './guest-target.js';
import type { TroveDeps } from './trove-deps.js';

// Trove's guest logs (reference "Logs"): the engine's log files, listed and shown with their
// state, turned on and off, published to the deployment's backup storage and discarded there.
// Both routes ask the guest. Published objects are plain text under
// `<instance id>/<manager>-<log>/` in the container `database_logs`, as Trove stores them, so a
// deployment without a backup storage has no logs (501, as Trove without Swift). A tenant sees
// the logs of its own instances only (loadGuestTarget: 404 for another project's), and a
// non-admin only the logs Trove exposes (guest_log_exposed_logs); an admin sees every one.

export const guestLogContainer = 'database_logs';

/** Trove's `[<datastore>] guest_log_exposed_logs` */
const exposedLogs: Readonly<Record<string, readonly string[]>> = {
  mysql: ['general', 'slow_query'],
  mariadb: ['general', 'slow_query'],
  postgresql: ['general'],
};

/** Trove's 0/1 flags; a boolean is taken as well */
const flag = z.union([z.literal(0), z.literal(1), z.boolean()]).optional();

const logActionSchema = z
  .object({ name: z.string().min(1).max(64), enable: flag, disable: flag, publish: flag, discard: flag })
  .strict();

function logView(target: GuestTarget, log: GuestLogState) {
  const prefix = `${target.instance.id}/${target.version.manager}-${log.name}/`;
  return {
    name: log.name,
    type: log.type,
    status: log.status,
    published: log.published,
    pending: log.pending,
    // Trove's string "None" until something is stored; Coffer writes no metafile
    container: log.stored ? guestLogContainer : 'None',
    prefix: log.stored ? prefix : 'None',
    metafile: 'None',
  };
}

function logsNotAvailable(): CofferError {
  return new CofferError('NotImplemented', 'Logs are not available: this deployment has no backup storage to publish them to.');
}

export async function instanceLogRoutes(app: FastifyInstance, deps: TroveDeps): Promise<void> {
  /** the instance, then whether logs exist here at all; Trove asks the guest of a running datastore */
  const loadTarget = async (request: FastifyRequest<{ Params: InstanceParams }>) => {
    const target = await loadGuestTarget(deps, request, 'instance:guest_log_list', () => true, 'Logs need');
    if (deps.backups.storage === undefined) throw logsNotAvailable();
    const admin = requireAuth(request).isAdmin;
    const visible = (name: string) => admin || (exposedLogs[target.version.manager] ?? []).includes(name);
    return { target, visible };
  };

  app.get<{ Params: InstanceParams }>('/instances/:instanceId/log', async (request) => {
    const { target, visible } = await loadTarget(request);
    const { logs } = await target.guest.guestLogs({}, target.context);
    return { logs: logs.filter((log) => visible(log.name)).map((log) => logView(target, log)) };
  });

  app.post<{ Params: InstanceParams }>('/instances/:instanceId/log', async (request) => {
    const body = parseTroveBody(logActionSchema, request.body);
    const on = (value: 0 | 1 | boolean | undefined) => value === 1 || value === true;
    if (on(body.enable) && on(body.disable)) throw new CofferError('BadRequest', 'A log cannot be enabled and disabled at once.');
    const { target, visible } = await loadTarget(request);
    // a log a tenant may not see is one it cannot name either
    if (!visible(body.name)) throw new CofferError('BadRequest', `No log ${body.name} on instance ${target.instance.id}.`);
    const { log } = await target.guest.guestLogAction(
      {
        name: body.name,
        enable: on(body.enable),
        disable: on(body.disable),
        publish: on(body.publish),
        discard: on(body.discard),
        container: guestLogContainer,
      },
      target.context,
    );
    return { log: logView(target, log) };
  });
}
