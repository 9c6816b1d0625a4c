import type { z } from 'zod';
import { CofferError, toWireError } from '../common/index.js';
import type { Logger } from '../common/index.js';
import type { CallMethod, CastMethod, MethodContract, ServiceContract } from './contract.js';
import type { BusMessage, BusReply, RequestContext, Subscription, Transport } from './transport.js';

export interface MessageMeta {
  context: RequestContext;
  /** sender's clock, epoch milliseconds */
  sentAt: number;
}

type HandlerFor<M extends MethodContract> =
  M extends CallMethod<infer I, infer O>
    ? (args: z.output<I>, meta: MessageMeta) => Promise<z.input<O>>
    : M extends CastMethod<infer I>
      ? (args: z.output<I>, meta: MessageMeta) => Promise<void>
      : never;

export type RpcHandlers<C extends ServiceContract> = {
  [K in keyof C['methods']]: HandlerFor<C['methods'][K]>;
};

/** Dispatches one message to its handler. */
function createDispatcher<C extends ServiceContract>(
  contract: C,
  handlers: RpcHandlers<C>,
  logger?: Logger,
): (message: BusMessage) => Promise<BusReply> {
  return async (message) => {
    const log = logger?.child({ requestId: message.context.requestId, method: message.method });
    try {
      if (message.service !== contract.name) {
        throw new CofferError('BadRequest', `Message for service ${message.service} reached ${contract.name}.`);
      }
      const spec = contract.methods[message.method];
      const handler = (handlers as Record<string, ((args: unknown, meta: MessageMeta) => Promise<unknown>) | undefined>)[
        message.method
      ];
      if (spec === undefined || handler === undefined) {
        throw new CofferError('NotImplemented', `${contract.name} has no method ${message.method}.`);
      }
      const args = spec.input.safeParse(message.args);
      if (!args.success) {
        throw new CofferError('BadRequest', `Invalid arguments for ${contract.name}.${message.method}: ${args.error.message}`);
      }
      const result = await handler(args.data, { context: message.context, sentAt: message.sentAt });
      return { ok: true, result: result ?? null };
    } catch (err) {
      log?.warn({ err }, 'rpc handler failed');
      return { ok: false, error: toWireError(err) };
    }
  };
}

/** Serves `contract` on `topic` with `handlers`. */
export function serveRpc<C extends ServiceContract>(
  transport: Transport,
  contract: C,
  topic: string,
  handlers: RpcHandlers<C>,
  logger?: Logger,
): Promise<Subscription> {
  return transport.subscribe(topic, createDispatcher(contract, handlers, logger));
}
