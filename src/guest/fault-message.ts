import { CofferError } from '../common/index.js';

const maxMessage = 1000;

/**
 * The error on its first line and, as room allows, the end of its details on the next: a log's
 * last lines say what failed. The conductor shows tenants the first line only (the log may name
 * host paths); the whole goes into the fault's details, which only admins see.
 */
export function faultMessage(err: unknown): string {
  const message = (err instanceof Error ? err.message : String(err)).replace(/\n/g, ' ').slice(0, maxMessage);
  const details = err instanceof CofferError ? (err.details ?? '') : '';
  const room = maxMessage - message.length - 1;
  if (details === '' || room <= 0) return message;
  return `${message}\n${details.slice(-room)}`;
}
