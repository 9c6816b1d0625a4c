import type { EngineFactory } from './engine.js';
import { mariadbEngine } from './mariadb/engine.js';
import { mysqlEngine } from './mysql/engine.js';
import { postgresqlEngine } from './postgresql/engine.js';
import { redisEngine } from './redis/engine.js';

// Engine names to factories. The map is typed by the list of names, so a name added without a
// factory (or a factory without a name) does not compile.

export const engineNames = ['postgresql', 'redis', 'mariadb', 'mysql'] as const;
export type EngineName = (typeof engineNames)[number];

export const engineRegistry: { readonly [name in EngineName]: EngineFactory } = {
  postgresql: postgresqlEngine,
  mariadb: mariadbEngine,
  mysql: mysqlEngine,
  redis: redisEngine,
};

export function isEngineName(name: string): name is EngineName {
  return (engineNames as readonly string[]).includes(name);
}
