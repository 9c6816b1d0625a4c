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

const recordSchema = z.object({ users: z.array(z.string().regex(/^coffer-[0-9a-f]{12}$/)) });

export interface SpareUsersOptions {
  /** the agent's record of its spare users */
  file: string;
  /** spare users kept ready; 0 keeps none (and removes those left from before) */
  size: number;
  logger: Logger;
  /** true while creates are under way: no spare user is made then (one under way finishes) */
  busy?: () => boolean;
  /** how often a filling held back by `busy` asks again; default 250 ms */
  busyPollMs?: number;
}

export class SpareUsers {
  /** made and checked, ready to be taken: each as it was made (or found at open), checked again when taken */
  private readonly ready: EngineIdentity[] = [];
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
      this.ready.push(identity);
    }
    // a smaller size than before: what is over goes
    while (this.ready.length > this.options.size) await this.discard(this.ready.pop()!.name);
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

  /** A user for a new instance: a spare one when one is ready, else one made now. */
  async take(instanceId: string): Promise<EngineIdentity> {
    for (;;) {
      const made = this.ready.shift();
      if (made === undefined) break;
      this.recorded.delete(made.name);
      // off the record before it is handed out (an agent that dies now must not give it twice);
      // the check beside the write, not after it
      const [identity] = await Promise.all([this.usable(made), this.save()]);
      if (identity === undefined) continue;
      this.logger.info({ instanceId, osUser: identity.name, uid: identity.uid }, 'gave the instance a spare user');
      void this.fill();
      return identity;
    }
    const identity = await createInstanceUser(instanceId, this.logger);
    void this.fill();
    return identity;
  }

  /** Ends the filling; a useradd under way finishes (its name is on record). What is made stays. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.filling;
    await this.saving;
  }

  private async makeUntilFull(): Promise<void> {
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
      this.ready.push(identity);
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
