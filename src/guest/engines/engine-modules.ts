import type { ConfigurationParameter } from '../../common/index.js';
import type { ProcessRunner } from '../process-runner.js';
import type { EngineIdentity } from './binary-discovery.js';
import type {
  BackupAdmin,
  ConfigurationAdmin,
  DatabaseAdmin,
  EngineCapabilities,
  EngineContext,
  EngineDiscovery,
  EngineDriver,
  EngineFactory,
  EngineLifecycle,
  ReplicationAdmin,
  RootAdmin,
  UserAccessAdmin,
  UserAdmin,
} from './engine.js';

// An engine is a record of capability modules: its lifecycle, which every engine has, and one
// module per capability it supports. The record is the one source of what the engine can do:
// `capabilitiesOf` derives the capabilities its discovery reports (and the API checks before any
// message goes out), and `assembleDriver` builds each driver's admin objects from the same
// modules. An engine folder never writes either by hand, so they cannot disagree.
//
// Flags that describe a module rather than stand for one (a database's character sets, a user's
// host, a user's access to databases, client access rules) are declared on the module they
// describe, and so cannot be true without it.
//
// Each module builds its admin object from the instance's lifecycle object `L`, the engine's own
// class that owns the instance's process, files and administrative connection.

/** The engine process and its files: every engine has one. */
export interface LifecycleModule<L extends EngineLifecycle> {
  /** the engine enforces `access.allowed_cidrs` / `is_public` with its own rules (capability `accessRules`) */
  readonly accessRules: boolean;
  create(context: EngineContext): L;
}

/** Capability `databases`. */
export interface DatabasesModule<L> {
  /** databases take a character set and a collation (capability `characterSets`) */
  readonly characterSets: boolean;
  create(lifecycle: L): DatabaseAdmin;
}

interface UsersModuleBase {
  /** users have host patterns, `name@host` (capability `userHosts`) */
  readonly userHosts: boolean;
}

/**
 * Capability `users`. With `userAccess` (users can be given databases) its admin object has
 * `access`, and without it has none: the type admits no other pairing.
 */
export type UsersModule<L> =
  | (UsersModuleBase & { readonly userAccess: true; create(lifecycle: L): UserAdmin & { readonly access: UserAccessAdmin } })
  | (UsersModuleBase & { readonly userAccess: false; create(lifecycle: L): UserAdmin & { readonly access?: undefined } });

/** Capability `root` (which a host may still turn off, see EngineFactory.rootReachesOsUser). */
export interface RootModule<L> {
  create(lifecycle: L): RootAdmin;
}

/** Capability `configurationGroups`. */
export interface ConfigurationModule<L> {
  /** the settings a group may set, as the engine's discovery reports them */
  readonly parameters: readonly ConfigurationParameter[];
  create(lifecycle: L): ConfigurationAdmin;
}

/** Capability `backup`: taking backups; restoring them is the lifecycle's prepare (see BackupAdmin). */
export interface BackupModule<L> {
  /** backups can follow a parent (capability `incrementalBackup`); the admin object's `incremental` says the same */
  readonly incremental: boolean;
  /** restores can roll forward to a moment through the archived log (capability `pointInTimeRecovery`) */
  readonly pointInTime?: boolean;
  create(lifecycle: L): BackupAdmin;
}

/** Capability `replication`: replicas streaming from a primary. */
export interface ReplicationModule<L> {
  create(lifecycle: L): ReplicationAdmin;
}

export interface EngineModules<L extends EngineLifecycle> {
  readonly lifecycle: LifecycleModule<L>;
  // L is what the lifecycle creates; each module takes it (or any narrower view of it)
  readonly databases?: DatabasesModule<NoInfer<L>>;
  readonly users?: UsersModule<NoInfer<L>>;
  readonly root?: RootModule<NoInfer<L>>;
  readonly configuration?: ConfigurationModule<NoInfer<L>>;
  readonly backup?: BackupModule<NoInfer<L>>;
  readonly replication?: ReplicationModule<NoInfer<L>>;
}

/** What an engine's modules imply it can do. */
export function capabilitiesOf(modules: EngineModules<EngineLifecycle>): EngineCapabilities {
  return {
    databases: modules.databases !== undefined,
    users: modules.users !== undefined,
    userHosts: modules.users?.userHosts ?? false,
    // granting a database needs databases to grant
    userAccess: modules.users?.userAccess === true && modules.databases !== undefined,
    characterSets: modules.databases?.characterSets ?? false,
    root: modules.root !== undefined,
    accessRules: modules.lifecycle.accessRules,
    backup: modules.backup !== undefined,
    incrementalBackup: modules.backup?.incremental ?? false,
    pointInTimeRecovery: modules.backup?.pointInTime ?? false,
    replication: modules.replication !== undefined,
    configurationGroups: modules.configuration !== undefined,
  };
}

/** The settings an engine's configuration groups may set; none without a configuration module. */
export function parametersOf(modules: EngineModules<EngineLifecycle>): ConfigurationParameter[] {
  return [...(modules.configuration?.parameters ?? [])];
}

/** What each version of the engine `manager` made of `modules` is reported as. */
export function identityOf(manager: string, modules: EngineModules<EngineLifecycle>): EngineIdentity {
  return { datastore: manager, manager, capabilities: capabilitiesOf(modules), parameters: parametersOf(modules) };
}

/** One instance's driver: its lifecycle, and the admin object of each module the engine has. */
export function assembleDriver<L extends EngineLifecycle>(modules: EngineModules<L>, context: EngineContext): EngineDriver {
  const lifecycle = modules.lifecycle.create(context);
  const driver: { -readonly [K in keyof EngineDriver]: EngineDriver[K] } = {
    prepare: (input, progress, restore, pointInTime) => lifecycle.prepare(input, progress, restore, pointInTime),
    start: () => lifecycle.start(),
    stop: () => lifecycle.stop(),
    health: () => lifecycle.health(),
    metrics: () => lifecycle.metrics(),
    release: () => lifecycle.release(),
    processId: () => lifecycle.processId(),
    resize: (memoryMb) => lifecycle.resize(memoryMb),
    updateAccess: (access) => lifecycle.updateAccess(access),
    installTls: (material) => lifecycle.installTls(material),
    logFiles: () => lifecycle.logFiles(),
    refuseWrites: (refused) => lifecycle.refuseWrites(refused),
  };
  if (lifecycle.logs !== undefined) driver.logs = lifecycle.logs;
  if (lifecycle.idle !== undefined) driver.idle = () => lifecycle.idle!();
  if (lifecycle.prepareFiles !== undefined) driver.prepareFiles = (input) => lifecycle.prepareFiles!(input);
  if (modules.databases !== undefined) driver.databases = modules.databases.create(lifecycle);
  if (modules.users !== undefined) driver.users = modules.users.create(lifecycle);
  if (modules.root !== undefined) driver.root = modules.root.create(lifecycle);
  if (modules.configuration !== undefined) driver.configuration = modules.configuration.create(lifecycle);
  if (modules.backup !== undefined) driver.backup = modules.backup.create(lifecycle);
  if (modules.replication !== undefined) driver.replication = modules.replication.create(lifecycle);
  return driver;
}

/** What an engine folder's `engine.ts` declares; `defineEngine` derives the rest. */
export interface EngineDefinition<L extends EngineLifecycle> extends Omit<EngineFactory, 'capabilities' | 'modules' | 'create' | 'discover'> {
  readonly modules: EngineModules<L>;
  /** finds the versions this host can run and reports each as `identity` (its capabilities and parameters) */
  discover(extraBinDirs: readonly string[], runner: ProcessRunner, identity: EngineIdentity): Promise<EngineDiscovery>;
}

/** An engine's factory, with its capabilities, reports and drivers all taken from its modules. */
export function defineEngine<L extends EngineLifecycle>(definition: EngineDefinition<L>): EngineFactory {
  const { modules, discover, ...rest } = definition;
  if (modules.users?.userAccess === true && modules.databases === undefined) {
    throw new Error(`engine ${definition.manager}: a users module with userAccess needs a databases module`);
  }
  const identity = identityOf(definition.manager, modules);
  return {
    ...rest,
    capabilities: identity.capabilities,
    modules,
    discover: (extraBinDirs, runner) => discover(extraBinDirs, runner, identity),
    create: (context) => assembleDriver(modules, context),
  };
}
