import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5802/7677), computed here so
 * that `CREATE ROLE ... PASSWORD` carries the verifier and the clear password never reaches the
 * server, its logs or pg_stat_activity. PostgreSQL runs SASLprep over the password first; that
 * is the identity for printable ASCII, so other passwords return undefined and are sent as a
 * literal for the server to hash.
 */
export async function scramVerifier(password: string, iterations = 4096): Promise<string | undefined> {
  if (!/^[\x20-\x7e]*$/.test(password)) return undefined;
  const salt = randomBytes(16);
  const salted = await pbkdf2Async(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
