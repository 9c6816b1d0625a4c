import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './coffer-process.js';
import { waitUntil } from './wait.js';

// A real Prometheus (Debian's `prometheus` package, which .ci/run installs) for one test file:
// its own configuration and storage in a temporary directory, on a free loopback port, scraping
// the targets it is given every second. Queries go through its HTTP API, as Grafana's would.

export interface PromSample {
  metric: Record<string, string>;
  /** [unix seconds, value as text] */
  value: [number, string];
}

export interface PrometheusServer {
  /** e.g. http://127.0.0.1:40123 */
  url: string;
  /** an instant PromQL query through /api/v1/query */
  query(promql: string): Promise<PromSample[]>;
  /** everything it printed, for failure messages */
  output(): string;
  stop(): Promise<void>;
}

export async function startPrometheus(targets: string[], job = 'coffer'): Promise<PrometheusServer> {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-prometheus-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = join(dir, 'prometheus.yml');
  // JSON is YAML: no YAML writer needed
  await writeFile(
    config,
    JSON.stringify({
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      scrape_configs: [{ job_name: job, static_configs: [{ targets }] }],
    }),
  );
  const child: ChildProcess = spawn(
    '/usr/bin/prometheus',
    [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let text = '';
  child.stdout!.on('data', (c: Buffer) => (text += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (text += c.toString()));
  const exited = once(child, 'exit');
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitUntil(
      'Prometheus ready',
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}):\n${text}`);
        const res = await fetch(`${url}/-/ready`).catch(() => undefined);
        return res?.status === 200 ? true : undefined;
      },
      60_000,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    output: () => text,
    async query(promql) {
      const res = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: promql })}`);
      const body = (await res.json()) as { status: string; data?: { resultType: string; result: PromSample[] }; error?: string };
      if (body.status !== 'success' || body.data?.resultType !== 'vector') throw new Error(`query ${promql}: ${JSON.stringify(body)}`);
      return body.data.result;
    },
    stop,
  };
}
