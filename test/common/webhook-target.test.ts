import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { test } from 'node:test';
import { WebhookTargetGuard, parseCidrList, type WebhookTargetRules } from '../../src/common/index.js';
import { rejectsWithCode } from '../support/coffer-errors.js';

// Where a webhook may point: the default refusals, an operator's allowed ranges, and Coffer's own
// endpoints, which stay refused whatever the ranges say (a wildcard listener on every local address).

const names: Record<string, string[]> = { 'db.internal': ['192.0.2.50'], 'both.example': ['192.0.2.7', '127.0.0.1'], 'v6.example': ['2001:db8::7'] };
const resolver = async (host: string) => (names[host] ?? []).map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
const guard = (rules: Partial<WebhookTargetRules> = {}) => new WebhookTargetGuard({ instanceCidrs: ['127.77.0.0/16'], controlPlane: [], ...rules }, resolver);

async function refused(g: WebhookTargetGuard, url: string): Promise<void> {
  await rejectsWithCode(g.resolve(url), 'BadRequest');
}

test('by default: loopback, link-local, unspecified and the instance pool are refused, the rest allowed', async () => {
  const g = guard();
  for (const url of [
    'http://127.0.0.1/', 'http://127.5.6.7:8080/', 'http://[::1]/', 'http://169.254.169.254/latest/meta-data', 'http://[fe80::1]/',
    'http://0.0.0.0/', 'http://[::]/', 'http://[::ffff:127.0.0.1]/', 'http://[::ffff:169.254.169.254]/', 'http://127.77.0.12:5432/', 'http://both.example/',
  ]) {
    await refused(g, url);
  }
  const target = await g.resolve('https://v6.example:8443/in?x=1');
  assert.deepEqual({ address: target.address, family: target.family, port: target.port }, { address: '2001:db8::7', family: 6, port: 8443 });
  assert.equal((await g.resolve('http://192.0.2.1/')).port, 80);
  assert.equal((await g.resolve('https://[2001:db8::1]/')).address, '2001:db8::1');
});

test('with allowed ranges only those are reached; the instance pool and unspecified stay refused', async () => {
  const g = guard({ allowedCidrs: ['127.0.0.0/8', '10.20.0.0/16'] });
  assert.equal((await g.resolve('http://127.0.0.1:9000/')).address, '127.0.0.1');
  assert.equal((await g.resolve('http://10.20.3.4/')).address, '10.20.3.4');
  for (const url of ['http://10.21.0.1/', 'http://192.0.2.1/', 'http://127.77.0.12/', 'http://0.0.0.0:9000/', 'http://[::1]/']) await refused(g, url);
});

test("Coffer's own endpoints are refused on their port: by address, by name, and a wildcard listener on every local address", async () => {
  const g = guard({
    allowedCidrs: ['0.0.0.0/1', '128.0.0.0/1'],
    controlPlane: [{ host: '0.0.0.0', port: 8779 }, { host: 'db.internal', port: 3306 }, { host: '192.0.2.60', port: 5672 }],
  });
  await refused(g, 'http://127.0.0.1:8779/');
  await refused(g, 'http://127.9.9.9:8779/');
  const local = Object.values(networkInterfaces()).flatMap((l) => l ?? []).find((i) => i.family === 'IPv4' && !i.internal);
  if (local !== undefined) await refused(g, `http://${local.address}:8779/`);
  await refused(g, 'http://192.0.2.50:3306/');
  await refused(g, 'http://192.0.2.60:5672/');
  await refused(g, 'http://[::ffff:192.0.2.60]:5672/');
  await refused(g, 'http://[::ffff:7f00:1]:8779/');
  const exact = guard({ allowedCidrs: ['127.0.0.0/8'], controlPlane: [{ host: '127.0.0.1', port: 8779 }] });
  await refused(exact, 'http://[::ffff:127.0.0.1]:8779/');
  await refused(exact, 'http://[0:0:0:0:0:ffff:7f00:1]:8779/');
  assert.equal((await exact.resolve('http://[::ffff:127.0.0.1]:8780/')).address, '127.0.0.1', 'judged and reached as the IPv4 address');
  assert.equal((await g.resolve('http://127.9.9.9:8780/')).port, 8780, 'another port of the host is not the API');
  assert.equal((await g.resolve('http://192.0.2.50/')).port, 80);
});

test('the URL itself: http or https, a host, no credentials or fragment, not too long; a name that does not resolve', async () => {
  const g = guard();
  for (const url of ['ftp://192.0.2.1/', 'file:///etc/passwd', 'javascript:alert(1)', '192.0.2.1/x', 'http://u:p@192.0.2.1/', 'http://192.0.2.1/#x', `http://192.0.2.1/${'a'.repeat(2048)}`, 'http://unknown.example/']) {
    await refused(g, url);
  }
});

test('operator ranges are read from text or a list, and a malformed one is refused', () => {
  assert.deepEqual(parseCidrList(' 10.0.0.0/8, fd00::/8 ,'), ['10.0.0.0/8', 'fd00::/8']);
  assert.deepEqual(parseCidrList(['192.0.2.0/24']), ['192.0.2.0/24']);
  for (const bad of ['10.0.0.0', '10.0.0.0/33', 'fd00::/129', 'example.com/8', '10.0.0.0/8/1']) assert.throws(() => parseCidrList(bad), /not a CIDR range/, bad);
});
