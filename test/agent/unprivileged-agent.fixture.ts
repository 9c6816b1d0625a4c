import { startAgent } from '../../src/agent/index.js';
import {
  agentContract,
  agentTopic,
  conductorContract,
  conductorTopic,
  createRpcClient,
  guestContract,
  guestTopic,
  InProcessTransport,
  serveRpc,
  type EngineVersionReport,
} from '../../src/bus/index.js';
import { silentLogger } from '../../src/common/logger.js';

// Run by unprivileged-agent.int.test.ts as an ordinary user: an agent that cannot give its
// instances OS users of their own. Prints, as one JSON line, what it announced and how the
// guest of a new instance answered a root enable.

const [dataDir, addressPool] = process.argv.slice(2) as [string, string];
const transport = new InProcessTransport();
let announced: (engines: EngineVersionReport[]) => void;
const engines = new Promise<EngineVersionReport[]>((resolve) => (announced = resolve));
const conductor = await serveRpc(transport, conductorContract, conductorTopic, {
  heartbeat: async () => undefined,
  heartbeats: async () => undefined,
  agentHeartbeat: async (args) => announced(args.engines),
  reportProgress: async () => undefined,
  updateBackup: async () => undefined,
  walArchived: async () => undefined,
  renewLease: async () => ({ lease: 'none' as const }),
});
const agent = await startAgent({ host: 'plain', dataDir, transport, logger: silentLogger(), addressPool, warmPoolSize: 0 });
const agentRpc = createRpcClient(transport, agentContract, agentTopic('plain'));
const instanceId = 'plain-1';
await agentRpc.createServer({ instanceId, engine: { manager: 'postgresql', version: '15' }, flavor: { id: 's', ramMb: 512, vcpus: 1 }, volumeSizeGb: 1 });
const enableRoot = await createRpcClient(transport, guestContract, guestTopic(instanceId))
  .enableRoot({ password: 'Root-pass-1234' })
  .then(
    () => ({ code: 'none', message: 'root was enabled' }),
    (err: Error & { code?: string }) => ({ code: err.code, message: err.message }),
  );
await agentRpc.deleteServer({ instanceId });
await agent.stop();
await conductor.close();
await transport.close();
process.stdout.write(`${JSON.stringify({ uid: process.getuid?.(), engines: await engines, enableRoot })}\n`);
