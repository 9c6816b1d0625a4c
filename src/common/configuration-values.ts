import { z } from 'zod';
import { CofferError } from './errors.js';
import type { ConfigurationParameter } from './engine-capabilities.js';

// A configuration group's values and the one check every role makes of them: the API before it
// saves a group (Trove's `_validate_configuration`, with Trove's messages and 422), and the guest
// again before an engine renders them, so that nothing outside an engine's published parameter
// list (e.g. PostgreSQL's `archive_command`) ever reaches a configuration file.

export const configurationValue = z.union([z.string(), z.number(), z.boolean()]);
export type ConfigurationValue = z.infer<typeof configurationValue>;

export const configurationValues = z.record(z.string(), configurationValue);
export type ConfigurationValues = z.infer<typeof configurationValues>;

function typeMatches(parameter: ConfigurationParameter, value: ConfigurationValue): boolean {
  switch (parameter.type) {
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'float':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'string':
      return typeof value === 'string';
  }
}

/**
 * Checks `values` against `parameters` and answers them under each parameter's own name (Trove
 * compares names case-insensitively). `datastore` names the datastore and version in errors,
 * e.g. `postgresql 15`. Throws UnprocessableEntity with Trove's message for an unknown name, a
 * value of another JSON type (a boolean is not an integer), or a number outside min..max.
 */
export function validateConfigurationValues(
  values: Record<string, unknown>,
  parameters: readonly ConfigurationParameter[],
  datastore: string,
): ConfigurationValues {
  if (parameters.length === 0) {
    throw new CofferError('UnprocessableEntity', `Configuration groups are not supported for this datastore: ${datastore}`);
  }
  const byName = new Map(parameters.map((p) => [p.name.toLowerCase(), p]));
  const checked: ConfigurationValues = {};
  for (const [key, raw] of Object.entries(values)) {
    const parameter = byName.get(key.toLowerCase());
    if (parameter === undefined) {
      throw new CofferError('UnprocessableEntity', `The configuration parameter ${key} is not supported for this datastore: ${datastore}.`);
    }
    const parsed = configurationValue.safeParse(raw);
    if (!parsed.success || !typeMatches(parameter, parsed.data)) {
      throw new CofferError('UnprocessableEntity', `The value provided for the configuration parameter ${key} is not of type ${parameter.type}.`);
    }
    const value = parsed.data;
    if (typeof value === 'number') {
      if (parameter.min !== undefined && value < parameter.min) {
        throw new CofferError('UnprocessableEntity', `The value for the configuration parameter ${key} is less than the minimum allowed: ${parameter.min}`);
      }
      if (parameter.max !== undefined && value > parameter.max) {
        throw new CofferError('UnprocessableEntity', `The value for the configuration parameter ${key} is greater than the maximum allowed: ${parameter.max}`);
      }
    }
    if (typeof value === 'string' && /[\u0000-\u001f\u007f]/.test(value)) {
      throw new CofferError('UnprocessableEntity', `The value for the configuration parameter ${key} cannot contain line breaks or other control characters.`);
    }
    checked[parameter.name] = value;
  }
  return checked;
}
