import type { Channel, ConsumeMessage } from 'amqplib';
import type { Logger } from '../common/index.js';
import { describe, queueName, quietly, type Session } from './amqp-session.js';
import type { BusMessage, BusReply, MessageHandler, Subscription } from './transport.js';
import { decodeMessage } from './wire-format.js';

/** What a consumer may use of its transport. */
export interface ConsumerHost {
  settings(): { prefetch: number; redeliveryDelayMs: number; reconnectDelayMs: number; logger: Logger };
  currentSession(): Session | undefined;
  forget(consumer: AmqpConsumer): void;
  sendReply(replyTo: string, correlationId: unknown, reply: BusReply): void;
}

/** One subscription: a channel of its own, so its prefetch and its failures stay its own. */
export class AmqpConsumer implements Subscription {
  private channel: Channel | undefined;
  private closed = false;
  /** the broker cancelled us: the queue was deleted */
  private cancelled = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly host: ConsumerHost,
    private readonly topic: string,
    private readonly handler: MessageHandler,
  ) {}

  async start(session: Session): Promise<void> {
    if (this.closed || this.cancelled) return;
    const { prefetch } = this.host.settings();
    const ch = await session.model.createChannel();
    this.channel = ch;
    ch.on('error', (err: unknown) =>
      this.host.settings().logger.warn({ err: describe(err), topic: this.topic }, 'bus consumer channel error'),
    );
    ch.on('close', () => {
      if (this.channel === ch) this.channel = undefined;
      // A channel closed by an error on a healthy connection: consume again after a pause.
      if (!this.closed && !this.cancelled && session.alive) this.retryLater(session);
    });
    await ch.prefetch(prefetch);
    await ch.assertQueue(queueName(this.topic), { durable: true });
    await ch.consume(queueName(this.topic), (msg) => this.onDelivery(ch, msg), { noAck: false });
    if (this.closed) await quietly(() => ch.close());
  }

  async restart(session: Session): Promise<void> {
    try {
      await this.start(session);
    } catch (err) {
      this.host.settings().logger.warn({ err: describe(err), topic: this.topic }, 'could not resume consuming');
      if (session.alive) this.retryLater(session);
    }
  }

  async close(): Promise<void> {
    const ch = this.channel;
    this.dispose();
    this.host.forget(this);
    // Closing the channel hands every unacknowledged message back to the queue.
    if (ch !== undefined) await quietly(() => ch.close());
  }

  dispose(): void {
    this.closed = true;
    this.channel = undefined;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private retryLater(session: Session): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.closed || this.cancelled || this.channel !== undefined) return;
      if (session.alive && this.host.currentSession() === session) void this.restart(session);
    }, this.host.settings().reconnectDelayMs);
    this.timers.add(timer);
  }

  private onDelivery(ch: Channel, msg: ConsumeMessage | null): void {
    if (msg === null) {
      this.cancelled = true;
      this.host.settings().logger.info({ topic: this.topic }, 'the broker cancelled a bus consumer (queue deleted)');
      this.host.forget(this);
      void quietly(() => ch.close());
      return;
    }
    void this.handle(ch, msg);
  }

  private async handle(ch: Channel, msg: ConsumeMessage): Promise<void> {
    const { logger, redeliveryDelayMs } = this.host.settings();
    let message: BusMessage;
    try {
      message = decodeMessage(msg.content.toString('utf8'));
    } catch (err) {
      // Nothing could ever handle it: drop it rather than loop on it.
      logger.error({ err: describe(err), topic: this.topic }, 'dropping a malformed bus message');
      await quietly(() => ch.nack(msg, false, false));
      return;
    }
    let reply: BusReply;
    try {
      reply = await this.handler(message, { redelivered: msg.fields.redelivered });
    } catch (err) {
      logger.warn({ err, topic: this.topic, requestId: message.context.requestId }, 'bus handler threw; the message will be redelivered');
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        void quietly(() => ch.nack(msg, false, true));
      }, redeliveryDelayMs);
      this.timers.add(timer);
      return;
    }
    const replyTo: unknown = msg.properties.replyTo;
    if (typeof replyTo === 'string' && replyTo !== '') this.host.sendReply(replyTo, msg.properties.correlationId, reply);
    await quietly(() => ch.ack(msg));
  }
}
