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
  /** the sender's signature (signed-transport.ts); absent on what a transport carries unsigned */
  seal?: MessageSeal;
}

/** Authenticates one message: an HMAC over the destination topic, the id and every other field. */
export interface MessageSeal {
  /** format version of the signed text */
  v: 1;
  /** unique per message, so a receiver can tell a replay from a new message */
  id: string;
  /** the topic the sender addressed, so a message moved to another queue is refused */
  topic: string;
  /** fingerprint of the key it was signed with (BusKey.id) */
  keyId: string;
  /** base64 HMAC-SHA256 */
  mac: string;
}

/** What the transport knows about one delivery. */
export interface Delivery {
  /**
   * The broker handed this message out before and it was never acknowledged (its handler threw,
   * or its consumer went away): AMQP's `redelivered` flag, which only the broker sets.
   */
  redelivered: boolean;
}

export type BusReply = { ok: true; result: unknown } | { ok: false; error: WireError };

export type MessageHandler = (message: BusMessage, delivery: Delivery) => Promise<BusReply>;

/** Takes one published message; nothing is acknowledged or answered. */
export type EventHandler = (message: BusMessage) => Promise<void>;

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
  /**
   * Broadcast, best effort: every listener of `topic` at that moment gets its own copy. Nothing is
   * kept for a listener that is away or comes later, and a broker drop may lose a message, so
   * what is published is a hint that the receiver can also learn some slower way.
   */
  publish(topic: string, message: BusMessage): Promise<void>;
  /** Listens to what is published on `topic`: unlike subscribe, every listener gets every message. */
  listen(topic: string, handler: EventHandler): Promise<Subscription>;
  /** drop a topic and whatever waits in it (a deleted instance's guest topic) */
  deleteTopic(topic: string): Promise<void>;
  /**
   * Resolves when the transport can carry a message now (on AMQP: a round trip to the broker on
   * the live connection), else rejects with `BusUnavailable` without waiting for a reconnection:
   * what a role's readiness check asks.
   */
  ping(): Promise<void>;
  close(): Promise<void>;
}
