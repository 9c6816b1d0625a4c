import type { ConfigurationGroupView, ConfigurationParameterView, ConfigurationValue, ConfigurationValues } from './api-types.js';
import { timestampText } from './instance-format.js';
import type { Cell } from './table-format.js';

// How configuration groups and their values are shown. Trove masks the values of keys holding
// "password" as `***`; the CLI never prints them either, not even the ones the user just gave.

export const secretMask = '***';

export function isSecretName(name: string): boolean {
  return name.toLowerCase().includes('password');
}

/** A value as the user would type it in `--values`: strings quoted, so "on" and true differ. */
export function valueText(name: string, value: ConfigurationValue | undefined): string {
  if (isSecretName(name)) return secretMask;
  if (value === undefined) return '';
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** The values with every secret masked, for --json output. */
export function maskedValues(values: ConfigurationValues | undefined): ConfigurationValues | undefined {
  if (values === undefined) return undefined;
  return Object.fromEntries(Object.entries(values).map(([name, value]) => [name, isSecretName(name) ? secretMask : value]));
}

export function maskedGroup(group: ConfigurationGroupView): ConfigurationGroupView {
  return group.values === undefined ? group : { ...group, values: maskedValues(group.values) };
}

export function versionText(group: ConfigurationGroupView): string | undefined {
  const name = group.datastore_version_name;
  const number = group.datastore_version_number;
  return number !== undefined && number !== name && name !== undefined ? `${name} (${number})` : name;
}

export const groupListHead = ['ID', 'Name', 'Description', 'Datastore', 'Version'];

export function groupListRow(group: ConfigurationGroupView): Cell[] {
  return [group.id, group.name, group.description, group.datastore_name, versionText(group)];
}

export function groupFields(group: ConfigurationGroupView): Array<[string, Cell]> {
  return [
    ['ID', group.id],
    ['Name', group.name],
    ['Description', group.description],
    ['Datastore', group.datastore_name],
    ['Version', versionText(group)],
    ['Instances', group.instance_count],
    ['Created', timestampText(group.created)],
    ['Updated', timestampText(group.updated)],
  ];
}

export function restartRequired(parameters: readonly ConfigurationParameterView[], name: string): boolean {
  const lower = name.toLowerCase();
  return parameters.some((p) => p.name.toLowerCase() === lower && p.restart_required === true);
}

export const valuesHead = ['Parameter', 'Value', 'Restart required'];

export function valueRows(values: ConfigurationValues, parameters: readonly ConfigurationParameterView[]): Cell[][] {
  return Object.keys(values)
    .sort()
    .map((name) => [name, valueText(name, values[name]), restartRequired(parameters, name) ? 'yes' : '']);
}

export function parameterRow(parameter: ConfigurationParameterView): Cell[] {
  return [parameter.name, parameter.type, parameter.min, parameter.max, parameter.restart_required === true ? 'yes' : 'no'];
}

export const parameterHead = ['Name', 'Type', 'Min', 'Max', 'Restart required'];
