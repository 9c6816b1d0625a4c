import { z } from 'zod';

// The parts of Keystone v3's answers Coffer reads, checked where they enter. Keystone adds
// fields over releases; unknown ones pass through unread.

const named = z.object({ id: z.string().min(1), name: z.string().optional() });

export const catalogEndpointSchema = z.object({
  id: z.string().optional(),
  interface: z.string(),
  region_id: z.string().nullable().optional(),
  region: z.string().nullable().optional(),
  url: z.string(),
});

/** The body of POST /v3/auth/tokens and GET /v3/auth/tokens. */
export const tokenBodySchema = z.object({
  token: z.object({
    expires_at: z.string(),
    user: named,
    project: named.optional(),
    roles: z.array(z.object({ id: z.string().optional(), name: z.string() })).default([]),
    catalog: z
      .array(z.object({ type: z.string(), name: z.string().optional(), endpoints: z.array(catalogEndpointSchema) }))
      .optional(),
  }),
});
export type TokenBody = z.output<typeof tokenBodySchema>;

export const serviceSchema = z.object({ id: z.string(), type: z.string(), name: z.string().optional() });
export const servicesBodySchema = z.object({ services: z.array(serviceSchema) });
export const serviceBodySchema = z.object({ service: serviceSchema });
export type KeystoneService = z.output<typeof serviceSchema>;

export const endpointSchema = z.object({
  id: z.string(),
  service_id: z.string(),
  interface: z.string(),
  region_id: z.string().nullable().optional(),
  url: z.string(),
});
export const endpointsBodySchema = z.object({ endpoints: z.array(endpointSchema) });
export type KeystoneEndpoint = z.output<typeof endpointSchema>;
