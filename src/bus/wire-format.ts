import { CofferError } from '../common/index.js';
import type { BusMessage, BusReply } from './transport.js';

// What crosses the bus, for both transports. The in-process transport encodes exactly as AMQP
// does, so `coffer serve` shows the same behaviour as a deployment: handlers never share objects
// with senders, and a Date or an undefined field arrives as it would over the wire.

const maxTopicLength = 200; // AMQP allows 255 bytes for a queue name, and we prefix it

export function checkTopic(topic: string): void {
  if (topic.length === 0 || topic.length > maxTopicLength || !/^[\w.:-]+$/.test(topic)) {
    throw new CofferError(
      'BadRequest',
      `Invalid bus topic "${topic.slice(0, 50)}": use 1-${maxTopicLength} letters, digits, '.', ':', '_' or '-'.`,
    );
  }
}

export function encodeMessage(message: BusMessage): string {
  try {
    return JSON.stringify(message);
  } catch (err) {
    throw new CofferError('BadRequest', `The ${message.service}.${message.method} message cannot be serialised: ${String(err)}`, {
      cause: err,
    });
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function decodeMessage(text: string): BusMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CofferError('BadRequest', 'Malformed bus message: not JSON.', { cause: err });
  }
  if (
    !isRecord(value) ||
    typeof value.service !== 'string' ||
    typeof value.version !== 'string' ||
    typeof value.method !== 'string' ||
    typeof value.sentAt !== 'number' ||
    !isRecord(value.context) ||
    typeof value.context.requestId !== 'string'
  ) {
    throw new CofferError('BadRequest', 'Malformed bus message: missing service, version, method, context or sentAt.');
  }
  return value as unknown as BusMessage;
}

export function encodeReply(reply: BusReply): string {
  try {
    return JSON.stringify(reply);
  } catch (err) {
    return JSON.stringify({ ok: false, error: { code: 'Internal', message: `The reply cannot be serialised: ${String(err)}` } });
  }
}

export function decodeReply(text: string): BusReply {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CofferError('Internal', 'Malformed bus reply: not JSON.', { cause: err });
  }
  if (isRecord(value) && value.ok === true) return { ok: true, result: value.result };
  if (isRecord(value) && value.ok === false && isRecord(value.error) && typeof value.error.code === 'string' && typeof value.error.message === 'string') {
    return value as unknown as BusReply;
  }
  throw new CofferError('Internal', 'Malformed bus reply: expected {ok, result} or {ok: false, error}.');
}

export function callTimeout(topic: string, message: BusMessage, timeoutMs: number): CofferError {
  return new CofferError('BusTimeout', `No reply to ${message.service}.${message.method} on ${topic} within ${timeoutMs} ms.`);
}

export function transportClosed(): CofferError {
  return new CofferError('BusUnavailable', 'The message bus transport is closed.');
}
