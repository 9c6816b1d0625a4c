import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { GuestLogState } from '../../bus/index.js';
import { CofferError, errors } from '../../common/index.js';
import { requireAuth } from '../auth-context.js';
import { parseTroveBody } from '../parse-body.js';
import { loadGuestTarget, type GuestTarget, type InstanceParams } from './guest-target.js';
import { loadTenantInstance } from './tenant-instance.js';
import type { TroveDeps } from './trove-deps.js';

// Trove's guest logs (reference "Logs"): the engine's log files, listed and shown with their
// state, turned on and off, published to the deployment's backup storage and discarded there.
// Both routes ask the guest. Published objects are plain text under
// `<instance id>/<manager>-<log>/` in the container `database_logs`, as Trove stores them, so a
// deployment without a backup storage has no logs (501, as Trove without Swift). A tenant sees
// the logs of its own instances only (loadGuestTarget: 404 for another project's), and a
// non-admin only the logs Trove exposes (guest_log_exposed_logs); an admin sees every one.
//
// Coffer's extension, GET /instances/{id}/log/{name}: what was published of a log, read back from
// the storage through the API (Trove's clients read Swift themselves; Coffer's tenants have no
// storage credentials). Pages of at most `pageObjects` objects, from object number `from` on,
// so that `coffer logs --follow` asks only for what is new. No guest is asked: a stopped
// instance's published logs are readable.

export const guestLogContainer = 'database_logs';

/** Trove's `[<datastore>] guest_log_exposed_logs` */
const exposedLogs: Readonly<Record<string, readonly string[]>> = {
  mysql: ['general', 'slow_query'],
  mariadb: ['general', 'slow_query'],
  postgresql: ['general'],
};

/** Trove's 0/1 flags; a boolean is taken as well */
const flag = z.union([z.literal(0), z.literal(1), z.boolean()]).optional();

/** objects (of at most 1 MB each, guest-logs.ts) per read */
const pageObjects = 4;
const logName = /^[a-z][a-z_]{0,63}$/;
const objectNumber = /^\d{8}$/;

type LogContentsParams = InstanceParams & { name: string };

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

  app.get<{ Params: LogContentsParams; Querystring: { from?: string } }>('/instances/:instanceId/log/:name', async (request) => {
    const instance = await loadTenantInstance(deps.store, request, 'instance:guest_log_list');
    const storage = deps.backups.storage;
    if (storage === undefined) throw logsNotAvailable();
    const version = await deps.store.datastores.getVersion(instance.datastoreVersionId);
    if (version === undefined) throw errors.internal(`Instance ${instance.id} refers to datastore version ${instance.datastoreVersionId}, which is gone.`);
    const { name } = request.params;
    const exposed = requireAuth(request).isAdmin || (exposedLogs[version.manager] ?? []).includes(name);
    if (!logName.test(name) || !exposed) throw new CofferError('NotFound', `No log ${name} on instance ${instance.id}.`);
    const from = request.query.from === undefined ? 0 : Number(request.query.from);
    if (!Number.isSafeInteger(from) || from < 0) throw new CofferError('BadRequest', "'from' must be an object number (0 or more).");
    const prefix = `${instance.id}/${version.manager}-${name}/`;
    const stored = await storage.list(guestLogContainer, prefix).catch((err: unknown) => {
      // nothing was ever published on this deployment
      if (err instanceof CofferError && err.code === 'NotFound') return [];
      throw err;
    });
    const numbered = stored
      .map((object) => ({ object, suffix: object.name.slice(prefix.length) }))
      .filter(({ suffix }) => objectNumber.test(suffix) && Number(suffix) >= from)
      .sort((a, b) => a.suffix.localeCompare(b.suffix));
    const page = numbered.slice(0, pageObjects);
    const chunks: Buffer[] = [];
    for (const { object } of page) {
      for await (const chunk of await storage.get(guestLogContainer, object.name, { expectedSha256: object.sha256 })) chunks.push(chunk as Buffer);
    }
    return {
      contents: {
        name,
        text: Buffer.concat(chunks).toString('utf8'),
        next: page.length === 0 ? from : Number(page.at(-1)!.suffix) + 1,
        more: numbered.length > page.length,
      },
    };
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
