import { readFile, rename, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { Logger } from '../common/index.js';
import { lookupUser, stillAsMade } from './engine-user.js';
import { addInstanceUser, createInstanceUser, instanceUserName, removeInstanceUser } from './instance-user.js';
import type { EngineIdentity } from './local-process-runner.js';

// Instance users made ahead of time. useradd rewrites /etc/passwd, shadow, group and gshadow
// under their locks, one change at a time on the whole host, with an fdatasync of each (50 to
// 100 ms on a quiet 2-core box, 0.2 to 1.5 s while a burst's initdbs fill the disk queue): on
// the path of every create, and a burst of creates queues behind it. Spare users, made while
// nothing waits for them, take it off that path; a create that finds none makes its own as
// before. They are made back only once no create is under way (`busy`): made during a burst,
// each useradd would queue before the next create's own. A spare user is like any instance's
// (random name, a group of its own, no home, no files, nothing running); it only has no
// instance yet.
//
// The names are kept in one file of the agent's: a name is written there before its useradd
// runs, so a user made as the agent died is found at the next start (a name whose user was
// never made is dropped then). The file is the only record of which users are spare.
//
// As root each spare is walled off the network as soon as it is made, with nothing allowed
// (`wall`): a create then only adds its own endpoint to that wall (network-wall.ts, `extend`),
// which costs a few ms, instead of raising a wall whole on its path (10 to 25 ms of a commit). Which
// spares are walled so is known to this process alone: those found at open (the host may have
// rebooted since, taking every wall with it) are walled again before the filling makes new ones.

const recordSchema = z.object({ users: z.array(z.string().regex(/^coffer-[0-9a-f]{12}$/)) });

export interface SpareUsersOptions {
  /** the agent's record of its spare users */
  file: string;
  /** spare users kept ready; 0 keeps none (and removes those left from before) */
  size: number;
  logger: Logger;
  /** true while creates are under way: no spare user is made then (one under way finishes) */
  busy?: () => boolean;
  /** walls a spare off the network with nothing allowed; absent: none is walled ahead */
  wall?: (identity: EngineIdentity) => Promise<void>;
  /** how often a filling held back by `busy` asks again; default 250 ms */
  busyPollMs?: number;
}

/** A user for a new instance, and whether this process walled it with nothing allowed (`wall`) since it was made. */
export interface TakenUser {
  identity: EngineIdentity;
  walled: boolean;
}

export class SpareUsers {
  /** made and checked, ready to be taken: each as it was made (or found at open), checked again when taken */
  private readonly ready: TakenUser[] = [];
  /** every name in the file: the ready ones and the one being made */
  private readonly recorded = new Set<string>();
  private saving: Promise<void> = Promise.resolve();
  private filling: Promise<void> | undefined;
  private stopped = false;
  private readonly logger: Logger;

  constructor(private readonly options: SpareUsersOptions) {
    this.logger = options.logger.child({ component: 'spare-users' });
  }

  /** Takes up what an earlier run left: users that exist are ready again, the rest are forgotten. */
  async open(): Promise<void> {
    const text = await readFile(this.options.file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    const parsed = text === undefined ? undefined : recordSchema.safeParse(JSON.parse(text));
    if (parsed?.success === false) this.logger.warn({ file: this.options.file }, 'the spare users record is unreadable: starting without one');
    for (const name of parsed?.data?.users ?? []) {
      const identity = await lookupUser(name);
      if (identity === undefined) continue;
      this.recorded.add(name);
      this.ready.push({ identity, walled: false });
    }
    // a smaller size than before: what is over goes
    while (this.ready.length > this.options.size) await this.discard(this.ready.pop()!.identity.name);
    await this.save();
  }

  /** Makes spare users until `size` are ready, one at a time; resolves once it stopped (never rejects). */
  fill(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.filling ??= this.makeUntilFull()
      .catch((err: unknown) => this.logger.warn({ err }, 'could not make a spare instance user: creates make their own'))
      .finally(() => (this.filling = undefined));
    return this.filling;
  }

  /** A user for a new instance: a spare one when one is ready, else one made now (never walled ahead). */
  async take(instanceId: string): Promise<TakenUser> {
    for (;;) {
      const spare = this.ready.shift();
      if (spare === undefined) break;
      this.recorded.delete(spare.identity.name);
      // off the record before it is handed out (an agent that dies now must not give it twice);
      // the check beside the write, not after it
      const [identity] = await Promise.all([this.usable(spare.identity), this.save()]);
      if (identity === undefined) continue;
      this.logger.info({ instanceId, osUser: identity.name, uid: identity.uid, walled: spare.walled }, 'gave the instance a spare user');
      void this.fill();
      return { identity, walled: spare.walled };
    }
    const identity = await createInstanceUser(instanceId, this.logger);
    void this.fill();
    return { identity, walled: false };
  }

  /** Ends the filling; a useradd under way finishes (its name is on record). What is made stays. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.filling;
    await this.saving;
  }

  private async makeUntilFull(): Promise<void> {
    await this.wallFound();
    while (!this.stopped && this.ready.length < this.options.size) {
      if (await this.yieldToCreates()) continue;
      const name = instanceUserName();
      this.recorded.add(name);
      await this.save();
      const identity = await addInstanceUser(name).catch(async (err: unknown) => {
        this.recorded.delete(name);
        await this.save();
        throw err;
      });
      if (identity === undefined) {
        // the name is someone else's: never shared, never removed
        this.recorded.delete(name);
        await this.save();
        continue;
      }
      this.ready.push({ identity, walled: await this.wallAhead(identity) });
    }
  }

  /**
   * The spares found at open, walled with nothing allowed, once each. Out of `ready` meanwhile:
   * a create that took one now could have its own wall raised first and then lose it to this one.
   */
  private async wallFound(): Promise<void> {
    if (this.options.wall === undefined) return;
    for (const spare of [...this.ready]) {
      if (this.stopped) return;
      if (spare.walled) continue;
      await this.yieldToCreates();
      const at = this.ready.indexOf(spare);
      // taken meanwhile
      if (at < 0) continue;
      this.ready.splice(at, 1);
      const walled = await this.wallAhead(spare.identity);
      this.ready.push({ identity: spare.identity, walled });
    }
  }

  /** whether the spare is walled now; one that is not is still handed out, and its create raises its wall whole */
  private async wallAhead(identity: EngineIdentity): Promise<boolean> {
    if (this.options.wall === undefined) return false;
    try {
      await this.options.wall(identity);
      return true;
    } catch (err) {
      this.logger.warn({ err, osUser: identity.name }, 'a spare instance user could not be walled ahead: its create walls it');
      return false;
    }
  }

  /** Waits while creates are under way (or until stopped); true when it waited. */
  private async yieldToCreates(): Promise<boolean> {
    if (this.options.busy?.() !== true) return false;
    while (!this.stopped && this.options.busy()) await sleep(this.options.busyPollMs ?? 250);
    return true;
  }

  /**
   * The spare user as it was made: still there, with its own group. Anything else is discarded
   * rather than handed to a tenant. (Nothing can run as it: only root could start it, and the
   * processes a removed user's uid had end before its userdel. Scanning /proc for them would put
   * a walk of every process on the host on the path of every create.)
   */
  private async usable(made: EngineIdentity): Promise<EngineIdentity | undefined> {
    if (await stillAsMade(made)) return made;
    this.logger.warn({ osUser: made.name }, 'a spare instance user is not as it was made: discarding it');
    await this.discard(made.name);
    return undefined;
  }

  private async discard(name: string): Promise<void> {
    this.recorded.delete(name);
    await removeInstanceUser(name, this.logger).catch((err: unknown) => this.logger.warn({ err, osUser: name }, 'could not remove a spare instance user'));
  }

  /** Writes the record as it is now; writes queue, so the last one holds the newest names. */
  private save(): Promise<void> {
    const write = async () => {
      const temporary = `${this.options.file}.new`;
      await writeFile(temporary, JSON.stringify({ users: [...this.recorded] }), { mode: 0o600 });
      await rename(temporary, this.options.file);
    };
    this.saving = this.saving.then(write, write);
    return this.saving;
  }
}
