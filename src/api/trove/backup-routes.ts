import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { DeleteBackupTaskPayload } from '../../bus/index.js';
import { CofferError } from '../../common/index.js';
import { runningBackupStates, type BackupRow } from '../../db/index.js';
import { requireAuth } from '../auth-context.js';
import { parseTroveBody } from '../parse-body.js';
import { enforce } from '../policy.js';
import { queryParam } from '../query-param.js';
import { createBackup } from './backup-create.js';
import { backupActionSchema, createBackupStrategySchema, createBackupSchema } from './backup-schemas.js';
import { verifyBackup } from './backup-verify.js';
import { BackupViewLoader, backupStrategyView, backupView } from './backup-views.js';
import { findDatastore } from './datastore-lookup.js';
import { nextPageLink, pageRequest } from './pagination.js';
import { pendingTask } from './queue-instance-task.js';
import { loadTenantInstance } from './tenant-instance.js';
import { busContext, viewContext, type TenantParams, type TroveDeps } from './trove-deps.js';
import { wakeTaskmanager } from './wake-taskmanager.js';

// Backups (reference 2.9), an instance's backups (2.2) and backup strategies (2.10). A member
// sees its own project's backups; another project's is 404. Lists are Trove's: newest update
// first, with an integer offset as the marker.

type BackupParams = { Params: TenantParams & { backupId: string } };
type InstanceParams = { Params: TenantParams & { instanceId: string } };

const backupNotFound = (id: string) => new CofferError('NotFound', `Backup ${id} cannot be found.`);

/** Trove's offset paging: the next marker is offset + limit whenever the page is full. */
function offsetPage(request: FastifyRequest): { limit: number; offset: number } {
  const { limit, marker } = pageRequest(request);
  if (marker !== undefined && !/^\d+$/.test(marker)) throw new CofferError('BadRequest', `Invalid marker: ${marker}.`);
  return { limit, offset: marker === undefined ? 0 : Number(marker) };
}

export async function backupRoutes(app: FastifyInstance, deps: TroveDeps): Promise<void> {
  const { store } = deps;
  const storage = () => deps.backups.storage;

  async function listReply(request: FastifyRequest, filter: { tenantId?: string; instanceId?: string; datastoreVersionIds?: string[] }) {
    const page = offsetPage(request);
    const rows = await store.backups.list({ ...filter, ...page });
    const loader = new BackupViewLoader(store);
    const views = await Promise.all(rows.map(async (row) => backupView(await loader.load(row), storage())));
    return {
      backups: views,
      ...(rows.length === page.limit ? { links: [nextPageLink(request, viewContext(request).linkBase, String(page.offset + page.limit))] } : {}),
    };
  }

  async function loadBackup(request: FastifyRequest<BackupParams>, action: string): Promise<BackupRow> {
    const auth = requireAuth(request);
    const backup = await store.backups.get(request.params.backupId, auth.isAdmin ? {} : { tenantId: auth.projectId });
    if (backup === undefined) throw backupNotFound(request.params.backupId);
    enforce(auth, action, backup.tenantId);
    return backup;
  }

  app.get('/backups', async (request) => {
    const auth = requireAuth(request);
    enforce(auth, 'backup:index', auth.projectId);
    const query = request.query;
    const allProjects = queryParam(query, 'all_projects');
    const projectId = queryParam(query, 'project_id');
    if ((allProjects !== undefined || projectId !== undefined) && !auth.isAdmin) {
      throw new CofferError('PolicyNotAuthorized', "Policy doesn't allow backup:index:all_projects to be performed.");
    }
    const tenantId = projectId ?? (allProjects === 'true' || allProjects === 'True' ? undefined : auth.projectId);
    const instanceId = queryParam(query, 'instance_id');
    const datastore = queryParam(query, 'datastore');
    const datastoreVersionIds =
      datastore === undefined ? undefined : (await store.datastores.listVersions((await findDatastore(store, datastore)).id)).map((v) => v.id);
    return listReply(request, {
      ...(tenantId === undefined ? {} : { tenantId }),
      ...(instanceId === undefined ? {} : { instanceId }),
      ...(datastoreVersionIds === undefined ? {} : { datastoreVersionIds }),
    });
  });

  app.get<InstanceParams>('/instances/:instanceId/backups', async (request) => {
    const instance = await loadTenantInstance(store, request, 'instance:backups');
    return listReply(request, { instanceId: instance.id });
  });

  app.get<BackupParams>('/backups/:backupId', async (request) => {
    const backup = await loadBackup(request, 'backup:show');
    return { backup: backupView(await new BackupViewLoader(store).load(backup), storage()) };
  });

  app.post('/backups', async (request, reply: FastifyReply) => {
    const auth = requireAuth(request);
    const body = parseTroveBody(createBackupSchema, request.body);
    const backup = await createBackup(deps, auth, body, busContext(request));
    reply.code(202);
    return { backup: backupView(await new BackupViewLoader(store).load(backup), storage()) };
  });

  app.delete<BackupParams>('/backups/:backupId', async (request, reply) => {
    const backup = await loadBackup(request, 'backup:delete');
    const context = busContext(request);
    const now = new Date();
    const taskId = await store.transaction(async (tx) => {
      // a running backup, or a running incremental of it, cannot go (reference 2.9)
      for (let pending = [backup]; pending.length > 0; ) {
        const next: BackupRow[] = [];
        for (const b of pending) {
          if (runningBackupStates.includes(b.state)) throw new CofferError('UnprocessableEntity', `Backup ${b.id} cannot be deleted because it is running.`);
          // a verification reads the backup (and its parents) until it ends
          if ((await tx.backupVerifications.get(b.id))?.status === 'RUNNING') {
            throw new CofferError('UnprocessableEntity', `Backup ${b.id} cannot be deleted because it is being verified: wait until its verification has PASSED or FAILED.`);
          }
          next.push(...(await tx.backups.children(b.id)));
        }
        pending = next;
      }
      const active = await tx.tasks.activeForInstance(backup.id);
      if (active?.kind === 'delete_backup') return active.id;
      // a backup deletion's subject is the backup
      const task = pendingTask('delete_backup', backup.id, { requestId: context.requestId } satisfies DeleteBackupTaskPayload, now);
      await tx.tasks.create(task);
      return task.id;
    });
    await wakeTaskmanager(deps, taskId, context);
    reply.code(202).type('application/json').send();
  });

  // Coffer's: restores the backup into a hidden scratch instance and runs the engine's own check
  app.post<BackupParams>('/backups/:backupId/action', async (request, reply) => {
    parseTroveBody(backupActionSchema, request.body);
    const backup = await loadBackup(request, 'backup:verify');
    await verifyBackup(deps, backup, busContext(request));
    reply.code(202).type('application/json').send();
  });

  app.post('/backup_strategies', async (request, reply) => {
    const auth = requireAuth(request);
    enforce(auth, 'backup_strategy:create', auth.projectId);
    const input = parseTroveBody(createBackupStrategySchema, request.body).backup_strategy;
    if (input.instance_id !== undefined) {
      const instance = await store.instances.get(input.instance_id, { tenantId: auth.projectId });
      if (instance === undefined) throw new CofferError('InstanceNotFound', `Instance ${input.instance_id} cannot be found.`);
    }
    const row = { tenantId: auth.projectId, instanceId: input.instance_id ?? '', backend: 'swift', container: input.swift_container, createdAt: new Date() };
    await store.backupStrategies.set(row);
    reply.code(202);
    return { backup_strategy: backupStrategyView(row) };
  });

  /** `project_id` other than the caller's is for admins (403 otherwise), as Trove's strategy routes. */
  function strategyScope(request: FastifyRequest): { tenantId: string; instanceId: string | undefined } {
    const auth = requireAuth(request);
    const projectId = queryParam(request.query, 'project_id');
    if (projectId !== undefined && projectId !== auth.projectId && !auth.isAdmin) {
      throw new CofferError('PolicyNotAuthorized', 'Only admins may see or change the backup strategies of another project.');
    }
    return { tenantId: projectId ?? auth.projectId, instanceId: queryParam(request.query, 'instance_id') };
  }

  app.get('/backup_strategies', async (request) => {
    const auth = requireAuth(request);
    enforce(auth, 'backup_strategy:index', auth.projectId);
    const { tenantId, instanceId } = strategyScope(request);
    const rows = await store.backupStrategies.list({ tenantId, ...(instanceId === undefined ? {} : { instanceId }) });
    return { backup_strategies: rows.map(backupStrategyView) };
  });

  app.delete('/backup_strategies', async (request, reply) => {
    const auth = requireAuth(request);
    enforce(auth, 'backup_strategy:delete', auth.projectId);
    const { tenantId, instanceId } = strategyScope(request);
    await store.backupStrategies.delete(tenantId, instanceId ?? '');
    reply.code(202).type('application/json').send();
  });
}
