// bench/http-load: the HTTP client of a benchmark, in a process of its own so that the server's
// process only serves and its CPU time is the server's alone. Forked with an IPC channel; each
// message is a job: N keep-alive connections, each sending its next GET as soon as the last one
// answered, cycling through the job's paths. It answers with every request's latency.
//
//   const load = startHttpLoad(); const { samples, seconds } = await load.run(job); load.close();
import { fork, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';

export interface LoadJob {
  /** e.g. http://127.0.0.1:8779 */
  address: string;
  /** requested in turn: request n asks for paths[n % paths.length] */
  paths: string[];
  headers: Record<string, string>;
  requests: number;
  concurrency: number;
}

export interface LoadResult {
  /** latency of each request, ms, in the order they ended */
  samples: number[];
  /** from the first request sent to the last answered */
  seconds: number;
  /** the responses whose status was not 200, at most 5 of them */
  failures: string[];
}

export interface HttpLoad {
  run(job: LoadJob): Promise<LoadResult>;
  close(): void;
}

/** Forks the load process (tsx included, so it runs from the sources). */
export function startHttpLoad(): HttpLoad {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let pending: { resolve: (r: LoadResult) => void; reject: (e: Error) => void } | undefined;
  child.on('message', (message) => {
    const p = pending;
    pending = undefined;
    p?.resolve(message as LoadResult);
  });
  child.on('exit', (code) => {
    pending?.reject(new Error(`the load process exited (${code})`));
    pending = undefined;
  });
  return {
    run(job) {
      if (pending !== undefined) throw new Error('one job at a time');
      return new Promise((resolve, reject) => {
        pending = { resolve, reject };
        child.send(job);
      });
    },
    close() {
      child.disconnect();
    },
  };
}

async function runJob(job: LoadJob): Promise<LoadResult> {
  const url = new URL(job.address);
  const agent = new Agent({ keepAlive: true, maxSockets: job.concurrency });
  const samples: number[] = [];
  const failures: string[] = [];
  const get = (path: string) =>
    new Promise<number>((resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, path, headers: job.headers, agent }, (res) => {
        res.on('data', () => undefined);
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  let next = 0;
  const began = performance.now();
  await Promise.all(
    Array.from({ length: job.concurrency }, async () => {
      while (next < job.requests) {
        const n = next++;
        const path = job.paths[n % job.paths.length]!;
        const sent = performance.now();
        const status = await get(path);
        samples.push(performance.now() - sent);
        if (status !== 200 && failures.length < 5) failures.push(`${status} ${path}`);
      }
    }),
  );
  const seconds = (performance.now() - began) / 1000;
  agent.destroy();
  return { samples, seconds, failures };
}

// Forked: take jobs until the parent disconnects.
if (process.send !== undefined && process.argv[1] === fileURLToPath(import.meta.url)) {
  process.on('message', (job: LoadJob) => {
    runJob(job).then(
      (result) => process.send!(result),
      (err: unknown) => {
        process.stderr.write(`http-load: ${String(err)}\n`);
        process.exit(1);
      },
    );
  });
}
