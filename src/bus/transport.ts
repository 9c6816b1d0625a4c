import type { WireError } from '../common/index.js';

// The transport port: moves messages by topic. Two adapters pass one conformance suite
// (test/bus/transport.suite.ts): in-process for `coffer serve`, AMQP 0-9-1 for RabbitMQ.

/** Who asked, carried by every message so each log line can name the request. */
export interface RequestContext {
  requestId: string;
  projectId?: string;
  userId?: string;
  instanceId?: string;
}

export interface BusMessage {
  /** contract name, e.g. "taskmanager" */
  service: string;
  /** contract version the sender speaks, e.g. "1.0" */
  version: string;
  method: string;
  args: unknown;
  context: RequestContext;
  /** sender's clock, epoch milliseconds (fractional); receivers use it to drop stale messages */
  sentAt: number;
}

export type BusReply = { ok: true; result: unknown } | { ok: false; error: WireError };

export type MessageHandler = (message: BusMessage) => Promise<BusReply>;

export interface Subscription {
  /** stop consuming; messages not yet taken stay queued for other consumers */
  close(): Promise<void>;
}

export interface Transport {
  /**
   * Fire and forget to one consumer of `topic`. Resolves once the message is accepted (on AMQP:
   * persisted and confirmed by the broker), so an acknowledged cast survives a broker restart.
   * Casts to a topic nobody consumes yet wait in its queue.
   */
  cast(topic: string, message: BusMessage): Promise<void>;
  /**
   * Request/reply to one consumer of `topic`. Rejects with CofferError `BusTimeout` when no
   * reply arrives within `timeoutMs`, and `BusUnavailable` when the transport is closed.
   */
  call(topic: string, message: BusMessage, timeoutMs: number): Promise<BusReply>;
  /**
   * Consume `topic`. Several consumers of one topic compete: each message goes to one of them.
   * A cast is acknowledged only after `handler` settles, so a consumer that dies mid-way leaves
   * the message to be redelivered (handlers must be idempotent).
   */
  subscribe(topic: string, handler: MessageHandler): Promise<Subscription>;
  /** drop a topic and whatever waits in it (a deleted instance's guest topic) */
  deleteTopic(topic: string): Promise<void>;
  close(): Promise<void>;
}
