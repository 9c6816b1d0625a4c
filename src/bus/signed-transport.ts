import type { Logger } from '../common/index.js';
import { silentLogger } from '../common/index.js';
import type { BusKey } from './bus-key.js';
import { LogThrottle } from './log-throttle.js';
import { checkSeal, sealMessage } from './message-seal.js';
import { ReplayGuard } from './replay-guard.js';
import type { BusMessage, BusReply, Delivery, EventHandler, MessageHandler, Subscription, Transport } from './transport.js';

// Every message this transport sends is signed for its topic, and every message it delivers to a
// handler has been checked: signed with our key, for this topic, sent within the window, and not
// taken before (replay-guard.ts). What fails is refused: logged at warn, never handed to the
// handler, answered with BusMessageRefused (which settles it: the broker drops it instead of
// redelivering it forever, and a caller learns at once). One rule for every topic: the roles'
// own topics are as open to a forger as the guests'.

export interface SignedTransportOptions {
  key: BusKey;
  logger?: Logger;
  /** how old a message may be when it arrives, by its sender's clock */
  maxAgeMs?: number;
  /** how far ahead of ours a sender's clock may be */
  maxSkewMs?: number;
}

export const defaultMaxAgeMs = 5 * 60_000;
export const defaultMaxSkewMs = 60_000;

type Refusal =
  | 'unsigned'
  | 'foreign-key'
  | 'bad-signature'
  | 'misaimed'
  | 'expired'
  | 'from-the-future'
  | 'replay';

const refusalText: Record<Refusal, string> = {
  unsigned: 'refused an unsigned bus message',
  'foreign-key': 'refused a bus message signed with another key: another Coffer deployment (different bus key) is using this vhost?',
  'bad-signature': 'refused a bus message whose signature does not match',
  misaimed: 'refused a bus message signed for another topic',
  expired: 'refused a bus message sent too long ago',
  'from-the-future': 'refused a bus message sent from the future (clock skew?)',
  replay: 'refused a replayed bus message',
};

export class SignedTransport implements Transport {
  private readonly key: BusKey;
  private readonly logger: Logger;
  private readonly maxAgeMs: number;
  private readonly maxSkewMs: number;
  private readonly guard: ReplayGuard;
  // A foreign deployment on the same vhost sends a steady stream: one line a minute says so.
  private readonly foreignThrottle = new LogThrottle(60_000);
  private readonly throttle = new LogThrottle(5_000);

  constructor(
    /** what carries the signed messages */
    readonly inner: Transport,
    options: SignedTransportOptions,
  ) {
    this.key = options.key;
    this.logger = options.logger ?? silentLogger();
    this.maxAgeMs = options.maxAgeMs ?? defaultMaxAgeMs;
    this.maxSkewMs = options.maxSkewMs ?? defaultMaxSkewMs;
    this.guard = new ReplayGuard(this.maxAgeMs + this.maxSkewMs);
  }

  /** the fingerprint of the key, for start-up lines that help match roles' keys */
  get keyId(): string {
    return this.key.id;
  }

  cast(topic: string, message: BusMessage): Promise<void> {
    return this.inner.cast(topic, sealMessage(this.key, topic, message));
  }

  call(topic: string, message: BusMessage, timeoutMs: number): Promise<BusReply> {
    return this.inner.call(topic, sealMessage(this.key, topic, message), timeoutMs);
  }

  subscribe(topic: string, handler: MessageHandler): Promise<Subscription> {
    return this.inner.subscribe(topic, (message, delivery) => this.deliver(topic, handler, message, delivery));
  }

  publish(topic: string, message: BusMessage): Promise<void> {
    return this.inner.publish(topic, sealMessage(this.key, topic, message));
  }

  listen(topic: string, handler: EventHandler): Promise<Subscription> {
    // Every listener gets the same message id: each keeps its own record of what it took.
    const guard = new ReplayGuard(this.maxAgeMs + this.maxSkewMs);
    return this.inner.listen(topic, async (message) => {
      const admitted = this.admit(topic, message, false, guard);
      if (typeof admitted !== 'string') return;
      const { seal: _seal, ...unsealed } = message;
      try {
        await handler(unsealed);
      } finally {
        guard.settled(admitted);
      }
    });
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

  private async deliver(topic: string, handler: MessageHandler, message: BusMessage, delivery: Delivery): Promise<BusReply> {
    const admitted = this.admit(topic, message, delivery.redelivered, this.guard);
    if (typeof admitted !== 'string') return admitted;
    const id = admitted;
    const { seal: _seal, ...unsealed } = message;
    let reply: BusReply;
    try {
      reply = await handler(unsealed, delivery);
    } catch (err) {
      this.guard.released(id);
      throw err;
    }
    this.guard.settled(id);
    return reply;
  }

  /** The message's id when it may be handled; otherwise the refusal to answer with. */
  private admit(topic: string, message: BusMessage, redelivered: boolean, guard: ReplayGuard): string | BusReply {
    const check = checkSeal(this.key, topic, message);
    if (!check.ok) return this.refuse(check.reason, check.detail, topic, message);
    const now = Date.now();
    if (!(message.sentAt >= now - this.maxAgeMs)) {
      return this.refuse('expired', `sent ${Math.round((now - message.sentAt) / 1000)} s ago; the window is ${this.maxAgeMs / 1000} s`, topic, message);
    }
    if (message.sentAt > now + this.maxSkewMs) {
      return this.refuse('from-the-future', `sent ${Math.round((message.sentAt - now) / 1000)} s ahead of this host's clock`, topic, message);
    }
    const admission = guard.admit(check.id, redelivered, now);
    if (admission === 'replay') return this.refuse('replay', `message ${check.id} was taken before`, topic, message);
    if (admission === 'already-handled') {
      // The broker lost our acknowledgement of a message we handled: nothing hostile.
      this.logger.info({ topic, messageId: check.id, method: `${message.service}.${message.method}` }, 'dropped a redelivered bus message already handled');
      return refused('already-handled');
    }
    return check.id;
  }

  private refuse(reason: Refusal, detail: string, topic: string, message: BusMessage): BusReply {
    const foreign = reason === 'foreign-key';
    const { log, suppressed } = (foreign ? this.foreignThrottle : this.throttle).take(foreign ? reason : `${reason} ${topic}`);
    if (log) {
      this.logger.warn(
        {
          topic,
          reason,
          detail,
          // what the message claims: useful to find its sender, never trusted
          claimed: { method: `${String(message.service)}.${String(message.method)}`.slice(0, 120), requestId: String(message.context?.requestId).slice(0, 80) },
          ...(suppressed > 0 ? { suppressedSinceLastLine: suppressed } : {}),
        },
        refusalText[reason],
      );
    }
    return refused(reason);
  }
}

// The sender learns only the kind of refusal; the receiver's log has the rest.
function refused(reason: Refusal | 'already-handled'): BusReply {
  return {
    ok: false,
    error: {
      code: 'BusMessageRefused',
      message: `The receiver refused the bus message (${reason}). Every Coffer role of a deployment needs the same bus key.`,
    },
  };
}
