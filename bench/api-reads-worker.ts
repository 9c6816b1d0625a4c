// bench/api-reads-worker: one API process of `bench/api-reads.ts --workers N`, forked by node:cluster
// as `coffer api --api-workers N` forks its workers: the real API over the bench's SQLite state file,
// listening on the port all workers share. It tells the bench its CPU time when asked.
import { buildApiServer } from '../src/api/index.js';
import { InProcessTransport } from '../src/bus/index.js';
import { silentLogger } from '../src/common/logger.js';
import { openStateStore } from '../src/db/index.js';

const store = await openStateStore(process.env['BENCH_STATE_URL']!, { migrate: false });
const transport = new InProcessTransport();
const app = await buildApiServer({ store, transport, logger: silentLogger(), rateLimitPerMinute: 0 });
await app.listen({ host: '127.0.0.1', port: Number(process.env['BENCH_PORT']) });
process.on('message', (message: unknown) => {
  if (message === 'cpu') process.send!({ cpu: process.cpuUsage() });
  if (message === 'stop') {
    void app
      .close()
      .then(() => transport.close())
      .then(() => store.close())
      .then(() => process.exit(0));
  }
});
process.send!('listening');
