import type { FastifyInstance } from 'fastify';
import { CofferError } from '../../common/index.js';
import { parseTroveBody } from '../parse-body.js';
import { validateDatabaseName, validateDatabases } from './database-user-rules.js';
import { createDatabasesSchema } from './database-user-schemas.js';
import { loadGuestTarget, type InstanceParams } from './guest-target.js';
import { pageOfList } from './list-page.js';
import { viewContext, type TroveDeps } from './trove-deps.js';

// Databases of an instance (reference 2.3): the guest lists, creates and drops them; the API
// checks the instance, what its engine supports and the names before any message is sent.

type Params = { Params: InstanceParams };
type DatabaseParams = { Params: InstanceParams & { name: string } };

export async function databaseRoutes(app: FastifyInstance, deps: TroveDeps): Promise<void> {
  app.get<Params>('/instances/:instanceId/databases', async (request) => {
    const target = await loadGuestTarget(deps, request, 'instance:extension:database:index', (c) => c.databases);
    const { databases } = await target.guest.listDatabases({}, target.context);
    const page = pageOfList(request, viewContext(request).linkBase, databases, (d) => d.name);
    return { databases: page.items.map((d) => ({ name: d.name })), ...(page.links === undefined ? {} : { links: page.links }) };
  });

  app.post<Params>('/instances/:instanceId/databases', async (request, reply) => {
    const body = parseTroveBody(createDatabasesSchema, request.body);
    const target = await loadGuestTarget(deps, request, 'instance:extension:database:create', (c) => c.databases);
    const databases = validateDatabases(body.databases, target.schema);
    await target.guest.createDatabases({ databases }, target.context);
    reply.code(202).type('application/json').send();
  });

  app.delete<DatabaseParams>('/instances/:instanceId/databases/:name', async (request, reply) => {
    const target = await loadGuestTarget(deps, request, 'instance:extension:database:delete', (c) => c.databases);
    const name = validateDatabaseName(request.params.name, target.schema);
    await target.guest.deleteDatabase({ name }, target.context);
    reply.code(202).type('application/json').send();
  });

  // Trove routes it and never implemented it.
  app.get<DatabaseParams>('/instances/:instanceId/databases/:name', async () => {
    throw new CofferError(
      'NotImplemented',
      'The server has either erred or is incapable of performing the requested operation.',
    );
  });
}
