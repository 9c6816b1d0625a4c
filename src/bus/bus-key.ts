import { createHmac, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { CofferError } from '../common/index.js';

// The secret every bus message is signed with (HMAC-SHA256). Only control-plane roles hold it:
// a process with the broker's credentials but not this key can make no role do anything.
// The bytes never leave this object by accident: it prints, inspects and serialises as its id.

export const minBusKeyBytes = 32;

/** How an operator makes a key; repeated in every message that asks for one. */
export const busKeyHowTo = `head -c 32 /dev/urandom | base64 > /etc/coffer/bus.key; chmod 600 /etc/coffer/bus.key`;

export class BusKey {
  /** a fingerprint that names the key in logs and messages without revealing it */
  readonly id: string;
  readonly #bytes: Buffer;

  private constructor(bytes: Buffer) {
    this.#bytes = Buffer.from(bytes);
    this.id = createHmac('sha256', this.#bytes).update('coffer bus key id').digest('hex').slice(0, 16);
  }

  /** A fresh random key, for `coffer serve` whose roles share one process. */
  static generate(): BusKey {
    return new BusKey(randomBytes(minBusKeyBytes));
  }

  /** A key as stored in a key file: base64 of at least 32 random bytes. */
  static fromText(text: string, source = 'the bus key'): BusKey {
    const trimmed = text.trim();
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) {
      throw new CofferError('BadRequest', `${source} is not base64 text. Make one with: ${busKeyHowTo}`);
    }
    const bytes = Buffer.from(trimmed, 'base64');
    if (bytes.length < minBusKeyBytes) {
      throw new CofferError(
        'BadRequest',
        `${source} holds ${bytes.length} bytes; at least ${minBusKeyBytes} random bytes are needed. Make one with: ${busKeyHowTo}`,
      );
    }
    return new BusKey(bytes);
  }

  mac(text: string): Buffer {
    return createHmac('sha256', this.#bytes).update(text).digest();
  }

  toJSON(): string {
    return `[bus key ${this.id}]`;
  }

  toString(): string {
    return `[bus key ${this.id}]`;
  }

  [inspect.custom](): string {
    return `[bus key ${this.id}]`;
  }
}
