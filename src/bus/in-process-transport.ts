import type { Logger } from '../common/index.js';
import { silentLogger } from '../common/index.js';
import type { BusMessage, BusReply, EventHandler, MessageHandler, Subscription, Transport } from './transport.js';
import {
  callTimeout,
  checkTopic,
  decodeMessage,
  decodeReply,
  encodeMessage,
  encodeReply,
  transportClosed,
} from './wire-format.js';

// The transport of `coffer serve`: every role in one process. It keeps AMQP's semantics so
// that code tested here behaves the same against RabbitMQ: one queue per topic with competing
// consumers served round-robin, at most `prefetch` unsettled messages per consumer, a message
// settled only when its handler settles (a throw or a closed consumer puts it back), calls that
// expire in the queue, and messages encoded as on the wire.

export interface InProcessTransportOptions {
  logger?: Logger;
  /** unsettled messages per consumer, as AMQP's prefetch */
  prefetch?: number;
  /** pause before a message whose handler threw is offered again, so a poison message cannot spin */
  redeliveryDelayMs?: number;
}

interface Envelope {
  payload: string;
  /** set for calls: delivers the first reply; later ones are ignored */
  call?: PendingCall;
  /** handed to a consumer before and put back unsettled, as AMQP's redelivered flag */
  redelivered?: boolean;
}

interface PendingCall {
  settled: boolean;
  expiresAt: number;
  answer(replyText: string): void;
  fail(err: Error): void;
}

interface Consumer {
  handler: MessageHandler;
  /** messages handed to the handler and not yet settled */
  unsettled: Set<Envelope>;
  closed: boolean;
}

interface Topic {
  name: string;
  queue: Envelope[];
  consumers: Consumer[];
  next: number;
  dispatchScheduled: boolean;
}

export class InProcessTransport implements Transport {
  private readonly topics = new Map<string, Topic>();
  private readonly pendingCalls = new Set<PendingCall>();
  /** published topics: each listener gets every message (AMQP: a fanout exchange) */
  private readonly listeners = new Map<string, Set<EventHandler>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly logger: Logger;
  private readonly prefetch: number;
  private readonly redeliveryDelayMs: number;
  private closed = false;

  constructor(options: InProcessTransportOptions = {}) {
    this.logger = options.logger ?? silentLogger();
    this.prefetch = Math.max(1, options.prefetch ?? 16);
    this.redeliveryDelayMs = Math.max(0, options.redeliveryDelayMs ?? 250);
  }

  async cast(topic: string, message: BusMessage): Promise<void> {
    this.assertOpen();
    checkTopic(topic);
    this.enqueue(this.topic(topic), { payload: encodeMessage(message) });
  }

  async call(topic: string, message: BusMessage, timeoutMs: number): Promise<BusReply> {
    this.assertOpen();
    checkTopic(topic);
    const payload = encodeMessage(message);
    return new Promise<BusReply>((resolve, reject) => {
      const settle = () => {
        pending.settled = true;
        clearTimeout(timer);
        this.timers.delete(timer);
        this.pendingCalls.delete(pending);
      };
      const pending: PendingCall = {
        settled: false,
        expiresAt: Date.now() + timeoutMs,
        answer: (replyText) => {
          if (pending.settled) return;
          settle();
          try {
            resolve(decodeReply(replyText));
          } catch (err) {
            reject(err);
          }
        },
        fail: (err) => {
          if (pending.settled) return;
          settle();
          reject(err);
        },
      };
      const target = this.topic(topic);
      const envelope: Envelope = { payload, call: pending };
      const timer = setTimeout(() => {
        pending.fail(callTimeout(topic, message, timeoutMs));
        // A topic nobody consumes would otherwise keep every expired call it was sent.
        const waiting = target.queue.indexOf(envelope);
        if (waiting >= 0) target.queue.splice(waiting, 1);
      }, timeoutMs);
      this.timers.add(timer);
      this.pendingCalls.add(pending);
      this.enqueue(target, envelope);
    });
  }

  async subscribe(topic: string, handler: MessageHandler): Promise<Subscription> {
    this.assertOpen();
    checkTopic(topic);
    const consumer: Consumer = { handler, unsettled: new Set(), closed: false };
    const target = this.topic(topic);
    target.consumers.push(consumer);
    this.scheduleDispatch(target);
    return {
      close: async () => {
        if (consumer.closed) return;
        consumer.closed = true;
        const current = this.topics.get(topic);
        if (current !== target) return; // the topic was deleted, and its messages with it
        target.consumers = target.consumers.filter((c) => c !== consumer);
        // As a closed AMQP channel does: what the consumer had not settled goes back to the queue.
        for (const envelope of consumer.unsettled) envelope.redelivered = true;
        target.queue.unshift(...consumer.unsettled);
        consumer.unsettled.clear();
        this.scheduleDispatch(target);
      },
    };
  }

  async publish(topic: string, message: BusMessage): Promise<void> {
    this.assertOpen();
    checkTopic(topic);
    const payload = encodeMessage(message);
    for (const handler of this.listeners.get(topic) ?? []) {
      // after the sender's own code, as over a socket; each listener decodes its own copy
      queueMicrotask(() => {
        if (this.closed || this.listeners.get(topic)?.has(handler) !== true) return; // closed meanwhile
        handler(decodeMessage(payload)).catch((err: unknown) => this.logger.warn({ err, topic }, 'bus listener threw; the event is dropped'));
      });
    }
  }

  async listen(topic: string, handler: EventHandler): Promise<Subscription> {
    this.assertOpen();
    checkTopic(topic);
    let set = this.listeners.get(topic);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(topic, set);
    }
    // a wrapper of its own, so one handler listening twice is two listeners
    const listener: EventHandler = (message) => handler(message);
    set.add(listener);
    return {
      close: async () => {
        set.delete(listener);
      },
    };
  }

  async deleteTopic(topic: string): Promise<void> {
    this.assertOpen();
    checkTopic(topic);
    const target = this.topics.get(topic);
    if (target === undefined) return;
    this.topics.delete(topic);
    // As RabbitMQ cancels the consumers of a deleted queue; queued calls will time out.
    for (const consumer of target.consumers) {
      consumer.closed = true;
      consumer.unsettled.clear();
    }
    target.queue.length = 0;
  }

  /** In one process the bus is there as long as it is open. */
  async ping(): Promise<void> {
    if (this.closed) throw transportClosed();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const pending of [...this.pendingCalls]) pending.fail(transportClosed());
    for (const target of this.topics.values()) {
      for (const consumer of target.consumers) consumer.closed = true;
      target.queue.length = 0;
    }
    this.topics.clear();
    this.listeners.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw transportClosed();
  }

  private topic(name: string): Topic {
    let target = this.topics.get(name);
    if (target === undefined) {
      target = { name, queue: [], consumers: [], next: 0, dispatchScheduled: false };
      this.topics.set(name, target);
    }
    return target;
  }

  private enqueue(target: Topic, envelope: Envelope): void {
    target.queue.push(envelope);
    this.scheduleDispatch(target);
  }

  // Dispatch runs after the sender's own code, never inside cast()/call(), as over a socket.
  private scheduleDispatch(target: Topic): void {
    if (target.dispatchScheduled) return;
    target.dispatchScheduled = true;
    queueMicrotask(() => {
      target.dispatchScheduled = false;
      this.dispatch(target);
    });
  }

  private dispatch(target: Topic): void {
    if (this.closed || this.topics.get(target.name) !== target) return;
    while (target.queue.length > 0) {
      const consumer = this.nextConsumer(target);
      if (consumer === undefined) return;
      const envelope = target.queue.shift()!;
      // An expired or already answered call is dropped, as RabbitMQ drops an expired message.
      if (envelope.call !== undefined && (envelope.call.settled || envelope.call.expiresAt <= Date.now())) continue;
      consumer.unsettled.add(envelope);
      void this.deliver(target, consumer, envelope);
    }
  }

  private nextConsumer(target: Topic): Consumer | undefined {
    const count = target.consumers.length;
    for (let i = 0; i < count; i++) {
      const index = (target.next + i) % count;
      const consumer = target.consumers[index]!;
      if (consumer.unsettled.size < this.prefetch) {
        target.next = (index + 1) % count;
        return consumer;
      }
    }
    return undefined;
  }

  private async deliver(target: Topic, consumer: Consumer, envelope: Envelope): Promise<void> {
    let reply: BusReply;
    try {
      reply = await consumer.handler(decodeMessage(envelope.payload), { redelivered: envelope.redelivered === true });
    } catch (err) {
      this.logger.warn({ err, topic: target.name }, 'bus handler threw; the message will be redelivered');
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        // Still ours only if the consumer has not closed meanwhile (close requeued it already).
        if (!consumer.unsettled.delete(envelope)) return;
        envelope.redelivered = true;
        target.queue.unshift(envelope);
        this.scheduleDispatch(target);
      }, this.redeliveryDelayMs);
      this.timers.add(timer);
      return;
    }
    // A reply counts even when the consumer closed meanwhile: the first reply to a call wins.
    envelope.call?.answer(encodeReply(reply));
    if (consumer.unsettled.delete(envelope)) this.scheduleDispatch(target);
  }
}
