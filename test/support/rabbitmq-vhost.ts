import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/**
 * A private vhost on the shared RabbitMQ, so that a test's roles never compete for messages
 * with another test run's consumers on the same queue names. With `ownUser`, a user of its own
 * with a password and rights on that vhost only, as the README's distributed set-up makes.
 */
export function makeVhost(options: { ownUser?: boolean } = {}): { url: string; name: string; remove: () => void } {
  const name = `coffer-test-${randomBytes(4).toString('hex')}`;
  execFileSync('rabbitmqctl', ['-q', 'add_vhost', name]);
  let user = 'guest';
  let password = 'guest';
  if (options.ownUser === true) {
    user = name;
    password = randomBytes(12).toString('hex');
    execFileSync('rabbitmqctl', ['-q', 'add_user', user, password]);
  }
  execFileSync('rabbitmqctl', ['-q', 'set_permissions', '-p', name, user, '.*', '.*', '.*']);
  return {
    url: `amqp://${user}:${password}@127.0.0.1:5672/${encodeURIComponent(name)}`,
    name,
    remove: () => {
      execFileSync('rabbitmqctl', ['-q', 'delete_vhost', name]);
      if (options.ownUser === true) execFileSync('rabbitmqctl', ['-q', 'delete_user', user]);
    },
  };
}
