import {
  CofferError,
  isCofferError,
  validateConfigurationValues,
  type ConfigurationParameter,
  type ConfigurationValue,
  type ConfigurationValues,
  type Logger,
} from '../../../common/index.js';
import type { ConfigurationAdmin, ConfigurationOutcome } from '../engine.js';
import type { ConfigurationModule } from '../engine-modules.js';
import type { EngineSpec } from '../engine-spec-file.js';
import { reloadConfiguration, withAdminClient, type AdminEndpoint } from './admin.js';
import { postgresqlParameters } from './parameters.js';
import { sqlStates } from './sql-states.js';

// The configuration module: configuration groups on PostgreSQL. The group's values are
// rendered into postgresql.conf with everything else (see config.ts) and the server reloads it,
// so there is no ALTER SYSTEM state beside the file. PostgreSQL applies whatever part of a file
// it can and only logs the rest, so a new file is first checked through pg_file_settings, which
// parses the file on disk as a reload would, before the server is asked to read it.

/** What the configuration module needs of the instance's lifecycle: the spec, the file and the running server. */
export interface ConfigurationHost {
  /** e.g. `postgresql 15`, as errors name the datastore */
  datastore: string;
  readSpec(): Promise<EngineSpec>;
  saveSpec(spec: EngineSpec): Promise<void>;
  renderConf(spec: EngineSpec): Promise<string>;
  effective(spec: EngineSpec): Promise<Record<string, ConfigurationValue>>;
  readConf(): Promise<string>;
  writeConf(text: string): Promise<void>;
  /** the administrative endpoint of the running server; undefined when none runs */
  runningEndpoint(): Promise<AdminEndpoint | undefined>;
  logger: Logger;
}

export const postgresqlConfiguration: ConfigurationModule<{ configurationHost(): ConfigurationHost }> = {
  parameters: postgresqlParameters,
  create: (lifecycle) => new PostgresqlConfigurationAdmin(postgresqlParameters, lifecycle.configurationHost()),
};

// a postmaster-context value that differs from the running one waits for a restart; anything
// else pg_file_settings reports is a refused value
const pendingRestartState = sqlStates.cantChangeRuntimeParam;

/** what this code reads of a server's notice (pg's NoticeMessage) */
interface Notice {
  message?: string;
  code?: string;
  detail?: string;
  hint?: string;
}

interface Rejection {
  name: string;
  reason: string;
}

/**
 * The published parameters among `names` whose value in the configuration file on disk the
 * server refuses, with PostgreSQL's reason. pg_file_settings marks each only "setting could not
 * be applied"; the reason is what its check reports at DEBUG3, which this session asks to see.
 */
async function rejectedSettings(endpoint: AdminEndpoint, names: readonly string[]): Promise<Rejection[]> {
  const wanted = new Set(names.map((name) => name.toLowerCase()));
  return withAdminClient(endpoint, 'postgres', async (client) => {
    const notices: Notice[] = [];
    client.on('notice', (notice: Notice) => notices.push(notice));
    await client.query("SET client_min_messages = 'debug3'");
    const { rows } = await client.query<{ name: string; error: string; context: string | null }>(
      `SELECT f.name, f.error, s.context FROM pg_file_settings f LEFT JOIN pg_settings s ON lower(s.name) = lower(f.name)
        WHERE f.error IS NOT NULL AND f.name IS NOT NULL`,
    );
    const rejections: Rejection[] = [];
    for (const row of rows) {
      const name = row.name.toLowerCase();
      if (!wanted.has(name)) continue;
      const about = notices.filter((notice) => (notice.message ?? '').toLowerCase().includes(`"${name}"`));
      if (about.length > 0 && about.every((notice) => notice.code === pendingRestartState)) continue;
      // a server that sent no reason: a restart-only value is taken as waiting for the restart
      // (one PostgreSQL refuses then fails that start, which falls back, see lifecycle.ts)
      if (about.length === 0 && row.context === 'postmaster') continue;
      const notice = about.find((n) => n.code !== pendingRestartState);
      const reason = notice === undefined ? row.error : [notice.message, notice.detail, notice.hint].filter(Boolean).join('. ');
      rejections.push({ name, reason });
    }
    return rejections;
  });
}

/** Which of `names` the server runs with another value than its configuration file says. */
async function pendingRestart(endpoint: AdminEndpoint, names: readonly string[]): Promise<Set<string>> {
  const rows = await withAdminClient(endpoint, 'postgres', async (client) =>
    (
      await client.query<{ name: string }>('SELECT lower(name) AS name FROM pg_settings WHERE pending_restart AND lower(name) = ANY($1)', [
        names.map((name) => name.toLowerCase()),
      ])
    ).rows,
  );
  return new Set(rows.map((row) => row.name));
}

export class PostgresqlConfigurationAdmin implements ConfigurationAdmin {
  constructor(
    readonly parameters: readonly ConfigurationParameter[],
    private readonly host: ConfigurationHost,
  ) {}

  async apply(overrides: ConfigurationValues): Promise<ConfigurationOutcome> {
    const checked = validateConfigurationValues(overrides, this.parameters, this.host.datastore);
    const spec = await this.host.readSpec();
    const next: EngineSpec = { ...spec, overrides: checked };
    const conf = await this.host.renderConf(next);
    const previous = await this.host.readConf();
    const endpoint = await this.host.runningEndpoint();
    await this.host.writeConf(conf);
    if (endpoint === undefined) {
      // nothing runs an old value: the next start reads the file (and falls back to the
      // configuration it last started with if PostgreSQL refuses it, see lifecycle.ts's start)
      await this.host.saveSpec(next);
      return { pendingRestart: [] };
    }
    try {
      const rejections = await rejectedSettings(endpoint, Object.keys(checked));
      if (rejections.length > 0) {
        const reasons = rejections.map(({ name, reason }) => `${name} (${reason})`).join('; ');
        throw new CofferError(
          'EngineError',
          `PostgreSQL refused the configuration parameter ${reasons}; the instance keeps its previous configuration.`,
        );
      }
      await reloadConfiguration(endpoint);
    } catch (err) {
      await this.host.writeConf(previous);
      // the server may have read the refused file meanwhile (a reload, or a SIGHUP from anyone)
      await reloadConfiguration(endpoint).catch((reloadErr: unknown) =>
        this.host.logger.error({ err: reloadErr }, 'PostgreSQL did not reload its previous configuration'),
      );
      if (isCofferError(err)) throw err;
      throw new CofferError('EngineError', `PostgreSQL could not apply the configuration: ${(err as Error).message}`, { cause: err });
    }
    // what this group sets or set before: a value it dropped may also wait for the restart
    const touched = [...new Set([...Object.keys(spec.overrides), ...Object.keys(checked)])];
    const pending = await pendingRestart(endpoint, touched);
    await this.host.saveSpec(next);
    return { pendingRestart: touched.filter((name) => pending.has(name.toLowerCase())) };
  }

  async effective(): Promise<Record<string, ConfigurationValue>> {
    return this.host.effective(await this.host.readSpec());
  }
}
