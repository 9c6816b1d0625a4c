import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/**
 * A private vhost on the shared RabbitMQ, so that a test's roles never compete for messages
 * with another test run's consumers on the same queue names.
 */
export function makeVhost(): { url: string; remove: () => void } {
  const name = `coffer-test-${randomBytes(4).toString('hex')}`;
  execFileSync('rabbitmqctl', ['-q', 'add_vhost', name]);
  execFileSync('rabbitmqctl', ['-q', 'set_permissions', '-p', name, 'guest', '.*', '.*', '.*']);
  return {
    url: `amqp://guest:guest@127.0.0.1:5672/${encodeURIComponent(name)}`,
    remove: () => execFileSync('rabbitmqctl', ['-q', 'delete_vhost', name]),
  };
}
