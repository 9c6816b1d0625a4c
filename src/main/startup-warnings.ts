// What a role says at start about a set-up that leaves doors open. Tenants can run programs on
// the hosts (through their engines' root); a broker account everyone knows or a state database
// without a password is the first thing such a program tries.

function parse(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

export function startupWarnings(urls: { busUrl?: string; databaseUrl?: string }): string[] {
  const warnings: string[] = [];
  const bus = urls.busUrl === undefined ? undefined : parse(urls.busUrl);
  // amqplib logs in as guest/guest when the URL names no user.
  if (bus !== undefined && (bus.username === '' || decodeURIComponent(bus.username) === 'guest')) {
    warnings.push(
      "The bus URL uses RabbitMQ's default 'guest' account, which every program on a shared host can guess: " +
        'give this deployment its own user and vhost (rabbitmqctl add_vhost/add_user/set_permissions; see README, Running distributed).',
    );
  }
  const db = urls.databaseUrl === undefined ? undefined : parse(urls.databaseUrl);
  if (db !== undefined && /^(mysql|mariadb|postgres|postgresql):$/.test(db.protocol) && db.password === '' && !db.searchParams.has('password')) {
    warnings.push(
      'The state database URL has no password: on a shared host, any local program that reaches the database can log in as Coffer. ' +
        "Give Coffer's database user a password (see README, Running distributed).",
    );
  }
  return warnings;
}
