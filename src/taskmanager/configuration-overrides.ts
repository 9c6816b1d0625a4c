import { CofferError, type ConfigurationValues } from '../common/index.js';
import type { InstanceRow, Repositories } from '../db/index.js';

/**
 * The values of the group attached to `instance` as they are now ({} without one): what prepare
 * starts the engine with and what applyConfiguration makes the engine's overrides.
 */
export async function overridesOf(store: Repositories, instance: InstanceRow): Promise<ConfigurationValues> {
  if (instance.configurationId === null) return {};
  const group = await store.configurations.get(instance.configurationId);
  if (group === undefined) {
    throw new CofferError('NotFound', `Configuration group with ID ${instance.configurationId} could not be found: it was deleted.`);
  }
  return group.values;
}
