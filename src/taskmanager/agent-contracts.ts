import { agentContract, guestContract, servesVersion } from '../bus/index.js';
import { CofferError } from '../common/index.js';
import type { AgentRow } from '../db/index.js';

// The taskmanager sends an agent its own messages and its guests theirs: an instance goes only
// to an agent whose reported contract versions understand both, so a mixed-version deployment
// fails at placement with a fault that says why, not with a refusal deep in a build.

const needed = [agentContract, guestContract];

/** what an agent that never reported its contracts spoke: every contract's first version */
const unreportedVersion = '1.0';

/** the contracts `agent` does not serve in the version this build sends, e.g. `guest 1.0 (it serves 2.0)` */
export function unservedContracts(agent: AgentRow): string[] {
  return needed.flatMap((contract) => {
    const served = agent.contracts[contract.name] ?? unreportedVersion;
    return servesVersion(served, contract.version) ? [] : [`${contract.name} ${contract.version} (it serves ${served})`];
  });
}

export function contractMismatch(agents: readonly AgentRow[]): CofferError {
  const which = agents.map((agent) => `${agent.host} does not serve ${unservedContracts(agent).join(', ')}`).join('; ');
  return new CofferError(
    'ContractVersionUnsupported',
    `No compute agent that can run this instance speaks this taskmanager's bus contracts: ${which}. Run the same Coffer version on the taskmanager and the agents.`,
  );
}
