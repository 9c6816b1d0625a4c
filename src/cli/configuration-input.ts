import { CofferError, validateConfigurationValues, type ConfigurationParameter } from '../common/index.js';
import type { ConfigurationParameterView, ConfigurationValue, ConfigurationValues } from './api-types.js';
import { isRecord } from './api-client.js';
import { CliError } from './cli-error.js';
import type { ParameterSet } from './configuration-lookup.js';
import { isSecretName, secretMask } from './configuration-format.js';

// The values a user gives a configuration group: `--values '<json>'` as Trove takes them, and
// `--set name=value`, typed by the parameter list. They are checked here with the API's own rules
// (src/common), so that a typo gets the close names before anything is sent and an update never
// sends half of what was meant.

interface Setting {
  name: string;
  text: string;
}

// Both are parsed here rather than by commander, whose errors repeat the argument: a mistyped
// `--set some_password:...` must not print the password.

/** `--set name=value`; the value may itself hold `=`. */
function setting(value: string): Setting {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new CliError('--set takes name=value, e.g. --set max_connections=200.');
  return { name: value.slice(0, eq).trim(), text: value.slice(eq + 1) };
}

/** `--values '{"max_connections": 200}'`: a JSON object, as Trove's `values`. */
function valuesObject(value: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    parsed = undefined;
  }
  if (!isRecord(parsed)) throw new CliError('--values takes a JSON object, e.g. --values \'{"max_connections": 200}\'.');
  return parsed;
}

export function findParameter(set: ParameterSet, name: string): ConfigurationParameterView | undefined {
  const lower = name.toLowerCase();
  return set.parameters.find((p) => p.name.toLowerCase() === lower);
}

/** Edit distance, for "did you mean": a typo is a letter or two off. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** Up to five published names close to `name`: a few letters off, or containing it. */
export function closeNames(set: ParameterSet, name: string): string[] {
  const lower = name.toLowerCase();
  const limit = Math.max(2, Math.floor(lower.length / 4));
  return set.parameters
    .map((p) => ({ name: p.name, d: distance(lower, p.name.toLowerCase()) }))
    .filter(({ name: candidate, d }) => d <= limit || (lower.length >= 4 && candidate.toLowerCase().includes(lower)))
    .sort((a, b) => a.d - b.d || a.name.localeCompare(b.name))
    .slice(0, 5)
    .map((c) => c.name);
}

export function unknownParameter(set: ParameterSet, name: string): CliError {
  const close = closeNames(set, name);
  const guess = close.length === 0 ? '' : `Did you mean ${close.join(', ')}? `;
  return new CliError(`${set.label} has no configuration parameter "${name}".`, `${guess}\`${set.listCommand}\` lists them all.`);
}

function unsupported(set: ParameterSet): CliError {
  return new CliError(
    `Configuration groups are not supported for ${set.label}: it publishes no parameters.`,
    '`coffer datastore list` shows the other datastores.',
  );
}

const booleanWords: Readonly<Record<string, boolean>> = { true: true, on: true, yes: true, '1': true, false: false, off: false, no: false, '0': false };

/** A `--set` value as the JSON type its parameter takes (Trove refuses "200" for an integer). */
function typedValue(set: ParameterSet, parameter: ConfigurationParameterView, text: string): ConfigurationValue {
  const trimmed = text.trim();
  const wrongType = (expected: string) =>
    new CliError(
      `--set ${parameter.name}=${isSecretName(parameter.name) ? secretMask : text}: ${parameter.name} takes ${expected}.`,
      `See its type and range with \`${set.listCommand} ${parameter.name}\`.`,
    );
  switch (parameter.type) {
    case 'integer':
      if (!/^[+-]?\d+$/.test(trimmed) || !Number.isSafeInteger(Number(trimmed))) throw wrongType('a whole number');
      return Number(trimmed);
    case 'float':
      if (trimmed === '' || !Number.isFinite(Number(trimmed))) throw wrongType('a number');
      return Number(trimmed);
    case 'boolean': {
      const word = booleanWords[trimmed.toLowerCase()];
      if (word === undefined) throw wrongType('true or false');
      return word;
    }
    case 'string':
      return text;
  }
}

function asRule(parameter: ConfigurationParameterView): ConfigurationParameter {
  return {
    name: parameter.name,
    type: parameter.type,
    restartRequired: parameter.restart_required === true,
    ...(parameter.min === undefined ? {} : { min: parameter.min }),
    ...(parameter.max === undefined ? {} : { max: parameter.max }),
  };
}

/**
 * `--values` then `--set` (a `--set` wins over the same name in `--values`), under each
 * parameter's own name, checked as the API will check them. Errors name the value and where the
 * allowed ones are listed.
 */
export function givenValues(set: ParameterSet, json: string | undefined, settings: readonly string[] | undefined): ConfigurationValues {
  const raw: Record<string, unknown> = {};
  const entries: Array<[string, unknown]> = [
    ...Object.entries(json === undefined ? {} : valuesObject(json)),
    ...(settings ?? []).map(setting).map(({ name, text }): [string, unknown] => {
      const parameter = findParameter(set, name);
      if (parameter === undefined) throw set.parameters.length === 0 ? unsupported(set) : unknownParameter(set, name);
      return [name, typedValue(set, parameter, text)];
    }),
  ];
  for (const [name, value] of entries) {
    const parameter = findParameter(set, name);
    if (parameter === undefined) throw set.parameters.length === 0 ? unsupported(set) : unknownParameter(set, name);
    raw[parameter.name] = value;
  }
  const rules = set.parameters.map(asRule);
  for (const [name, value] of Object.entries(raw)) {
    try {
      validateConfigurationValues({ [name]: value }, rules, set.label);
    } catch (err) {
      if (!(err instanceof CofferError)) throw err;
      throw new CliError(err.message, `See its type and range with \`${set.listCommand} ${name}\`.`);
    }
  }
  return raw as ConfigurationValues;
}
