import { randomUUID, timingSafeEqual } from 'node:crypto';
import type { BusKey } from './bus-key.js';
import type { BusMessage, MessageSeal } from './transport.js';
import { decodeMessage, encodeMessage } from './wire-format.js';

// Signing and checking one message. The MAC covers a canonical text of everything a handler
// acts on: the topic the sender addressed, a unique id, service, version, method, sent time,
// context and arguments. The sender signs the message as the wire will carry it (encoded and
// decoded once: a Date becomes a string, an undefined field vanishes), so the receiver computes
// the same text from what it decoded.

const sealVersion = 1;

function signedText(topic: string, id: string, message: BusMessage): string {
  return JSON.stringify([
    'coffer-bus',
    sealVersion,
    topic,
    id,
    message.service,
    message.version,
    message.method,
    message.sentAt,
    message.context,
    message.args,
  ]);
}

/** The message as the receiver will decode it, with its seal for `topic`. */
export function sealMessage(key: BusKey, topic: string, message: BusMessage, id: string = randomUUID()): BusMessage {
  const { seal: _ignored, ...unsealed } = message;
  const wire = decodeMessage(encodeMessage(unsealed));
  const seal: MessageSeal = { v: sealVersion, id, topic, keyId: key.id, mac: key.mac(signedText(topic, id, wire)).toString('base64') };
  return { ...wire, seal };
}

export type SealCheck =
  | { ok: true; id: string }
  | { ok: false; reason: 'unsigned' | 'foreign-key' | 'bad-signature'; detail: string }
  | { ok: false; reason: 'misaimed'; detail: string; signedFor: string };

function isSeal(value: unknown): value is MessageSeal {
  if (typeof value !== 'object' || value === null) return false;
  const seal = value as Record<string, unknown>;
  return (
    seal['v'] === sealVersion &&
    typeof seal['id'] === 'string' &&
    seal['id'] !== '' &&
    typeof seal['topic'] === 'string' &&
    typeof seal['keyId'] === 'string' &&
    typeof seal['mac'] === 'string'
  );
}

/** Checks that `message`, delivered on `topic`, was signed with `key` for that topic. */
export function checkSeal(key: BusKey, topic: string, message: BusMessage): SealCheck {
  const seal: unknown = message.seal;
  if (!isSeal(seal)) return { ok: false, reason: 'unsigned', detail: 'the message carries no signature' };
  if (seal.keyId !== key.id) {
    return { ok: false, reason: 'foreign-key', detail: `signed with another bus key (${seal.keyId.slice(0, 16)}, ours is ${key.id})` };
  }
  const expected = key.mac(signedText(seal.topic, seal.id, message));
  const given = Buffer.from(seal.mac, 'base64');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, reason: 'bad-signature', detail: 'the signature does not match the content (altered on the way?)' };
  }
  if (seal.topic !== topic) {
    return { ok: false, reason: 'misaimed', detail: `signed for ${seal.topic.slice(0, 100)}, delivered to ${topic}`, signedFor: seal.topic };
  }
  return { ok: true, id: seal.id };
}
