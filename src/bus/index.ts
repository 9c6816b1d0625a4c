// The message bus: typed RPC by topic between Coffer's roles. Contracts (contracts/*.ts) are data
// that both ends validate against; createRpcClient/serveRpc turn them into typed proxies and
// handlers over a Transport: in-process for `coffer serve`, AMQP to RabbitMQ for everything else.
// The roles' transport signs every message and refuses what it cannot verify (SignedTransport).
import { CofferError } from '../common/index.js';
import type { Logger } from '../common/index.js';
import { AmqpTransport } from './amqp-transport.js';
import { InProcessTransport } from './in-process-transport.js';
import type { BusKey } from './bus-key.js';
import { SignedTransport } from './signed-transport.js';
import type { Transport } from './transport.js';

export type {
  BusMessage,
  BusReply,
  Delivery,
  EventHandler,
  MessageHandler,
  MessageSeal,
  RequestContext,
  Subscription,
  Transport,
} from './transport.js';
export { BusKey, busKeyHowTo, minBusKeyBytes } from './bus-key.js';
export type { SealCheck } from './message-seal.js';
export { checkSeal, sealMessage } from './message-seal.js';
export type { SignedTransportOptions } from './signed-transport.js';
export { defaultMaxAgeMs, defaultMaxSkewMs, SignedTransport } from './signed-transport.js';
export { LogThrottle } from './log-throttle.js';
export { OsloNotifier, type NotificationPublisher, type OsloNotifierOptions } from './oslo-notifier.js';
export type { BusCallObservation, BusCallObserver, BusCallOutcome } from './observed-transport.js';
export { ObservedTransport } from './observed-transport.js';
export type { CallMethod, CastMethod, MethodContract, ServiceContract } from './contract.js';
export { call, cast, defineService, servesVersion } from './contract.js';
export type { RpcClient, RpcClientOptions } from './rpc-client.js';
export { createRpcClient } from './rpc-client.js';
export type { MessageMeta, RpcHandlers, ServeRpcOptions } from './rpc-server.js';
export { defaultMaxCastAttempts, serveRpc } from './rpc-server.js';
export * from './contracts/agent.js';
export * from './contracts/conductor.js';
export * from './contracts/guest.js';
export * from './contracts/instance-status.js';
export * from './contracts/taskmanager.js';
export type { InProcessTransportOptions } from './in-process-transport.js';
export { InProcessTransport } from './in-process-transport.js';
export type { AmqpTransportOptions } from './amqp-transport.js';
export { AmqpTransport } from './amqp-transport.js';

export interface ConnectTransportOptions {
  /** signs every message sent and checks every message received */
  key: BusKey;
  logger?: Logger;
  /** unsettled messages per consumer */
  prefetch?: number;
  /** AMQP only: first pause before reconnecting after the broker went away */
  reconnectDelayMs?: number;
  /** AMQP only: how long a cast waits for a lost broker to come back */
  reconnectWaitMs?: number;
}

/**
 * The transport a bus URL names: none, `memory:` or `inproc:` for the in-process bus (every role
 * in this process), `amqp://` or `amqps://` for RabbitMQ; either way signed with `options.key`.
 */
export async function connectTransport(url: string | undefined, options: ConnectTransportOptions): Promise<SignedTransport> {
  const signed = (inner: Transport) => new SignedTransport(inner, { key: options.key, logger: options.logger });
  const trimmed = url?.trim() ?? '';
  if (trimmed === '' || trimmed === 'memory:' || trimmed === 'inproc:') {
    return signed(new InProcessTransport({ logger: options.logger, prefetch: options.prefetch }));
  }
  if (/^amqps?:\/\//i.test(trimmed)) return signed(await AmqpTransport.connect(trimmed, options));
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(trimmed)?.[1];
  throw new CofferError(
    'BadRequest',
    `Unsupported message bus URL${scheme === undefined ? '' : ` scheme "${scheme}:"`}: use amqp://user:password@host:5672/vhost, amqps://..., or memory: for the in-process bus.`,
  );
}
