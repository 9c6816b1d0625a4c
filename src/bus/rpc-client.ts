import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { CofferError, fromWireError } from '../common/index.js';
import { messageVersion, type CallMethod, type CastMethod, type MethodContract, type ServiceContract } from './contract.js';
import type { RequestContext, Transport } from './transport.js';

type ClientMethod<M extends MethodContract> =
  M extends CallMethod<infer I, infer O>
    ? (args: z.input<I>, context?: RequestContext) => Promise<z.output<O>>
    : M extends CastMethod<infer I>
      ? (args: z.input<I>, context?: RequestContext) => Promise<void>
      : never;

export type RpcClient<C extends ServiceContract> = {
  [K in keyof C['methods']]: ClientMethod<C['methods'][K]>;
};

export interface RpcClientOptions {
  /** overrides a call's contract timeout (tests) */
  timeoutMs?: number;
}

/**
 * A typed proxy for one service on one topic. Inputs are validated before sending, outputs after
 * receiving; an error raised by the server comes back as the same CofferError.
 */
export function createRpcClient<C extends ServiceContract>(
  transport: Transport,
  contract: C,
  topic: string,
  options: RpcClientOptions = {},
): RpcClient<C> {
  const client: Record<string, unknown> = {};
  for (const [method, spec] of Object.entries(contract.methods)) {
    client[method] = async (rawArgs: unknown, context?: RequestContext) => {
      const parsed = spec.input.safeParse(rawArgs);
      if (!parsed.success) {
        throw new CofferError('BadRequest', `Invalid arguments for ${contract.name}.${method}: ${parsed.error.message}`);
      }
      const message = {
        service: contract.name,
        version: messageVersion(contract, spec),
        method,
        args: parsed.data,
        context: context ?? { requestId: `req-${randomUUID()}` },
        sentAt: performance.timeOrigin + performance.now(),
      };
      if (spec.kind === 'cast') {
        await transport.cast(topic, message);
        return undefined;
      }
      const reply = await transport.call(topic, message, options.timeoutMs ?? spec.timeoutMs);
      if (!reply.ok) throw fromWireError(reply.error);
      const output = spec.output.safeParse(reply.result);
      if (!output.success) {
        throw new CofferError('Internal', `Invalid reply from ${contract.name}.${method}: ${output.error.message}`);
      }
      return output.data;
    };
  }
  return client as RpcClient<C>;
}
