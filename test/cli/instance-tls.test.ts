import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import type { InstanceView } from '../../src/cli/api-types.js';
import { connectionInfo } from '../../src/cli/connection-info.js';
import { loggedInFake, type FakeCoffer } from './fake-coffer.js';
import { runCli, tempConfigDir } from './run-cli.js';

// What the CLI makes of Coffer's `tls` in the instance view: the CA certificate printed or
// written to --ca-file, connect lines that verify the server with it, and the TLS requirement
// asked for at create and by update.

const pem = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';
const tls = (port: number, required = false) => ({ required, ca_certificate: pem, expires: '2027-03-02T21:33:47', port });

function instance(type: string, port: number): InstanceView {
  return {
    id: 'i1',
    name: 'db',
    status: 'ACTIVE',
    addresses: [{ address: '127.77.0.9', type: 'private' }],
    datastore: { type, version: 'x' },
    tls: tls(port),
  };
}

describe('connect lines over TLS', () => {
  it('PostgreSQL: sslmode=verify-full with the CA file', () => {
    const info = connectionInfo(instance('postgresql', 5432), 'app', 'sales', '/tmp/ca.crt');
    assert.equal(info?.command, "psql 'host=127.77.0.9 port=5432 user=app dbname=sales sslmode=verify-full sslrootcert=/tmp/ca.crt'");
    assert.equal(info?.url, 'postgresql://app@127.77.0.9:5432/sales?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.crt');
    assert.equal(info?.tls, true);
  });

  it('MariaDB and MySQL: --ssl-ca and their own way to verify the server', () => {
    assert.equal(
      connectionInfo(instance('mariadb', 3306), 'app', undefined, '/tmp/ca.crt')?.command,
      'mysql -h 127.77.0.9 -P 3306 -u app -p --ssl-ca=/tmp/ca.crt --ssl-verify-server-cert',
    );
    assert.equal(
      connectionInfo(instance('mysql', 3306), 'app', 'sales', '/tmp/ca.crt')?.command,
      'mysql -h 127.77.0.9 -P 3306 -u app -p --ssl-ca=/tmp/ca.crt --ssl-mode=VERIFY_IDENTITY sales',
    );
  });

  it("Redis: the TLS port, --tls --cacert, rediss://; a placeholder when the CA file isn't known", () => {
    const info = connectionInfo(instance('redis', 6380), 'app', undefined, '/tmp/ca.crt');
    assert.equal(info?.command, 'redis-cli -h 127.77.0.9 -p 6380 --tls --cacert /tmp/ca.crt --user app --askpass');
    assert.equal(info?.url, 'rediss://app@127.77.0.9:6380');
    assert.equal(connectionInfo(instance('redis', 6380), 'app')?.command, 'redis-cli -h 127.77.0.9 -p 6380 --tls --cacert <ca-file> --user app --askpass');
  });

  it('plaintext lines while the instance has not reported its CA', () => {
    const building = { ...instance('redis', 6380), tls: { required: false, ca_certificate: null, expires: null, port: null } };
    assert.equal(connectionInfo(building, 'app')?.command, 'redis-cli -h 127.77.0.9 -p 6379 --user app --askpass');
  });
});

describe('coffer instance and TLS', () => {
  let fake: FakeCoffer;
  let dir: string;
  let cleanup: () => Promise<void>;

  before(async () => {
    ({ dir, cleanup } = await tempConfigDir());
  });
  after(() => cleanup());
  beforeEach(async () => {
    fake = await loggedInFake(dir);
  });
  afterEach(() => fake.close());

  it('show prints TLS, the connect line and the CA certificate; --ca-file writes it instead', async () => {
    fake.addInstance('secure', undefined, { tls: tls(5432, true) });
    const shown = await runCli(dir, ['instance', 'show', 'secure']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /│ TLS +│ required \(plaintext refused\) +│/);
    assert.match(shown.stdout, /│ Certificate expires +│ 2027-03-02T21:33:47 +│/);
    assert.ok(shown.stdout.endsWith(pem), 'the CA certificate follows the fields');

    const file = join(dir, 'secure-ca.crt');
    const saved = await runCli(dir, ['instance', 'show', 'secure', '--ca-file', file]);
    assert.equal(saved.code, 0, saved.stderr);
    assert.equal(await readFile(file, 'utf8'), pem);
    assert.doesNotMatch(saved.stdout, /BEGIN CERTIFICATE/);
    assert.match(saved.stdout, new RegExp(`│ CA certificate +│ written to ${file.replace(/[.]/g, '\\.')} +│`));
    assert.match(saved.stdout, /sslmode=verify-full sslrootcert=/);
  });

  it('--ca-file says so when the instance has not reported its CA yet', async () => {
    fake.addInstance('young', undefined, { tls: { required: false, ca_certificate: null, expires: null, port: null } });
    const result = await runCli(dir, ['instance', 'show', 'young', '--ca-file', join(dir, 'x.crt')]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /has not reported its CA certificate yet/);
  });

  it('update --require-tls and --allow-plaintext send tls.required and follow the task', async () => {
    const id = fake.addInstance('toggle', undefined, { tls: tls(5432) });
    const on = await runCli(dir, ['instance', 'update', 'toggle', '--require-tls']);
    assert.equal(on.code, 0, on.stderr);
    assert.deepEqual(fake.requestsTo('PUT', `/v1.0/${fake.projectId}/instances/${id}`).at(-1)?.body, { instance: { tls: { required: true } } });
    assert.match(on.stdout, /refuses clients without TLS/);
    const off = await runCli(dir, ['instance', 'update', 'toggle', '--allow-plaintext']);
    assert.equal(off.code, 0, off.stderr);
    assert.deepEqual(fake.requestsTo('PUT', `/v1.0/${fake.projectId}/instances/${id}`).at(-1)?.body, { instance: { tls: { required: false } } });
    const both = await runCli(dir, ['instance', 'update', 'toggle', '--require-tls', '--allowed-cidr', '10.0.0.0/8']);
    assert.equal(both.code, 1);
    assert.match(both.stderr, /one at a time/);
  });

  it('create --require-tls asks for it in the body', async () => {
    const result = await runCli(dir, ['instance', 'create', 'strict', '--datastore', 'postgresql', '--flavor', 'small', '--size', '1', '--require-tls', '--no-wait']);
    assert.equal(result.code, 0, result.stderr);
    const [create] = fake.requestsTo('POST', `/v1.0/${fake.projectId}/instances`);
    assert.deepEqual((create?.body as { instance: { tls?: unknown } }).instance.tls, { required: true });
  });
});
