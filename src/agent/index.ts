// The agent: one per compute host. Its local driver runs each instance's engine as a
// supervised process on this host: a directory (the instance's volume), an address from a
// loopback pool with the engine's standard port, and the instance's guest (src/guest), which
// it hosts and gives a ProcessRunner. Database processes outlive the agent: a restarted agent
// re-adopts them. A warm pool of clusters initialised ahead of time lets a create skip initdb.

export { startAgent } from './agent.js';
export type { Agent, AgentOptions } from './agent.js';
export { AddressPool } from './address-pool.js';
export type { AddressProbe } from './address-pool.js';
export { LocalProcessRunner } from './local-process-runner.js';
export type { EngineIdentity } from './local-process-runner.js';
export { ensureEngineUser } from './engine-user.js';
export { CertificateAuthority } from './certificate-authority.js';
export type { CaFiles, IssueRequest } from './certificate-authority.js';
