import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { CofferError } from '../../common/index.js';

// The web dashboard's files (dashboard/ in the repo): its page and stylesheet as written, its
// scripts as `npm ci` builds them (tsc -p dashboard/tsconfig.json into dist/dashboard). Nothing is
// fetched at run time, and the page talks to this same API with the token it holds in memory
// (never in storage: a reload logs out). A strict Content-Security-Policy lets the page run
// only these scripts and reach only this origin.

/** the repo's root, from this module in src/api/dashboard/ or dist/api/dashboard/ */
const root = new URL('../../../', import.meta.url);
const pageDir = fileURLToPath(new URL('dashboard/static/', root));
const scriptDir = fileURLToPath(new URL('dist/dashboard/', root));

const contentTypes: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
};

const securityHeaders = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

async function sendFile(reply: FastifyReply, dir: string, name: string): Promise<void> {
  // letters, digits and dashes, one extension, in the directory or its pages/: nothing else is served
  const match = /^(?:pages\/)?([a-z0-9-]+)\.(html|css|js)$/.exec(name);
  if (match === null) throw new CofferError('NotFound', 'The resource could not be found.');
  const body = await readFile(`${dir}${name}`).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
    const what = dir === scriptDir ? ' (the dashboard is not built: run `npm run build`)' : '';
    throw new CofferError('NotFound', `The dashboard has no file ${name}${what}.`);
  });
  reply.headers({ ...securityHeaders, 'content-type': contentTypes[match[2]!]! }).send(body);
}

export async function dashboardRoutes(app: FastifyInstance): Promise<void> {
  app.get('/dashboard', (_request, reply) => sendFile(reply, pageDir, 'index.html'));
  app.get<{ Params: { name: string } }>('/dashboard/static/:name', (request, reply) => sendFile(reply, pageDir, request.params.name));
  app.get<{ Params: { name: string } }>('/dashboard/js/:name', (request, reply) => sendFile(reply, scriptDir, request.params.name));
  app.get<{ Params: { name: string } }>('/dashboard/js/pages/:name', (request, reply) => sendFile(reply, scriptDir, `pages/${request.params.name}`));
}
