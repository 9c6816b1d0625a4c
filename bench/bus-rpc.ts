// bench/bus-rpc: sequential and concurrent RPC call latency over RabbitMQ, beside the in-process
// bus, each unsigned and signed (as the roles run it), measured in the same run.
// `node --import tsx bench/bus-rpc.ts [amqp url]`
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import {
  AmqpTransport,
  BusKey,
  InProcessTransport,
  SignedTransport,
  call,
  createRpcClient,
  defineService,
  serveRpc,
  type Transport,
} from '../src/bus/index.js';

const echo = defineService('bench', '1.0', { double: call(z.object({ n: z.number() }), z.object({ doubled: z.number() }), 5_000) });
const url = process.argv[2] ?? 'amqp://guest:guest@127.0.0.1:5672';

async function measure(name: string, server: Transport, client: Transport): Promise<void> {
  const topic = `bench.${randomUUID()}`;
  const subscription = await serveRpc(server, echo, topic, { double: async ({ n }) => ({ doubled: n * 2 }) });
  const rpc = createRpcClient(client, echo, topic);
  for (let i = 0; i < 100; i++) await rpc.double({ n: i });
  const samples: number[] = [];
  for (let i = 0; i < 1000; i++) {
    const started = performance.now();
    await rpc.double({ n: i });
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  const started = performance.now();
  await Promise.all(Array.from({ length: 5000 }, (_, i) => rpc.double({ n: i })));
  const perSecond = 5000 / ((performance.now() - started) / 1000);
  process.stdout.write(
    `${name}: sequential median ${samples[500]!.toFixed(3)} ms, p95 ${samples[950]!.toFixed(3)} ms; 5000 concurrent: ${perSecond.toFixed(0)} calls/s\n`,
  );
  await subscription.close();
  await server.deleteTopic(topic);
}

const key = BusKey.generate();
const memory = new InProcessTransport();
await measure('in-process', memory, memory);
const signedMemory = new SignedTransport(memory, { key });
await measure('in-process, signed', signedMemory, signedMemory);
await memory.close();
const [server, client] = await Promise.all([AmqpTransport.connect(url), AmqpTransport.connect(url)]);
await measure('RabbitMQ', server, client);
await measure('RabbitMQ, signed', new SignedTransport(server, { key }), new SignedTransport(client, { key }));
await Promise.all([server.close(), client.close()]);
