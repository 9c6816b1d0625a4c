import type { ChannelModel, ConfirmChannel } from 'amqplib';

// What the AMQP transport and its consumers share: the live connection and two small helpers.

/** One live connection: a confirm channel publishes everything and consumes direct replies. */
export interface Session {
  model: ChannelModel;
  channel: ConfirmChannel;
  /** queues this connection has declared (a promise so concurrent first uses declare once) */
  declared: Map<string, Promise<void>>;
  /** casts published with `mandatory`, by message id: set when the broker returns one as unroutable */
  returned: Set<string>;
  alive: boolean;
}

export function queueName(topic: string): string {
  return `coffer.${topic}`;
}

/** amqplib throws synchronously on a closed channel; once a channel is gone its state is the broker's. */
export async function quietly(action: () => unknown): Promise<void> {
  try {
    await action();
  } catch {
    // the channel or connection is already closed
  }
}

export function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
