import type { z } from 'zod';
import { CofferError, isTransientError, toWireError } from '../common/index.js';
import type { Logger } from '../common/index.js';
import { CastAttempts } from './cast-attempts.js';
import { servesVersion } from './contract.js';
import type { CallMethod, CastMethod, MethodContract, ServiceContract } from './contract.js';
import type { MessageHandler, RequestContext, Subscription, Transport } from './transport.js';
import { unknownFields } from './unknown-fields.js';

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

export interface ServeRpcOptions {
  /**
   * How many times a cast whose handler fails with a transient error (isTransientError) is
   * handled in all, by this process, before it is logged and dropped. A call is never
   * redelivered: its caller sees the error and decides.
   */
  maxCastAttempts?: number;
}

export const defaultMaxCastAttempts = 5;

/** Dispatches one message to its handler. */
function createDispatcher<C extends ServiceContract>(
  contract: C,
  handlers: RpcHandlers<C>,
  logger: Logger | undefined,
  options: ServeRpcOptions,
): MessageHandler {
  const attempts = new CastAttempts(Math.max(1, options.maxCastAttempts ?? defaultMaxCastAttempts));
  return async (message) => {
    const log = logger?.child({ requestId: message.context.requestId, method: message.method });
    const spec = contract.methods[message.method];
    try {
      if (message.service !== contract.name) {
        throw new CofferError('BadRequest', `Message for service ${message.service} reached ${contract.name}.`);
      }
      if (!servesVersion(contract.version, message.version)) {
        throw new CofferError(
          'ContractVersionUnsupported',
          `This ${contract.name} serves contract version ${contract.version}; the message to ${contract.name}.${message.method} speaks ${message.version}. Run the same Coffer version on every role.`,
        );
      }
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
      const unknown = unknownFields(message.args, args.data);
      if (unknown.length > 0) {
        throw new CofferError(
          'BadRequest',
          `Unknown field${unknown.length > 1 ? 's' : ''} in the arguments of ${contract.name}.${message.method} (version ${contract.version}): ${unknown.slice(0, 10).join(', ')}.`,
        );
      }
      const result = await handler(args.data, { context: message.context, sentAt: message.sentAt });
      if (spec.kind === 'cast') attempts.forget(message);
      return { ok: true, result: result ?? null };
    } catch (err) {
      if (spec?.kind === 'cast' && isTransientError(err)) {
        const attempt = attempts.failed(message);
        if (attempt < attempts.max) {
          log?.warn({ err, attempt, maxAttempts: attempts.max }, 'cast failed with a transient error; it will be redelivered');
          // a throw leaves the message unsettled: both transports offer it again after a pause
          throw err;
        }
        attempts.forget(message);
        log?.error({ err, attempts: attempt }, 'cast failed with a transient error too many times; dropping it');
      } else {
        log?.warn({ err }, 'rpc handler failed');
      }
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
  options: ServeRpcOptions = {},
): Promise<Subscription> {
  return transport.subscribe(topic, createDispatcher(contract, handlers, logger, options));
}
