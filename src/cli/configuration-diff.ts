import type { ConfigurationParameterView, ConfigurationValue, ConfigurationValues } from './api-types.js';
import { isSecretName, restartRequired, valueText } from './configuration-format.js';

// What a change of configuration does to the values an instance runs with: which change, which
// are new, which go back to the engine's default, and which of them take a restart.

export interface ValueChange {
  name: string;
  kind: 'added' | 'changed' | 'removed';
  before?: ConfigurationValue;
  after?: ConfigurationValue;
  /** the parameter list says the engine reads it only when it starts */
  restart: boolean;
}

export interface DiffOptions {
  /** names the user gave a value for: a secret's old value is masked, so giving one counts as a change */
  given?: ReadonlySet<string>;
  /** whether names missing from `after` are removed (a replaced set) or left alone (an overlay, as attach is) */
  removals: boolean;
}

function sameValue(a: ConfigurationValue, b: ConfigurationValue): boolean {
  // An engine's effective value may come back as text ("200" for 200).
  return a === b || String(a) === String(b);
}

export function valuesDiff(
  before: Readonly<Record<string, ConfigurationValue>>,
  after: ConfigurationValues,
  parameters: readonly ConfigurationParameterView[],
  options: DiffOptions,
): ValueChange[] {
  const beforeByLower = new Map(Object.entries(before).map(([name, value]) => [name.toLowerCase(), { name, value }]));
  const changes: ValueChange[] = [];
  for (const [name, value] of Object.entries(after)) {
    const old = beforeByLower.get(name.toLowerCase());
    beforeByLower.delete(name.toLowerCase());
    const restart = restartRequired(parameters, name);
    if (old === undefined) {
      changes.push({ name, kind: 'added', after: value, restart });
    } else if (!sameValue(old.value, value) || (isSecretName(name) && options.given?.has(name) === true)) {
      changes.push({ name, kind: 'changed', before: old.value, after: value, restart });
    }
  }
  if (options.removals) {
    for (const { name, value } of beforeByLower.values()) {
      changes.push({ name, kind: 'removed', before: value, restart: restartRequired(parameters, name) });
    }
  }
  return changes.sort((a, b) => a.name.localeCompare(b.name));
}

/** One line per change: `~ name: old → new`, `+ name: new`, `- name: old → default`; restarts marked. */
export function renderChanges(changes: readonly ValueChange[]): string {
  return changes
    .map((change) => {
      const { name } = change;
      const line =
        change.kind === 'added'
          ? `+ ${name}: ${valueText(name, change.after)}`
          : change.kind === 'changed'
            ? `~ ${name}: ${valueText(name, change.before)} → ${valueText(name, change.after)}`
            : `- ${name}: ${valueText(name, change.before)} → default`;
      return `  ${line}${change.restart ? '  (needs a restart)' : ''}\n`;
    })
    .join('');
}

export function restartNames(changes: readonly ValueChange[]): string[] {
  return changes.filter((c) => c.restart).map((c) => c.name);
}
