// The agent: one per compute host. What it does to its host goes through the compute driver
// port (compute-driver.ts); its local driver runs each instance's engine as a supervised
// process on this host: a directory (the instance's volume), an endpoint (a loopback address of
// its own with the engine's standard port, or the host's address with a port of its own), and
// the instance's guest (src/guest), which the agent hosts and gives a ProcessRunner. Database processes outlive the agent: a restarted agent
// re-adopts them. A warm pool of clusters initialised ahead of time lets a create skip initdb.

export { addressAllocator, startAgent } from './agent.js';
export type { Agent, AgentOptions } from './agent.js';
export { AddressPool } from './address-pool.js';
export type { AddressProbe } from './address-pool.js';
export { defaultInstancePorts, HostPortAllocator, LoopbackAllocator, parsePortRange, portIsFree } from './address-allocator.js';
export type { AddressAllocator, Endpoint, PortNeeds } from './address-allocator.js';
export type { ComputeDriver, PlacedInstance, PlacementRequest } from './compute-driver.js';
export { LocalComputeDriver } from './local-compute-driver.js';
export { LocalProcessRunner } from './local-process-runner.js';
export type { EngineIdentity } from './local-process-runner.js';
export { ensureEngineUser } from './engine-user.js';
export { CertificateAuthority } from './certificate-authority.js';
export type { CaFiles, IssueRequest } from './certificate-authority.js';
