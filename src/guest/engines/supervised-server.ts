import type { Logger } from '../../common/index.js';
import type { DetachedProcess, ProcessExit } from '../process-runner.js';

// The one server process of an instance, as every driver runs it: adopted when one already
// serves the instance (an agent restarted under it, or a start still under way), spawned
// otherwise, and never left half-started without supervision. What differs between engines
// (how a server is found, spawned, awaited and stopped) comes in as `ServerControl`.

export interface ServerControl {
  /** the engine's name in log lines */
  title: string;
  /** the engine's orderly shutdown, named when the server ignored it */
  stopSignal: NodeJS.Signals;
  stopTimeoutMs: number;
  /** the pid of the server serving the instance, if one runs */
  running(): Promise<number | undefined>;
  /** clears what an earlier server left behind before another is spawned */
  beforeSpawn(): Promise<void>;
  spawn(): Promise<DetachedProcess>;
  /** `exited` is undefined for an adopted server, which is watched through its pid */
  waitReady(pid: number, exited: Promise<ProcessExit> | undefined): Promise<void>;
  stopPid(pid: number): Promise<'stopped' | 'killed'>;
  /** clears whatever still works in the instance's directories once the server is stopped */
  afterStop(): Promise<void>;
}

export class SupervisedServer {
  /** the server this host spawned, whose exit it can observe */
  private child: DetachedProcess | undefined;

  constructor(
    private readonly control: ServerControl,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    const running = await this.control.running();
    if (running !== undefined) {
      await this.control.waitReady(running, undefined);
      return;
    }
    await this.control.beforeSpawn();
    const child = await this.control.spawn();
    this.child = child;
    child.exited.then(() => {
      if (this.child === child) this.child = undefined;
    });
    try {
      await this.control.waitReady(child.pid, child.exited);
    } catch (err) {
      // never leave a half-started server nobody supervises
      await this.stop().catch(() => undefined);
      throw err;
    }
  }

  async stop(): Promise<void> {
    // a child that has not written its pid file yet is only known by the pid we spawned
    const pid = (await this.control.running()) ?? this.child?.pid;
    this.child = undefined;
    if (pid !== undefined) {
      const how = await this.control.stopPid(pid);
      if (how === 'killed') {
        const { title, stopSignal, stopTimeoutMs } = this.control;
        this.logger.warn({ pid }, `${title} ignored ${stopSignal} for ${stopTimeoutMs} ms and was killed`);
      }
    }
    await this.control.afterStop();
  }
}
