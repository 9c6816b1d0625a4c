import { z } from 'zod';
import { CofferError } from '../../common/index.js';
import { parseTroveBody } from '../parse-body.js';

// The body of POST /instances/{id}/action (reference 2.2; trove/common/apischema.py action):
// one action key, whose value the action's schema checks. Other keys are ignored, as Trove's
// schemas allow additional properties; a body naming no known action, or two, is refused.

const positiveSize = z.union([z.number().int().min(1), z.string().regex(/^0*[1-9]+[0-9]*$/, 'is not a positive integer')]);
const anyOptions = z.looseObject({}).nullable();

const actionSchemas = {
  restart: z.object({ restart: z.looseObject({}) }),
  resize: z.object({
    resize: z.looseObject({
      flavorRef: z.union([z.string().min(1), z.number().int()]).optional(),
      volume: z.looseObject({ size: positiveSize }).optional(),
    }),
  }),
  reset_status: z.object({ reset_status: z.looseObject({ force_delete: z.boolean().optional() }).nullable() }),
  promote_to_replica_source: z.object({ promote_to_replica_source: anyOptions }),
  eject_replica_source: z.object({ eject_replica_source: anyOptions }),
  // Coffer's (issue 13), in the shape of Trove's restart
  stop: z.object({ stop: z.looseObject({}) }),
  start: z.object({ start: z.looseObject({}) }),
};

export type InstanceAction =
  | { kind: 'restart' }
  | { kind: 'resize_flavor'; flavorRef: string | number }
  | { kind: 'resize_volume'; sizeGb: number }
  | { kind: 'reset_status'; forceDelete: boolean }
  | { kind: 'promote_to_replica_source' }
  | { kind: 'eject_replica_source' }
  | { kind: 'stop' }
  | { kind: 'start' };

const actionNames = Object.keys(actionSchemas) as (keyof typeof actionSchemas)[];

export function parseInstanceAction(body: unknown): InstanceAction {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new CofferError('ValidationError', 'Validation error: the body must be an object naming one action.');
  }
  const named = actionNames.filter((name) => name in body);
  if (named.length === 0) {
    const keys = Object.keys(body);
    throw new CofferError(
      'BadRequest',
      keys.length === 0
        ? `No action given: expected one of ${actionNames.join(', ')}.`
        : `Invalid instance action: ${keys.join(', ')}. Expected one of ${actionNames.join(', ')}.`,
    );
  }
  if (named.length > 1) throw new CofferError('BadRequest', `Only one action may be performed at a time, not ${named.join(' and ')}.`);
  switch (named[0]!) {
    case 'restart':
      parseTroveBody(actionSchemas.restart, body);
      return { kind: 'restart' };
    case 'resize': {
      const { resize } = parseTroveBody(actionSchemas.resize, body);
      if (resize.volume !== undefined && resize.flavorRef !== undefined) {
        throw new CofferError('BadRequest', 'Not allowed to resize volume and flavor at the same time.');
      }
      if (resize.volume !== undefined) return { kind: 'resize_volume', sizeGb: Number(resize.volume.size) };
      if (resize.flavorRef !== undefined) return { kind: 'resize_flavor', flavorRef: resize.flavorRef };
      throw new CofferError('BadRequest', 'Missing resize arguments.');
    }
    case 'reset_status': {
      const { reset_status: options } = parseTroveBody(actionSchemas.reset_status, body);
      return { kind: 'reset_status', forceDelete: options?.force_delete === true };
    }
    case 'promote_to_replica_source':
      parseTroveBody(actionSchemas.promote_to_replica_source, body);
      return { kind: 'promote_to_replica_source' };
    case 'eject_replica_source':
      parseTroveBody(actionSchemas.eject_replica_source, body);
      return { kind: 'eject_replica_source' };
    case 'stop':
      parseTroveBody(actionSchemas.stop, body);
      return { kind: 'stop' };
    case 'start':
      parseTroveBody(actionSchemas.start, body);
      return { kind: 'start' };
  }
}
