import { randomUUID } from 'node:crypto';
import type { Channel, ConsumeMessage } from 'amqplib';
import type { Logger } from '../common/index.js';
import { describe, quietly, type Session } from './amqp-session.js';
import type { EventHandler, Subscription } from './transport.js';
import { decodeMessage } from './wire-format.js';

/** The fanout exchange a published topic goes to: apart from the queues' names (default exchange). */
export function exchangeName(topic: string): string {
  return `coffer.fanout.${topic}`;
}

/** Declares a published topic's exchange: not durable, as nothing published outlives its listeners. */
export async function declareExchange(ch: Channel, topic: string): Promise<void> {
  await ch.assertExchange(exchangeName(topic), 'fanout', { durable: false });
}

/**
 * One listener of a published topic: a queue of its own, exclusive to its connection and bound
 * to the topic's fanout exchange, so every listener gets every message while it is connected.
 * The broker drops the queue with the connection; a reconnection binds a new one (what was
 * published in between is lost, as publish() says).
 */
export class AmqpListener implements Subscription {
  private channel: Channel | undefined;
  private closed = false;

  constructor(
    private readonly topic: string,
    private readonly handler: EventHandler,
    private readonly logger: Logger,
    private readonly forget: (listener: AmqpListener) => void,
  ) {}

  async start(session: Session): Promise<void> {
    if (this.closed) return;
    const ch = await session.model.createChannel();
    this.channel = ch;
    ch.on('error', (err: unknown) => this.logger.warn({ err: describe(err), topic: this.topic }, 'bus listener channel error'));
    ch.on('close', () => {
      if (this.channel === ch) this.channel = undefined;
    });
    await declareExchange(ch, this.topic);
    // named under coffer. as every other queue, so a broker user limited to those can listen too
    const { queue } = await ch.assertQueue(`${exchangeName(this.topic)}.${randomUUID()}`, { exclusive: true, autoDelete: true });
    await ch.bindQueue(queue, exchangeName(this.topic), '');
    await ch.consume(queue, (msg) => this.onMessage(msg), { noAck: true });
    if (this.closed) await quietly(() => ch.close());
  }

  async restart(session: Session): Promise<void> {
    try {
      await this.start(session);
    } catch (err) {
      // Events are hints: a listener that could not come back costs its owner only latency.
      this.logger.warn({ err: describe(err), topic: this.topic }, 'could not resume listening');
    }
  }

  async close(): Promise<void> {
    const ch = this.channel;
    this.dispose();
    this.forget(this);
    if (ch !== undefined) await quietly(() => ch.close());
  }

  dispose(): void {
    this.closed = true;
    this.channel = undefined;
  }

  private onMessage(msg: ConsumeMessage | null): void {
    if (msg === null || this.closed) return;
    let message;
    try {
      message = decodeMessage(msg.content.toString('utf8'));
    } catch (err) {
      this.logger.error({ err: describe(err), topic: this.topic }, 'dropping a malformed published message');
      return;
    }
    this.handler(message).catch((err: unknown) => this.logger.warn({ err, topic: this.topic }, 'bus listener threw; the event is dropped'));
  }
}
