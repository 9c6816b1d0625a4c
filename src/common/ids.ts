import { randomBytes, randomUUID } from 'node:crypto';

/** Trove resource ids: UUID4 with dashes. */
export function newUuid(): string {
  return randomUUID();
}

/** Keystone ids (users, projects, roles): 32 lowercase hex characters. */
export function newKeystoneId(): string {
  return randomBytes(16).toString('hex');
}

const passwordAlphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';

/**
 * A strong generated password: 36 characters (Trove's default_password_length) drawn uniformly
 * (rejection sampling, no modulo bias) from an alphabet without look-alike characters and
 * without characters that need quoting in a shell or a connection string.
 */
export function newPassword(length = 36): string {
  // Drawn again (rarely: about 1 in 300 at 36 characters) until it has a lower-case letter, an
  // upper-case letter and a digit, so it meets any password policy of up to three classes.
  for (;;) {
    const password = drawPassword(length);
    if (length < 3 || (/[a-z]/.test(password) && /[A-Z]/.test(password) && /[0-9]/.test(password))) return password;
  }
}

function drawPassword(length: number): string {
  const out: string[] = [];
  const limit = 256 - (256 % passwordAlphabet.length);
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < limit && out.length < length) out.push(passwordAlphabet[byte % passwordAlphabet.length]!);
    }
  }
  return out.join('');
}

/** An opaque bearer token: 32 random bytes, base64url. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}
