import type { ProcessRunner } from '../guest/index.js';
import type { Endpoint, PortNeeds } from './address-allocator.js';
import type { InstanceRecord } from './instance-record.js';

// The compute driver port: everything the agent does to its host, so that the agent itself
// only decides what should run where. An instance placed on a host has a directory (its
// volume), an endpoint (address and port), an OS identity its engine runs as, a wall that
// keeps that identity from reaching anything but what it is allowed, and processes that outlive
// the agent and are found again when a new agent (a new driver) starts on the same host. The
// local process driver (local-compute-driver.ts) is the first adapter; the conformance suite in
// test/agent/compute-driver-conformance.ts is the contract every adapter passes.

export type { Endpoint, PortNeeds } from './address-allocator.js';

/** An instance as the driver placed it: its record (kept by the host) and its directory. */
export interface PlacedInstance {
  record: InstanceRecord;
  dir: string;
}

export interface PlacementRequest {
  instanceId: string;
  engine: InstanceRecord['engine'];
  flavor: InstanceRecord['flavor'];
  volumeSizeGb: number;
  ports: PortNeeds;
}

export interface ComputeDriver {
  /** how addresses are handed out, for log lines */
  readonly addressing: string;
  /** client ranges an instance admits when its owner set none (see AddressAllocator) */
  readonly defaultClientCidrs: readonly string[];
  /**
   * Whether each instance's engine runs as an OS user of its own. Otherwise every engine runs as
   * the host's user and a tenant's superuser could reach other tenants.
   */
  readonly isolated: boolean;
  /** runs the host's own engine work (version discovery, the warm pool), never a tenant's */
  readonly hostRunner: ProcessRunner;
  /** runs as the agent itself: what holds the host's secrets (the CA) */
  readonly agentRunner: ProcessRunner;
  /** the group that may traverse the warm pool's directories, when not the host's own */
  readonly warmPoolGroup: number | undefined;

  /**
   * Readies the host (directories, the host's engine user and its wall) and finds the instances
   * placed on it before, their endpoints reserved so that no new instance gets one: adoption.
   * `ports` says what each engine's instances hold, by datastore manager.
   */
  open(ports: (manager: string) => PortNeeds): Promise<PlacedInstance[]>;
  /** Makes ahead of time what placing an instance needs (spare identities); resolves when done, never rejects. */
  prepareAhead(): Promise<void>;
  /** Ends that background work; what it made stays for the next `open`. */
  close(): Promise<void>;
  /**
   * Places an instance: directory, identity, endpoint, record. Idempotent: an instance already
   * placed (a create retried after it failed later on) is returned as it is.
   */
  place(request: PlacementRequest): Promise<PlacedInstance>;
  /** the instance as its host knows it now; undefined when it is not placed here */
  find(instanceId: string): Promise<PlacedInstance | undefined>;
  /** keeps a changed record (desired state, volume size) for the next adoption */
  save(instance: PlacedInstance): Promise<void>;
  /**
   * Gives an instance placed before engines had users of their own one now, after `stopEngine`
   * stopped what ran as the host's user; returns the instance unchanged when it needs none.
   */
  ownIdentity(instance: PlacedInstance, stopEngine: () => Promise<void>): Promise<PlacedInstance>;
  /**
   * runs the instance's programs (its engine too) as its identity, detached ones outliving the
   * agent; with `walled` (its wall being raised), none before that has settled, and none if it fails
   */
  runnerFor(instance: PlacedInstance, walled?: Promise<void>): Promise<ProcessRunner>;
  /**
   * Hands what `hostRunner` made (a warm cluster) at `path` to the instance's identity; undefined
   * when both are the same and nothing needs handing over.
   */
  handOverFor(instance: PlacedInstance): ((path: string) => Promise<void>) | undefined;
  /**
   * Walls the instance's identity in: from now on it reaches `allowed` and nothing else.
   * Replaces what it was allowed before. A no-op where engines are not isolated. Rejects when the
   * wall cannot be put up (the caller fails closed).
   */
  wall(instance: PlacedInstance, allowed: readonly Endpoint[]): Promise<void>;
  /** the live processes of the instance (its engine and whatever the engine started) */
  processes(instance: PlacedInstance): Promise<number[]>;
  /** ends every process of the instance, killing what does not end at once */
  stopProcesses(instance: PlacedInstance): Promise<void>;
  /**
   * Removes an instance from the host: processes, identity, wall, directory, endpoint. Nothing
   * of it is left to the next instance. A no-op for one not placed here.
   */
  remove(instanceId: string): Promise<void>;
}
