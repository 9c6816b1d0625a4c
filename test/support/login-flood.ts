import { request, trove, waitForInstance, type Session } from './api-client.js';

// What a flood of bad logins does to instance creates on the same API process: creates timed
// alone, then with `parallel` clients sending wrong passwords as fast as they are answered.
// Used by test/e2e/login-flood.test.ts and bench/login-flood.ts.

export interface FloodFigures {
  /** milliseconds from POST /instances to ACTIVE and HEALTHY, each create */
  quiet: number[];
  flooded: number[];
  /** bad logins answered during the flooded creates, and how many of them were refused unhashed */
  logins: number;
  refusedBusy: number;
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function timedCreate(session: Session, name: string): Promise<number> {
  const started = performance.now();
  const res = await request<any>('POST', trove(session, '/instances'), {
    token: session.token,
    body: { instance: { name, flavorRef: '1', volume: { size: 1 }, datastore: { type: 'postgresql' } } },
  });
  if (res.status !== 200) throw new Error(`create failed: ${JSON.stringify(res.body)}`);
  const id = res.body.instance.id as string;
  await waitForInstance(session, id, (i) => i?.status === 'ACTIVE' || i?.status === 'ERROR', 300_000);
  const elapsed = performance.now() - started;
  const { instance } = await waitForInstance(session, id, () => true, 1);
  if (instance.status !== 'ACTIVE') throw new Error(`instance failed: ${JSON.stringify(instance.fault)}`);
  await request('DELETE', trove(session, `/instances/${id}`), { token: session.token });
  await waitForInstance(session, id, (_i, status) => status === 404, 120_000);
  return elapsed;
}

async function badLogin(baseUrl: string, i: number): Promise<{ status: number; busy: boolean }> {
  const response = await fetch(`${baseUrl}/identity/v3/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password: `wrong-${i}` } } } },
    }),
  });
  const text = await response.text();
  return { status: response.status, busy: text.includes('Too many logins') };
}

export async function measureLoginFlood(session: Session, options: { runs: number; parallel: number }): Promise<FloodFigures> {
  const figures: FloodFigures = { quiet: [], flooded: [], logins: 0, refusedBusy: 0 };
  // one untimed create first: it pays for loading code paths and making the engine's OS user
  await timedCreate(session, 'flood-warmup');
  for (let i = 0; i < options.runs; i++) figures.quiet.push(await timedCreate(session, `quiet-${i}`));
  let flooding = true;
  const clients = Array.from({ length: options.parallel }, async (_, c) => {
    for (let n = 0; flooding; n++) {
      const { status, busy } = await badLogin(session.baseUrl, c * 1_000_000 + n);
      if (status !== 401) throw new Error(`a bad login got ${status}`);
      figures.logins++;
      if (busy) figures.refusedBusy++;
    }
  });
  try {
    // let the flood fill the queue before the first timed create
    await new Promise((r) => setTimeout(r, 1000));
    for (let i = 0; i < options.runs; i++) figures.flooded.push(await timedCreate(session, `flooded-${i}`));
  } finally {
    flooding = false;
    await Promise.all(clients);
  }
  return figures;
}
