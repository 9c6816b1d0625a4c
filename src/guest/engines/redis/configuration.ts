import { readFile } from 'node:fs/promises';
import {
  CofferError,
  isCofferError,
  validateConfigurationValues,
  type ConfigurationValue,
  type ConfigurationValues,
  type Logger,
} from '../../../common/index.js';
import type { ConfigurationAdmin, ConfigurationOutcome } from '../engine.js';
import type { ConfigurationModule } from '../engine-modules.js';
import type { EngineSpec } from '../engine-spec-file.js';
import { withAdminClient, type AdminEndpoint } from './admin.js';
import { redisSettings, renderRedisConf, type RedisConfigInput } from './config.js';
import { planLiveChanges, readLiveSettings, setLive } from './live-config.js';
import { redisParameters, redisParameterTable } from './parameters.js';

// The configuration module: redis.conf rendered from the saved spec with the group's values,
// applied live with CONFIG SET where Redis can.

/** What the configuration module needs of the instance's lifecycle. */
export interface ConfigurationHost {
  /** `redis 7.0`, as Trove names a datastore version in its messages */
  readonly datastore: string;
  readonly logger: Logger;
  readonly configFile: string;
  requireSpec(): Promise<EngineSpec>;
  saveSpec(spec: EngineSpec): Promise<void>;
  confInput(spec: EngineSpec): Promise<RedisConfigInput>;
  writeConf(conf: string): Promise<void>;
  isRunning(): Promise<boolean>;
  endpoint(): Promise<AdminEndpoint>;
}

export const redisConfiguration: ConfigurationModule<{ configurationHost(): ConfigurationHost }> = {
  parameters: redisParameters,
  create: (lifecycle) => new RedisConfigurationAdmin(lifecycle.configurationHost()),
};

export class RedisConfigurationAdmin implements ConfigurationAdmin {
  readonly parameters = redisParameters;

  constructor(private readonly host: ConfigurationHost) {}

  /**
   * Renders redis.conf with `overrides`, then sets on the running server, in one CONFIG SET,
   * every dynamic parameter that runs with another value; restart-only ones wait in the file.
   * The running server checks the values, so a stopped one is not configured: its next start
   * would be the first to read a value it may refuse.
   */
  async apply(overrides: ConfigurationValues): Promise<ConfigurationOutcome> {
    const host = this.host;
    const checked = validateConfigurationValues(overrides, redisParameters, host.datastore);
    const spec: EngineSpec = { ...(await host.requireSpec()), overrides: checked };
    const input = await host.confInput(spec);
    const conf = renderRedisConf(input);
    if (!(await host.isRunning())) {
      throw new CofferError('UnprocessableEntity', 'Redis is not running: start the instance, then apply its configuration again.');
    }
    const previous = await readFile(host.configFile, 'utf8');
    await host.writeConf(conf);
    let pendingRestart: string[];
    try {
      pendingRestart = await withAdminClient(await host.endpoint(), async (client) => {
        const live = await readLiveSettings(client, redisParameters.map((p) => p.name));
        const plan = planLiveChanges(redisSettings(input), live, redisParameterTable);
        await setLive(client, plan.set);
        return plan.pendingRestart;
      });
    } catch (err) {
      // one CONFIG SET changed all or nothing: the previous file matches what still runs
      await host.writeConf(previous);
      throw isCofferError(err) ? err : new CofferError('EngineError', `Redis could not be configured: ${String(err)}`, { cause: err });
    }
    await host.saveSpec(spec);
    host.logger.info({ parameters: Object.keys(checked), pendingRestart }, 'configuration applied');
    return { pendingRestart };
  }

  async effective(): Promise<Record<string, ConfigurationValue>> {
    const spec = await this.host.requireSpec();
    return Object.fromEntries(redisSettings(await this.host.confInput(spec)));
  }
}
