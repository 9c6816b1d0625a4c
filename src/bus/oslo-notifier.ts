import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { redactUrl, sleep, type Logger } from '../common/index.js';

// OpenStack notifications for operators who already consume Trove's (billing, Ceilometer): the
// oslo.messaging "messagingv2" envelope, published to a topic exchange (Trove's control exchange
// `trove`) with the routing key `notifications.info`, on a broker of the operator's choosing.
// They are not Coffer's bus: unsigned, for consumers outside Coffer, and a lost broker costs a
// notification (logged), never the operation that caused it.

export interface OsloNotifierOptions {
  /** amqp:// or amqps:// URL of the broker the consumers read */
  url: string;
  /** oslo's publisher_id, e.g. `taskmanager.<host>` */
  publisherId: string;
  logger: Logger;
  /** default `trove` (Trove's control_exchange) */
  exchange?: string;
  /** default `notifications` (oslo's notification topic); the routing key adds `.info` */
  topic?: string;
  /** tries per notification before it is given up, default 3 */
  attempts?: number;
}

export interface NotificationPublisher {
  /** publishes one INFO notification; rejects once every attempt failed */
  publish(eventType: string, payload: Record<string, unknown>): Promise<void>;
  close(): Promise<void>;
}

interface Connection {
  model: ChannelModel;
  channel: ConfirmChannel;
}

/** oslo's timestamp: Python's str(datetime.utcnow()), microseconds included */
export function osloTimestamp(date: Date): string {
  return `${date.toISOString().replace('T', ' ').replace('Z', '')}000`;
}

export class OsloNotifier implements NotificationPublisher {
  private connection: Promise<Connection> | undefined;
  private opened: ChannelModel | undefined;
  private closed = false;
  private readonly exchange: string;
  private readonly routingKey: string;

  constructor(private readonly options: OsloNotifierOptions) {
    this.exchange = options.exchange ?? 'trove';
    this.routingKey = `${options.topic ?? 'notifications'}.info`;
  }

  async publish(eventType: string, payload: Record<string, unknown>): Promise<void> {
    const message = {
      message_id: randomUUID(),
      publisher_id: this.options.publisherId,
      event_type: eventType,
      priority: 'INFO',
      payload,
      timestamp: osloTimestamp(new Date()),
    };
    const body = Buffer.from(JSON.stringify({ 'oslo.version': '2.0', 'oslo.message': JSON.stringify(message) }));
    const attempts = this.options.attempts ?? 3;
    for (let attempt = 1; ; attempt++) {
      try {
        const { channel } = await this.connect();
        channel.publish(this.exchange, this.routingKey, body, { contentType: 'application/json', contentEncoding: 'utf-8', persistent: true, messageId: message.message_id });
        await channel.waitForConfirms();
        return;
      } catch (err) {
        this.reset();
        if (this.closed || attempt >= attempts) throw err;
        await sleep(250 * 2 ** attempt);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const connection = this.connection;
    this.connection = undefined;
    if (connection !== undefined) await connection.then((c) => c.model.close()).catch(() => undefined);
  }

  private connect(): Promise<Connection> {
    this.connection ??= this.open();
    return this.connection;
  }

  private async open(): Promise<Connection> {
    const model = await amqp.connect(this.options.url);
    model.on('error', (err: Error) => this.options.logger.warn({ err: err.message, broker: redactUrl(this.options.url) }, 'notification broker connection error'));
    // a connection the broker dropped is replaced at the next publish
    model.on('close', () => {
      if (this.opened === model) this.connection = undefined;
    });
    try {
      // oslo declares its exchanges non-durable by default; an operator's broker may already have
      // `trove` declared otherwise, which a declaration with other flags would refuse (and close
      // the channel): then the exchange is only checked to exist.
      const probe = await model.createChannel();
      probe.on('error', () => undefined);
      const declared = await probe.assertExchange(this.exchange, 'topic', { durable: false }).then(
        () => true,
        () => false,
      );
      if (declared) await probe.close();
      const channel = await model.createConfirmChannel();
      if (!declared) await channel.checkExchange(this.exchange);
      this.opened = model;
      return { model, channel };
    } catch (err) {
      await model.close().catch(() => undefined);
      throw err;
    }
  }

  private reset(): void {
    const connection = this.connection;
    this.connection = undefined;
    connection?.then((c) => c.model.close()).catch(() => undefined);
  }
}
