import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import type { Channel, ConsumeMessage, Options } from 'amqplib';
import { CofferError, redactUrl, silentLogger } from '../common/index.js';
import type { Logger } from '../common/index.js';
import { AmqpConsumer, type ConsumerHost } from './amqp-consumer.js';
import { AmqpListener, declareExchange, exchangeName } from './amqp-listener.js';
import { describe, queueName, quietly, type Session } from './amqp-session.js';
import type { BusMessage, BusReply, EventHandler, MessageHandler, Subscription, Transport } from './transport.js';
import { callTimeout, checkTopic, decodeReply, encodeMessage, encodeReply, transportClosed } from './wire-format.js';

// AMQP 0-9-1 to RabbitMQ: one durable queue per topic (`coffer.<topic>`, default exchange).
// Casts are persistent and confirmed by the broker before cast() resolves; consumers ack after
// the handler settles. Calls use direct reply-to: a caller needs no reply queue of its own.
// The connection heals itself: after a drop it reconnects, re-declares and re-subscribes.

export interface AmqpTransportOptions {
  logger?: Logger;
  /** unsettled messages per consumer (AMQP prefetch); also how many handlers run at once per subscription */
  prefetch?: number;
  /** first pause before reconnecting; doubles on each failure up to 10x */
  reconnectDelayMs?: number;
  /** how long cast/subscribe/deleteTopic wait for a lost connection to come back before BusUnavailable */
  reconnectWaitMs?: number;
  /** pause before a message whose handler threw is requeued, so a poison message cannot spin */
  redeliveryDelayMs?: number;
  /** shown in RabbitMQ's connection list */
  connectionName?: string;
}

const directReplyTo = 'amq.rabbitmq.reply-to';
const defaultHeartbeatSeconds = 15;

// amqplib's default heartbeat is the broker's (60 s): a silent network loss would go unnoticed
// for two minutes.
function withHeartbeat(url: string): string {
  const parsed = new URL(url);
  if (!parsed.searchParams.has('heartbeat')) parsed.searchParams.set('heartbeat', String(defaultHeartbeatSeconds));
  return parsed.toString();
}

interface PendingCall {
  session: Session;
  resolve(reply: BusReply): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

interface Waiter {
  resolve(session: Session): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class AmqpTransport implements Transport {
  private session: Session | undefined;
  private opening: Promise<unknown> | undefined;
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly pending = new Map<string, PendingCall>();
  private readonly waiters = new Set<Waiter>();
  private readonly consumers = new Set<AmqpConsumer>();
  private readonly listeners = new Set<AmqpListener>();
  private readonly logger: Logger;
  private readonly prefetch: number;
  private readonly reconnectDelayMs: number;
  private readonly reconnectWaitMs: number;
  private readonly redeliveryDelayMs: number;
  private readonly connectionName: string;
  private readonly displayUrl: string;

  private constructor(
    private readonly url: string,
    options: AmqpTransportOptions,
  ) {
    this.logger = options.logger ?? silentLogger();
    this.prefetch = Math.max(1, options.prefetch ?? 16);
    this.reconnectDelayMs = Math.max(10, options.reconnectDelayMs ?? 500);
    this.reconnectWaitMs = Math.max(0, options.reconnectWaitMs ?? 15_000);
    this.redeliveryDelayMs = Math.max(0, options.redeliveryDelayMs ?? 250);
    this.connectionName = options.connectionName ?? `coffer pid ${process.pid}`;
    this.displayUrl = redactUrl(url);
  }

  /** Connects once; a broker that cannot be reached now is BusUnavailable (later drops heal). */
  static async connect(url: string, options: AmqpTransportOptions = {}): Promise<AmqpTransport> {
    const transport = new AmqpTransport(url, options);
    try {
      const opening = transport.openSession();
      transport.opening = opening;
      transport.session = await opening;
    } catch (err) {
      throw new CofferError('BusUnavailable', `Cannot connect to the message broker at ${transport.displayUrl}: ${describe(err)}`, {
        cause: err,
      });
    } finally {
      transport.opening = undefined;
    }
    return transport;
  }

  async cast(topic: string, message: BusMessage): Promise<void> {
    this.assertOpen();
    checkTopic(topic);
    const content = Buffer.from(encodeMessage(message));
    const deadline = Date.now() + this.reconnectWaitMs;
    // A connection lost before the broker confirmed leaves the outcome unknown: publish again on
    // the next connection (at least once; handlers are idempotent).
    for (;;) {
      const session = await this.waitForSession(deadline);
      try {
        await this.declare(session, topic);
        if (await this.publishConfirmed(session, topic, content, message)) return;
        // returned as unroutable: the queue was deleted behind our back; declare it again
        session.declared.delete(topic);
      } catch (err) {
        if (this.closed) throw transportClosed();
        if (session.alive) throw err;
        this.logger.debug({ topic, err }, 'connection lost while casting; retrying on the next one');
      }
    }
  }

  async call(topic: string, message: BusMessage, timeoutMs: number): Promise<BusReply> {
    this.assertOpen();
    checkTopic(topic);
    const content = Buffer.from(encodeMessage(message));
    const deadline = Date.now() + timeoutMs;
    const session = await this.waitForSession(Math.min(deadline, Date.now() + this.reconnectWaitMs));
    await this.declare(session, topic);
    const remaining = Math.ceil(deadline - Date.now());
    if (remaining <= 0) throw callTimeout(topic, message, timeoutMs);
    if (this.closed) throw transportClosed();
    if (!session.alive) throw this.unavailable('the connection was lost before the call was sent');
    return new Promise<BusReply>((resolve, reject) => {
      const correlationId = randomUUID();
      const timer = setTimeout(() => {
        this.pending.delete(correlationId);
        reject(callTimeout(topic, message, timeoutMs));
      }, remaining);
      this.pending.set(correlationId, { session, resolve, reject, timer });
      try {
        // `expiration` lets the broker drop a request nobody took before the caller gave up.
        session.channel.publish(
          '',
          queueName(topic),
          content,
          {
            correlationId,
            replyTo: directReplyTo,
            expiration: String(remaining),
            contentType: 'application/json',
            timestamp: Math.floor(message.sentAt / 1000),
            type: `${message.service}.${message.method}`,
          },
          (err: unknown) => {
            if (err !== null && err !== undefined) this.failCall(correlationId, this.unavailable(describe(err), err));
          },
        );
      } catch (err) {
        this.failCall(correlationId, this.unavailable(describe(err), err));
      }
    });
  }

  async subscribe(topic: string, handler: MessageHandler): Promise<Subscription> {
    this.assertOpen();
    checkTopic(topic);
    const session = await this.waitForSession(Date.now() + this.reconnectWaitMs);
    const consumer = new AmqpConsumer(this.host, topic, handler);
    this.consumers.add(consumer);
    try {
      await consumer.start(session);
    } catch (err) {
      // On a lost connection the consumer stays registered: the reconnection starts it.
      if (session.alive || this.closed) {
        // The caller is told it is not subscribed: the consumer must not retry on its own either.
        await consumer.close();
        throw new CofferError('BusUnavailable', `Cannot consume ${queueName(topic)}: ${describe(err)}`, { cause: err });
      }
    }
    return consumer;
  }

  async publish(topic: string, message: BusMessage): Promise<void> {
    this.assertOpen();
    checkTopic(topic);
    // Best effort: no wait for a lost connection, no confirm, nothing persisted.
    const session = this.currentSession();
    if (session === undefined) {
      this.logger.debug({ topic }, 'no broker connection; a published message is dropped');
      return;
    }
    const key = `exchange ${topic}`; // a space is never in a topic: no clash with queue names
    let declared = session.declared.get(key);
    if (declared === undefined) {
      declared = this.withScratchChannel(session, (ch) => declareExchange(ch, topic));
      session.declared.set(key, declared);
      declared.catch(() => session.declared.delete(key));
    }
    try {
      await declared;
      session.channel.publish(exchangeName(topic), '', Buffer.from(encodeMessage(message)), {
        contentType: 'application/json',
        timestamp: Math.floor(message.sentAt / 1000),
        type: `${message.service}.${message.method}`,
      });
    } catch (err) {
      this.logger.debug({ topic, err: describe(err) }, 'could not publish; the message is dropped');
    }
  }

  async listen(topic: string, handler: EventHandler): Promise<Subscription> {
    this.assertOpen();
    checkTopic(topic);
    const session = await this.waitForSession(Date.now() + this.reconnectWaitMs);
    const listener = new AmqpListener(topic, handler, this.logger, (l) => this.listeners.delete(l));
    this.listeners.add(listener);
    try {
      await listener.start(session);
    } catch (err) {
      if (session.alive || this.closed) {
        await listener.close();
        throw new CofferError('BusUnavailable', `Cannot listen to ${exchangeName(topic)}: ${describe(err)}`, { cause: err });
      }
    }
    return listener;
  }

  async deleteTopic(topic: string): Promise<void> {
    this.assertOpen();
    checkTopic(topic);
    const session = await this.waitForSession(Date.now() + this.reconnectWaitMs);
    session.declared.delete(topic);
    try {
      await this.withScratchChannel(session, (ch) => ch.deleteQueue(queueName(topic)));
    } catch (err) {
      throw new CofferError('BusUnavailable', `Cannot delete ${queueName(topic)}: ${describe(err)}`, { cause: err });
    }
  }

  async ping(): Promise<void> {
    this.assertOpen();
    const session = this.currentSession();
    if (session === undefined) throw this.unavailable('the connection is lost and not back yet');
    // Opening a channel is a round trip the broker answers: a half-open socket fails it.
    try {
      await this.withScratchChannel(session, async () => undefined);
    } catch (err) {
      throw this.unavailable(describe(err), err);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(transportClosed());
    }
    this.waiters.clear();
    for (const id of [...this.pending.keys()]) this.failCall(id, transportClosed());
    for (const consumer of this.consumers) consumer.dispose();
    this.consumers.clear();
    for (const listener of this.listeners) listener.dispose();
    this.listeners.clear();
    await quietly(() => this.opening);
    const session = this.session;
    this.session = undefined;
    if (session !== undefined) {
      session.alive = false;
      await quietly(() => session.model.close());
    }
  }

  /** What a consumer may use of its transport, kept off the public surface. */
  private readonly host: ConsumerHost = {
    settings: () => ({
      prefetch: this.prefetch,
      redeliveryDelayMs: this.redeliveryDelayMs,
      reconnectDelayMs: this.reconnectDelayMs,
      logger: this.logger,
    }),
    currentSession: () => this.currentSession(),
    forget: (consumer) => this.consumers.delete(consumer),
    sendReply: (replyTo, correlationId, reply) => this.sendReply(replyTo, correlationId, reply),
  };

  private currentSession(): Session | undefined {
    return this.session?.alive === true ? this.session : undefined;
  }

  /** Replies go out on the server's own publishing channel; a reply nobody waits for is dropped by the broker. */
  private sendReply(replyTo: string, correlationId: unknown, reply: BusReply): void {
    const session = this.currentSession();
    if (session === undefined) return; // the caller's call fails or is redelivered elsewhere
    try {
      session.channel.publish('', replyTo, Buffer.from(encodeReply(reply)), {
        correlationId: typeof correlationId === 'string' ? correlationId : undefined,
        contentType: 'application/json',
      });
    } catch (err) {
      this.logger.warn({ err }, 'could not send a bus reply');
    }
  }

  // ---- connection life ----

  private async openSession(): Promise<Session> {
    const socketOptions = {
      noDelay: true, // without it Nagle's algorithm adds ~40 ms to every acknowledged round trip
      timeout: 10_000,
      clientProperties: { connection_name: this.connectionName },
    };
    const model = await amqp.connect(withHeartbeat(this.url), socketOptions);
    // The listeners need the session before its channel exists; `channel` is set just below.
    const session = { model, declared: new Map(), returned: new Set(), alive: true } as unknown as Session;
    model.on('error', (err: unknown) => this.logger.warn({ err: describe(err) }, 'message broker connection error'));
    model.on('close', (err: unknown) => this.onSessionLost(session, err));
    model.on('blocked', (reason: unknown) => this.logger.warn({ reason }, 'message broker blocks publishing (resource alarm)'));
    try {
      const channel = await model.createConfirmChannel();
      session.channel = channel;
      channel.on('error', (err: unknown) => this.logger.warn({ err: describe(err) }, 'message broker channel error'));
      channel.on('return', (msg: ConsumeMessage) => {
        const id: unknown = msg.properties.messageId;
        if (typeof id === 'string') session.returned.add(id);
      });
      // Without its publishing channel the session is useless: drop it and start afresh.
      // (Deferred: on a lost connection the channel closes first, then the connection reports.)
      channel.on('close', () => {
        setImmediate(() => {
          if (session.alive) void quietly(() => model.close());
        });
      });
      await channel.consume(directReplyTo, (msg) => this.onReply(msg), { noAck: true });
      if (!session.alive) throw new Error('connection closed while opening');
      return session;
    } catch (err) {
      session.alive = false;
      await quietly(() => model.close());
      throw err;
    }
  }

  private onSessionLost(session: Session, err: unknown): void {
    session.alive = false;
    if (this.closed || this.session !== session) return;
    this.session = undefined;
    this.logger.warn({ err: describe(err), url: this.displayUrl }, 'lost the message broker connection; reconnecting');
    for (const [id, call] of this.pending) {
      if (call.session === session) this.failCall(id, this.unavailable('the connection to the broker was lost during the call'));
    }
    this.scheduleReconnect(0);
  }

  private scheduleReconnect(attempt: number): void {
    if (this.closed) return;
    const delay = Math.min(this.reconnectDelayMs * 2 ** attempt, this.reconnectDelayMs * 10);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      const opening = this.reconnect(attempt);
      this.opening = opening;
      void opening.finally(() => {
        if (this.opening === opening) this.opening = undefined;
      });
    }, delay);
  }

  private async reconnect(attempt: number): Promise<void> {
    let session: Session;
    try {
      session = await this.openSession();
    } catch (err) {
      this.logger.debug({ err: describe(err), attempt }, 'message broker still unreachable');
      this.scheduleReconnect(attempt + 1);
      return;
    }
    if (this.closed) {
      session.alive = false;
      await quietly(() => session.model.close());
      return;
    }
    if (!session.alive) {
      this.scheduleReconnect(attempt + 1); // lost again before we could use it
      return;
    }
    this.session = session;
    this.logger.info({ url: this.displayUrl }, 'reconnected to the message broker');
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.resolve(session);
    }
    this.waiters.clear();
    await Promise.all([
      ...[...this.consumers].map((consumer) => consumer.restart(session)),
      ...[...this.listeners].map((listener) => listener.restart(session)),
    ]);
  }

  private waitForSession(deadline: number): Promise<Session> {
    this.assertOpen();
    const session = this.currentSession();
    if (session !== undefined) return Promise.resolve(session);
    return new Promise<Session>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(
          () => {
            this.waiters.delete(waiter);
            reject(this.unavailable('it did not come back in time'));
          },
          Math.max(0, deadline - Date.now()),
        ),
      };
      this.waiters.add(waiter);
    });
  }

  // ---- publishing ----

  private declare(session: Session, topic: string): Promise<void> {
    let declared = session.declared.get(topic);
    if (declared === undefined) {
      declared = this.withScratchChannel(session, async (ch) => {
        await ch.assertQueue(queueName(topic), { durable: true });
      });
      session.declared.set(topic, declared);
      declared.catch(() => session.declared.delete(topic));
    }
    return declared.catch((err: unknown) => {
      if (!session.alive) throw this.unavailable('the connection was lost', err);
      throw new CofferError('Internal', `Cannot declare the queue ${queueName(topic)}: ${describe(err)}`, { cause: err });
    });
  }

  // A declaration that fails (say, a queue left with other arguments) closes its channel:
  // done on a channel of its own, it cannot take the publishing channel down with it.
  private async withScratchChannel<T>(session: Session, action: (ch: Channel) => Promise<T>): Promise<T> {
    const ch = await session.model.createChannel();
    ch.on('error', () => {
      // reported through the rejected operation
    });
    try {
      return await action(ch);
    } finally {
      void quietly(() => ch.close());
    }
  }

  /** Resolves true once the broker has the message, false when it returned it as unroutable. */
  private publishConfirmed(session: Session, topic: string, content: Buffer, message: BusMessage): Promise<boolean> {
    const messageId = randomUUID();
    const options: Options.Publish = {
      persistent: true,
      mandatory: true,
      messageId,
      contentType: 'application/json',
      timestamp: Math.floor(message.sentAt / 1000),
      type: `${message.service}.${message.method}`,
    };
    return new Promise<boolean>((resolve, reject) => {
      const confirmed = (err: unknown) => {
        const returned = session.returned.delete(messageId);
        if (err === null || err === undefined) resolve(!returned);
        else if (!session.alive) reject(err instanceof Error ? err : new Error(String(err)));
        else reject(new CofferError('BusUnavailable', `The broker refused the message for ${topic}: ${describe(err)}`, { cause: err }));
      };
      try {
        session.channel.publish('', queueName(topic), content, options, confirmed);
      } catch (err) {
        confirmed(err);
      }
    });
  }

  private onReply(msg: ConsumeMessage | null): void {
    if (msg === null) return;
    const id: unknown = msg.properties.correlationId;
    const call = typeof id === 'string' ? this.pending.get(id) : undefined;
    if (call === undefined) return; // the call already timed out
    this.pending.delete(id as string);
    clearTimeout(call.timer);
    try {
      call.resolve(decodeReply(msg.content.toString('utf8')));
    } catch (err) {
      call.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private failCall(id: string, err: Error): void {
    const call = this.pending.get(id);
    if (call === undefined) return;
    this.pending.delete(id);
    clearTimeout(call.timer);
    call.reject(err);
  }

  private assertOpen(): void {
    if (this.closed) throw transportClosed();
  }

  private unavailable(why: string, cause?: unknown): CofferError {
    return new CofferError('BusUnavailable', `The message broker at ${this.displayUrl} is unavailable: ${why}.`, {
      cause,
    });
  }
}
