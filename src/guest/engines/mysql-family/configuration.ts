import { escape } from 'mysql2';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { CofferError, validateConfigurationValues } from '../../../common/index.js';
import type { ConfigurationValue, ConfigurationValues, Logger } from '../../../common/index.js';
import type { ConfigurationAdmin, ConfigurationOutcome } from '../engine.js';
import type { ConfigurationModule } from '../engine-modules.js';
import type { EngineSpec } from '../engine-spec-file.js';
import { numberText, settingGroups, type Settings } from './config.js';
import type { MysqlFamilyFlavor } from './flavor.js';
import { reportedParameters, type MysqlParameter } from './parameters.js';

// The configuration module: configuration groups on a MySQL-family server: the overrides are checked, rendered into
// my.cnf with everything else of the spec, and each changed dynamic setting is given to the
// running server with SET GLOBAL, which checks the value as the server will at its next start.
// A value it refuses puts the previous file and live values back before the error is reported.

type Row = RowDataPacket & Record<string, unknown>;

const mib = 1024 * 1024;
// every string parameter takes words and lists of words (sql_mode, collations, engines, flush methods)
const stringValue = /^[A-Za-z0-9_,-]{0,1024}$/;

/**
 * Trove's checks (validateConfigurationValues), then what the family adds: strings are words
 * and lists of words; a restart-only string is one the server starts with (it cannot be tried
 * first); the buffer pool fits in the flavor's memory.
 */
export function checkOverrides(
  values: Record<string, unknown>,
  flavor: MysqlFamilyFlavor,
  datastore: string,
  memoryMb: number,
): ConfigurationValues {
  const checked = validateConfigurationValues(values, flavor.parameters, datastore);
  const byName = new Map(flavor.parameters.map((p) => [p.name, p]));
  for (const [name, value] of Object.entries(checked)) {
    if (typeof value !== 'string') continue;
    if (!stringValue.test(value)) {
      throw new CofferError(
        'UnprocessableEntity',
        `The value for the configuration parameter ${name} may contain only letters, digits, '_', '-' and ',' (at most 1024).`,
      );
    }
    const choices = byName.get(name)?.choices;
    if (choices !== undefined && !choices.some((choice) => choice.toLowerCase() === value.toLowerCase())) {
      throw new CofferError('EngineError', `${flavor.title} does not start with ${name} = ${value}: it takes one of ${choices.join(', ')}.`);
    }
  }
  const pool = checked.innodb_buffer_pool_size;
  if (typeof pool === 'number' && pool > memoryMb * mib) {
    throw new CofferError(
      'EngineError',
      `innodb_buffer_pool_size ${pool} does not fit in the flavor's memory (${memoryMb} MB = ${memoryMb * mib} bytes).`,
    );
  }
  return checked;
}

/** One SET GLOBAL: `value` undefined sets the server's compiled-in default. */
export interface LiveSetting {
  name: string;
  value: ConfigurationValue | undefined;
}

export interface ConfigurationPlan {
  /** what SET GLOBAL changes on the running server, in order */
  live: LiveSetting[];
  /** restart-only parameters whose rendered value changes */
  pendingRestart: string[];
}

/**
 * What going from `before` to `after` (both rendered settings) asks of the running server, in
 * the order of `parameters`. A changed setting of a group (settingGroups) is given as the
 * group's most specific member that `after` has, which makes the server derive the others as
 * it does from the file.
 */
export function planChange(before: Settings, after: Settings, parameters: readonly MysqlParameter[]): ConfigurationPlan {
  const plan: ConfigurationPlan = { live: [], pendingRestart: [] };
  const doneGroups = new Set<readonly string[]>();
  for (const parameter of parameters) {
    const { name } = parameter;
    if (before.get(name) === after.get(name)) continue;
    if (parameter.restartRequired) {
      plan.pendingRestart.push(name);
      continue;
    }
    const group = settingGroups.find((members) => members.includes(name));
    if (group === undefined) {
      plan.live.push({ name, value: after.get(name) });
    } else if (!doneGroups.has(group)) {
      doneGroups.add(group);
      const specific = [...group].reverse().find((member) => after.has(member)) ?? group.at(-1)!;
      plan.live.push({ name: specific, value: after.get(specific) });
    }
  }
  return plan;
}

/** The value as SQL: numbers as numbers, booleans ON/OFF, strings as quoted literals. */
function sqlValue(value: ConfigurationValue | undefined): string {
  if (value === undefined) return 'DEFAULT';
  if (typeof value === 'boolean') return value ? 'ON' : 'OFF';
  if (typeof value === 'number') return numberText(value);
  return escape(value);
}

/** Names are the engine's published parameter names, never a tenant's text; checked all the same. */
export function setGlobalStatement(setting: LiveSetting): string {
  if (!/^[a-z_]+$/.test(setting.name)) throw new CofferError('UnprocessableEntity', `Invalid parameter name ${JSON.stringify(setting.name)}.`);
  return `SET GLOBAL ${setting.name} = ${sqlValue(setting.value)}`;
}

/**
 * A character set and a collation of another one start no server (SET GLOBAL would take both,
 * the last winning): refused while the server still runs on the previous values.
 */
async function checkCollation(connection: Connection, settings: Settings, title: string): Promise<void> {
  const charset = settings.get('character_set_server');
  const collation = settings.get('collation_server');
  if (typeof charset !== 'string' || typeof collation !== 'string') return;
  const [rows] = await connection.query<Row[]>('SELECT CHARACTER_SET_NAME AS charset FROM information_schema.COLLATIONS WHERE COLLATION_NAME = ?', [
    collation,
  ]);
  const owner = rows[0]?.charset;
  if (owner !== undefined && String(owner).toLowerCase() !== charset.toLowerCase()) {
    throw new CofferError(
      'EngineError',
      `${title} refused collation_server = ${collation}: it is a collation of character set ${String(owner)}, not of character_set_server ${charset}.`,
    );
  }
}

/** What the configuration admin needs of the instance's lifecycle. */
export interface ConfigurationHost {
  readonly flavor: MysqlFamilyFlavor;
  /** the datastore and version as Trove's messages name it, e.g. `mariadb 10.11` */
  readonly datastore: string;
  readonly logger: Logger;
  /** the saved spec; EngineError when there is none to go by */
  spec(): Promise<EngineSpec>;
  saveSpec(spec: EngineSpec): Promise<void>;
  /** Coffer's settings for the spec's memory with its overrides */
  settings(spec: EngineSpec): Settings;
  /** my.cnf for the spec */
  render(spec: EngineSpec): Promise<string>;
  readConfigFile(): Promise<string>;
  writeConfigFile(content: string): Promise<void>;
  /** runs `work` on the guest's admin connection, after any admin work before it */
  run<T>(work: (connection: Connection) => Promise<T>): Promise<T>;
}

/** Each member of the family publishes its own parameters (its flavor's). */
export function mysqlFamilyConfiguration(flavor: MysqlFamilyFlavor): ConfigurationModule<{ configurationHost(): ConfigurationHost }> {
  return {
    parameters: reportedParameters(flavor.parameters),
    create: (lifecycle) => new MysqlFamilyConfiguration(lifecycle.configurationHost()),
  };
}

export class MysqlFamilyConfiguration implements ConfigurationAdmin {
  readonly parameters: readonly MysqlParameter[];

  constructor(private readonly host: ConfigurationHost) {
    this.parameters = host.flavor.parameters;
  }

  async apply(overrides: ConfigurationValues): Promise<ConfigurationOutcome> {
    const { host } = this;
    const spec = await host.spec();
    const next: EngineSpec = { ...spec, overrides: checkOverrides(overrides, host.flavor, host.datastore, spec.memoryMb) };
    const before = host.settings(spec);
    const after = host.settings(next);
    const plan = planChange(before, after, this.parameters);
    const conf = await host.render(next);
    const previous = await host.readConfigFile();
    await host.run(async (connection) => {
      await checkCollation(connection, after, host.flavor.title);
      await host.writeConfigFile(conf);
      for (const setting of plan.live) {
        try {
          await connection.query(setGlobalStatement(setting));
        } catch (err) {
          await this.restore(connection, previous, planChange(after, before, this.parameters).live);
          const reason = (err as { sqlMessage?: string }).sqlMessage ?? (err as Error).message;
          throw new CofferError(
            'EngineError',
            `${host.flavor.title} refused ${setting.name} = ${sqlValue(setting.value)}: ${reason}. The previous configuration is kept.`,
            { cause: err },
          );
        }
      }
    });
    await host.saveSpec(next);
    return { pendingRestart: plan.pendingRestart };
  }

  /** the previous file, and each live value back as it was (already so for those not reached) */
  private async restore(connection: Connection, previous: string, undo: readonly LiveSetting[]): Promise<void> {
    await this.host.writeConfigFile(previous);
    for (const setting of undo) {
      await connection.query(setGlobalStatement(setting)).catch((err: unknown) => {
        this.host.logger.warn({ err, parameter: setting.name }, 'could not set the previous value again; the file has it for the next start');
      });
    }
  }

  async effective(): Promise<Record<string, ConfigurationValue>> {
    return Object.fromEntries(this.host.settings(await this.host.spec()));
  }
}
