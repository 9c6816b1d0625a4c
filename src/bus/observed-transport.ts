import { CofferError } from '../common/index.js';
import type { BusMessage, BusReply, EventHandler, MessageHandler, Subscription, Transport } from './transport.js';

// Times what this process sends over the bus, for the role's /metrics. Labels come from the
// message's contract (service and method), never from the topic: a guest's topic names its
// instance, which would make one series per instance.

export type BusCallOutcome = 'ok' | 'error' | 'timeout' | 'unavailable';

/** One finished call (request and reply) or cast (until the broker took it). */
export interface BusCallObservation {
  service: string;
  method: string;
  type: 'call' | 'cast';
  outcome: BusCallOutcome;
  seconds: number;
}

/** What takes the timings: the role's metrics, or a test. */
export interface BusCallObserver {
  observeBusCall(observation: BusCallObservation): void;
}

function outcomeOf(err: unknown): BusCallOutcome {
  if (err instanceof CofferError && err.code === 'BusTimeout') return 'timeout';
  if (err instanceof CofferError && err.code === 'BusUnavailable') return 'unavailable';
  return 'error';
}

export class ObservedTransport implements Transport {
  constructor(
    readonly inner: Transport,
    private readonly observer: BusCallObserver,
  ) {}

  async cast(topic: string, message: BusMessage): Promise<void> {
    const began = performance.now();
    try {
      await this.inner.cast(topic, message);
      this.record(message, 'cast', 'ok', began);
    } catch (err) {
      this.record(message, 'cast', outcomeOf(err), began);
      throw err;
    }
  }

  async call(topic: string, message: BusMessage, timeoutMs: number): Promise<BusReply> {
    const began = performance.now();
    try {
      const reply = await this.inner.call(topic, message, timeoutMs);
      // a reply carrying the server's error is a round trip all the same: timed, counted as error
      this.record(message, 'call', reply.ok ? 'ok' : 'error', began);
      return reply;
    } catch (err) {
      this.record(message, 'call', outcomeOf(err), began);
      throw err;
    }
  }

  subscribe(topic: string, handler: MessageHandler): Promise<Subscription> {
    return this.inner.subscribe(topic, handler);
  }

  publish(topic: string, message: BusMessage): Promise<void> {
    return this.inner.publish(topic, message);
  }

  listen(topic: string, handler: EventHandler): Promise<Subscription> {
    return this.inner.listen(topic, handler);
  }

  deleteTopic(topic: string): Promise<void> {
    return this.inner.deleteTopic(topic);
  }

  ping(): Promise<void> {
    return this.inner.ping();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private record(message: BusMessage, type: 'call' | 'cast', outcome: BusCallOutcome, began: number): void {
    this.observer.observeBusCall({
      service: message.service,
      method: message.method,
      type,
      outcome,
      seconds: (performance.now() - began) / 1000,
    });
  }
}
