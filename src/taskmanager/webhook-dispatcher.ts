import { isCofferError, sleep, type Logger, type WebhookTargetGuard } from '../common/index.js';
import type { DueWebhookDelivery, StateStore, WebhookAttemptOutcome } from '../db/index.js';
import { postWebhook } from './webhook-sender.js';

// Delivers projects' webhooks (issue 12). A delivery row is made when its instance event is
// recorded (src/db/webhook-repository.ts); every taskmanager ticks, takes due deliveries by a
// lease in a guarded UPDATE, POSTs each as a signed CloudEvent, and records the attempt: a 2xx
// answer delivers it, anything else (a refused address included: DNS may now answer otherwise)
// is tried again after an exponentially growing delay, until maxAttempts, then it has failed.
// A taskmanager that dies mid-attempt leaves a lease that runs out, and another one tries again:
// delivery is at least once, and the event id lets a receiver drop the rare duplicate.

export interface WebhookDispatcherOptions {
  store: StateStore;
  logger: Logger;
  guard: WebhookTargetGuard;
  workerId: string;
  /** how often due deliveries are looked for (default 1 s) */
  intervalMs?: number;
  /** attempts before a delivery has failed (default 5) */
  maxAttempts?: number;
  /** the delay after the first failed attempt, doubled after each further one (default 10 s: 10, 20, 40, 80 s) */
  retryBaseMs?: number;
  /** how long an attempt waits for an answer (default 5 s) */
  timeoutMs?: number;
  /** the API's name of a service status (RUNNING shows as ACTIVE), so hooks say what the API says */
  statusName?: (status: string) => string;
}

/** deliveries taken per tick at most; the rest wait for the next one */
const deliveriesPerTick = 50;

/** The CloudEvents 1.0 JSON of a delivery. */
export function cloudEvent(delivery: DueWebhookDelivery, statusName: (status: string) => string): Record<string, unknown> {
  // a warning (a volume filling up) names the status the instance kept, as a status event does
  const isStatus = delivery.eventType.endsWith('.status') || delivery.eventType.endsWith('.warning');
  const isBackup = delivery.eventType.includes('.backup.');
  const isReplication = delivery.eventType.includes('.replication.');
  return {
    specversion: '1.0',
    id: delivery.eventId,
    source: `/v1.0/${delivery.tenantId}/instances/${delivery.instanceId}`,
    type: delivery.eventType,
    time: delivery.eventTime.toISOString(),
    subject: delivery.instanceId,
    datacontenttype: 'application/json',
    data: {
      instance_id: delivery.instanceId,
      name: delivery.instanceName,
      ...(isStatus
        ? { status: statusName(delivery.eventName) }
        : isBackup
          ? { backup_id: delivery.eventName }
          : isReplication
            ? { primary_id: delivery.eventName }
            : { task: delivery.eventName }),
      message: delivery.message,
    },
  };
}

export class WebhookDispatcher {
  private readonly stopController = new AbortController();
  private loop: Promise<void> | undefined;
  private readonly maxAttempts: number;
  private readonly retryBaseMs: number;
  private readonly timeoutMs: number;
  private readonly leaseMs: number;

  constructor(private readonly options: WebhookDispatcherOptions) {
    this.maxAttempts = options.maxAttempts ?? 5;
    this.retryBaseMs = options.retryBaseMs ?? 10_000;
    this.timeoutMs = options.timeoutMs ?? 5_000;
    // long enough for the lookup and the attempt; a holder that died gives it back after this
    this.leaseMs = this.timeoutMs * 2 + 10_000;
  }

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopController.abort(new Error('webhook dispatcher stopping'));
    await this.loop;
  }

  /** One pass: the due deliveries this taskmanager takes, attempted at once. Answers the ids it attempted. */
  async tick(now = new Date()): Promise<string[]> {
    const { store, workerId } = this.options;
    const due = await store.webhooks.listDue(now, deliveriesPerTick);
    const claimed: DueWebhookDelivery[] = [];
    for (const delivery of due) {
      if (await store.webhooks.claim(delivery.id, workerId, this.leaseMs, now)) claimed.push(delivery);
    }
    await Promise.all(claimed.map((delivery) => this.attempt(delivery)));
    return claimed.map((d) => d.id);
  }

  private async run(): Promise<void> {
    const signal = this.stopController.signal;
    while (!signal.aborted) {
      try {
        await this.tick();
      } catch (err) {
        this.options.logger.warn({ err }, 'webhook delivery pass failed');
      }
      await sleep(this.options.intervalMs ?? 1_000, signal).catch(() => undefined);
    }
  }

  private async attempt(delivery: DueWebhookDelivery): Promise<void> {
    const { store, guard, logger, workerId } = this.options;
    // never the URL's path or query (they may hold the receiver's own token), nor the secret
    const log = logger.child({ webhookId: delivery.webhookId, deliveryId: delivery.id, eventId: delivery.eventId, instanceId: delivery.instanceId });
    let statusCode: number | null = null;
    let error: string | null = null;
    try {
      const target = await guard.resolve(delivery.url);
      const body = JSON.stringify(cloudEvent(delivery, this.options.statusName ?? ((s) => s)));
      statusCode = await postWebhook({
        target,
        body,
        secret: delivery.secret,
        eventId: delivery.eventId,
        eventType: delivery.eventType,
        timestamp: Math.floor(Date.now() / 1000),
        timeoutMs: this.timeoutMs,
      });
      if (statusCode < 200 || statusCode > 299) {
        error = statusCode >= 300 && statusCode < 400 ? `answered ${statusCode}: redirects are not followed` : `answered ${statusCode}`;
      }
    } catch (err) {
      error = isCofferError(err) ? err.message : `no answer: ${(err as Error).message}`;
    }
    const now = new Date();
    const attempts = delivery.attempts + 1;
    const outcome: WebhookAttemptOutcome =
      error === null
        ? { state: 'delivered', statusCode, error: null, nextAttemptAt: now }
        : attempts >= this.maxAttempts
          ? { state: 'failed', statusCode, error: error.slice(0, 2000), nextAttemptAt: now }
          : { state: 'pending', statusCode, error: error.slice(0, 2000), nextAttemptAt: new Date(now.getTime() + this.retryBaseMs * 2 ** (attempts - 1)) };
    if (error === null) log.debug({ attempts, statusCode }, 'webhook delivered');
    else log.warn({ attempts, statusCode, why: error, origin: safeOrigin(delivery.url) }, outcome.state === 'failed' ? 'webhook delivery failed for good' : 'webhook delivery attempt failed');
    if (!(await store.webhooks.recordAttempt(delivery.id, workerId, outcome, now))) {
      log.warn('webhook delivery lease lost before its attempt was recorded');
    }
  }
}

function safeOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(unparsable)';
  }
}
