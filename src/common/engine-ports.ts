// Each engine's standard port, by datastore manager: what an instance listens on when it has an
// address of its own (loopback addresses, the embedded default). Views show a port only where an
// instance's differs (host addresses, a port each); clients assume the standard one otherwise.
// The engines' own factories (src/guest/engines/<engine>) declare the same numbers; a test keeps
// them equal.

export const engineStandardPorts: Readonly<Record<string, number>> = {
  postgresql: 5432,
  mysql: 3306,
  mariadb: 3306,
  redis: 6379,
};
