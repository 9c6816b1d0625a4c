import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { LocalDirectoryStorage, MasterKey, newProjectKey, wrapKey, type BackupStorage } from '../../src/backup/index.js';
import type { CreateBackupInput } from '../../src/bus/index.js';
import { CofferError, silentLogger } from '../../src/common/index.js';
import { restoreChain, runBackup, type GuestBackupHost } from '../../src/guest/backup-runner.js';
import { feedRestore } from '../../src/guest/engines/restore-input.js';
import type { BackupAdmin, BackupFacts, BackupRequest, BackupRun } from '../../src/guest/engines/engine.js';
import { LocalProcessRunner } from '../../src/agent/local-process-runner.js';
import { zstdChildren } from '../backup/codec-helpers.js';
import { makeDataDir } from '../support/temp-dir.js';

// The guest's half of a backup, between an engine's tool and the storage: the tool's bytes go
// through the real codec (zstd, AES-256-GCM under the project's key) into a real local-directory
// storage, and every outcome is a report to the conductor. The engine's tool is a stand-in here
// (the engines' own tests run pg_basebackup, mariadb-backup and Redis for real); what this checks
// is what the guest adds: nothing is reported COMPLETED that cannot be read back, and a failure on
// either side leaves no object and a FAILED report with the reason.

type Report = { state: string; bytes?: number; sha256?: string; facts?: Record<string, string>; message?: string; dataBytes?: number };

let dir: Awaited<ReturnType<typeof makeDataDir>>;
let storage: BackupStorage;
let host: GuestBackupHost;
const masterKey = MasterKey.generate();
const projectId = 'project-a';
const wrappedKey = wrapKey(masterKey, newProjectKey(), projectId);

before(async () => {
  dir = await makeDataDir('coffer-backup-runner');
  storage = new LocalDirectoryStorage(dir.path);
  await storage.ensureContainer('backups');
  host = { storage, masterKey };
});

after(async () => {
  await storage.close();
  await dir.remove();
});

/** these runs take backups only */
const notChecked = () => Promise.reject(new Error('no data check in a backup run'));

/** An engine tool that writes `data` and then exits as `exit` says. */
function fakeTool(data: Buffer, exit: { facts: BackupFacts } | { error: string; afterBytes?: number }): BackupAdmin & { killed: boolean } {
  const admin = {
    incremental: false,
    checkData: notChecked,
    killed: false,
    async start({ signal }: { signal: AbortSignal }): Promise<BackupRun> {
      const stream = new PassThrough();
      let settle!: { resolve: (facts: BackupFacts) => void; reject: (err: Error) => void };
      const finished = new Promise<BackupFacts>((resolve, reject) => (settle = { resolve, reject }));
      const fail = (message: string) => {
        admin.killed = true;
        settle.reject(new CofferError('EngineError', message));
      };
      stream.on('close', () => {
        if (!stream.readableEnded) fail('the backup tool was killed');
      });
      signal.addEventListener('abort', () => {
        stream.destroy();
        fail('the backup tool was killed');
      });
      const cut = 'error' in exit ? (exit.afterBytes ?? data.length) : data.length;
      stream.end(data.subarray(0, cut));
      stream.on('end', () => ('error' in exit ? fail(exit.error) : settle.resolve(exit.facts)));
      return { stream, finished };
    },
  };
  return admin;
}

async function backup(admin: BackupAdmin, objectName: string, options: { host?: GuestBackupHost; signal?: AbortSignal } = {}): Promise<Report[]> {
  const reports: Report[] = [];
  const input: CreateBackupInput = { target: { backupId: objectName, container: 'backups', objectName, wrappedKey }, kind: 'full', projectId };
  await runBackup({
    admin,
    host: options.host ?? host,
    input,
    instanceId: 'instance-a',
    dataBytes: 1024,
    conductor: { updateBackup: async (report: Report) => void reports.push(report) } as never,
    progress: () => undefined,
    signal: options.signal ?? new AbortController().signal,
    log: silentLogger(),
  });
  return reports;
}

function link(objectName: string, sha256: string, overrides: { wrappedKey?: string; projectId?: string } = {}) {
  return restoreChain(
    host,
    {
      projectId: overrides.projectId ?? projectId,
      chain: [{ backupId: objectName, container: 'backups', objectName, sha256, wrappedKey: overrides.wrappedKey ?? wrappedKey, kind: 'full', facts: {} }],
    },
    new AbortController().signal,
  )[0]!;
}

test('a backup is COMPLETED with the stored object’s size and checksum, and reads back as the tool wrote it', async () => {
  const data = Buffer.concat([randomBytes(3 << 20), Buffer.alloc(3 << 20, 'coffer backup text ')]);
  const reports = await backup(fakeTool(data, { facts: { 'stop-lsn': '0/3000100' } }), 'ok.zst.enc');
  assert.deepEqual(reports.map((r) => r.state), ['BUILDING', 'COMPLETED']);
  const done = reports.at(-1)!;
  const stored = await storage.head('backups', 'ok.zst.enc');
  assert.equal(done.sha256, stored?.sha256);
  assert.equal(done.bytes, stored?.size);
  assert.deepEqual(done.facts, { 'stop-lsn': '0/3000100' });
  assert.ok(stored!.size < data.length, 'compressed');
  const raw = await readFile(join(dir.path, 'backups', 'ok.zst.enc'));
  assert.equal(raw.indexOf(Buffer.from('coffer backup text')), -1, 'the stored object is not plaintext');
  assert.deepEqual(await buffer(await link('ok.zst.enc', done.sha256!).open()), data);
});

test('a tool that fails after its output is FAILED with its reason, and nothing is stored', async () => {
  const reports = await backup(fakeTool(randomBytes(1 << 20), { error: 'pg_basebackup: error: could not get write-ahead log' }), 'tool-failed');
  assert.deepEqual(reports.map((r) => r.state), ['BUILDING', 'FAILED']);
  assert.match(reports[1]!.message!, /could not get write-ahead log/);
  assert.equal(await storage.head('backups', 'tool-failed'), undefined);
});

test('a storage that fails mid-upload stops the tool; FAILED, and nothing is stored', async () => {
  // a tool still writing when the storage fails: its output never ends by itself. It keeps
  // writing, as a real one would: zstd -T2 may hold a finished block until more input comes, so a
  // tool that wrote once and then stalled might never get a byte to the storage at all.
  const admin = { incremental: false, killed: false } as BackupAdmin & { killed: boolean };
  admin.start = async () => {
    const stream = new Readable({
      read() {
        this.push(randomBytes(256 << 10));
      },
    });
    const finished = new Promise<BackupFacts>((_resolve, reject) =>
      stream.on('close', () => {
        admin.killed = true;
        reject(new CofferError('EngineError', 'the backup tool was killed'));
      }),
    );
    return { stream, finished };
  };
  const failing: BackupStorage = Object.assign(Object.create(storage) as BackupStorage, {
    put: async (_c: string, _n: string, body: Readable) => {
      for await (const _chunk of body) throw new CofferError('BackupStorageUnavailable', 'The backup storage at http://swift:8080 broke off the upload.');
      throw new Error('unreachable');
    },
  });
  const reports = await backup(admin, 'storage-failed', { host: { storage: failing, masterKey } });
  assert.deepEqual(reports.map((r) => r.state), ['BUILDING', 'FAILED']);
  // the storage's reason: the tool died only because the guest stopped it
  assert.match(reports[1]!.message!, /broke off/);
  assert.ok(admin.killed, 'the tool was stopped');
  assert.equal(await storage.head('backups', 'storage-failed'), undefined);
});

test('a backup aborted (its guest closing) is FAILED and leaves nothing', async () => {
  const stop = new AbortController();
  const admin: BackupAdmin = {
    incremental: false,
    checkData: notChecked,
    async start({ signal }) {
      const stream = new PassThrough();
      stream.write(randomBytes(1 << 20));
      const finished = new Promise<BackupFacts>((_resolve, reject) =>
        signal.addEventListener('abort', () => {
          stream.destroy();
          reject(new CofferError('EngineError', 'the backup tool was killed'));
        }),
      );
      setTimeout(() => stop.abort(new CofferError('EngineError', 'The guest stopped (its host is shutting down).')), 50);
      return { stream, finished };
    },
  };
  const reports = await backup(admin, 'aborted', { signal: stop.signal });
  assert.deepEqual(reports.map((r) => r.state), ['BUILDING', 'FAILED']);
  assert.equal(await storage.head('backups', 'aborted'), undefined);
});

test('a restore refuses a corrupted object (checksum) and another project’s key (decryption), before the engine sees a byte', async () => {
  const data = randomBytes(2 << 20);
  const done = (await backup(fakeTool(data, { facts: {} }), 'guarded')).at(-1)!;
  assert.equal(done.state, 'COMPLETED');
  const otherKey = wrapKey(masterKey, newProjectKey(), projectId);
  await assert.rejects(buffer(await link('guarded', done.sha256!, { wrappedKey: otherKey }).open()), { code: 'BackupDecryptionFailed' });
  await assert.rejects(async () => buffer(await link('guarded', done.sha256!, { projectId: 'project-b' }).open()), { code: 'BackupDecryptionFailed' });
  const path = join(dir.path, 'backups', 'guarded');
  const bytes = await readFile(path);
  bytes[bytes.length >> 1]! ^= 0x40;
  await writeFile(path, bytes);
  await assert.rejects(async () => buffer(await link('guarded', done.sha256!).open()), (err: CofferError) => ['ChecksumMismatch', 'BackupDecryptionFailed'].includes(err.code));
});

/** a restoring process as tar or mbstream is one: it reads its stdin whole (into a file here) */
function restoringProcess(path: string) {
  const child = spawn('/bin/sh', ['-c', 'cat > "$1"', 'sh', path], { stdio: ['pipe', 'ignore', 'ignore'] });
  return { stdin: child.stdin, exited: once(child, 'close').then(([code]) => code as number) };
}

test('a link writes the backup into a restoring process as the tool wrote it; a corrupted object fails and ends that process’s input', async () => {
  const data = Buffer.concat([randomBytes(2 << 20), Buffer.alloc(4 << 20, 'coffer backup text ')]);
  const done = (await backup(fakeTool(data, { facts: {} }), 'fed')).at(-1)!;
  assert.equal(done.state, 'COMPLETED');
  const whole = restoringProcess(join(dir.path, 'fed-whole'));
  await feedRestore(link('fed', done.sha256!), whole.stdin);
  assert.equal(await whole.exited, 0);
  assert.deepEqual(await readFile(join(dir.path, 'fed-whole')), data);

  const path = join(dir.path, 'backups', 'fed');
  const bytes = await readFile(path);
  bytes[bytes.length - 100]! ^= 0x40;
  await writeFile(path, bytes);
  const cut = restoringProcess(join(dir.path, 'fed-cut'));
  await assert.rejects(feedRestore(link('fed', done.sha256!), cut.stdin), (err: CofferError) => ['ChecksumMismatch', 'BackupDecryptionFailed'].includes(err.code));
  // its input ended (it does not wait for more), short of the whole
  await cut.exited;
  assert.ok((await readFile(join(dir.path, 'fed-cut'))).length < data.length);
});

test('a restore reports the stored bytes it has read of the whole chain, and a checksum error still reaches the engine’s side', async () => {
  const full = (await backup(fakeTool(randomBytes(3 << 20), { facts: {} }), 'metered-full')).at(-1)!;
  const incremental = (await backup(fakeTool(randomBytes(1 << 20), { facts: {} }), 'metered-incr')).at(-1)!;
  const heard: Array<[number, number]> = [];
  const chain = restoreChain(
    host,
    {
      projectId,
      chain: [
        { backupId: 'metered-full', container: 'backups', objectName: 'metered-full', sha256: full.sha256!, wrappedKey, kind: 'full', facts: {} },
        { backupId: 'metered-incr', container: 'backups', objectName: 'metered-incr', sha256: incremental.sha256!, wrappedKey, kind: 'incremental', facts: {} },
      ],
    },
    new AbortController().signal,
    (read, total) => heard.push([read, total]),
  );
  const total = full.bytes! + incremental.bytes!;
  await buffer(await chain[0]!.open());
  assert.deepEqual(heard.at(-1), [full.bytes, total], 'the first link read whole, of the chain’s stored bytes');
  await buffer(await chain[1]!.open());
  assert.deepEqual(heard.at(-1), [total, total]);
  assert.ok(heard.every(([read], i) => i === 0 || read >= heard[i - 1]![0]), 'the count only grows');

  const path = join(dir.path, 'backups', 'metered-incr');
  const bytes = await readFile(path);
  bytes[bytes.length - 100]! ^= 0x40;
  await writeFile(path, bytes);
  const again = restoreChain(host, { projectId, chain: [{ backupId: 'metered-incr', container: 'backups', objectName: 'metered-incr', sha256: incremental.sha256!, wrappedKey, kind: 'full', facts: {} }] }, new AbortController().signal, () => undefined);
  await assert.rejects(async () => buffer(await again[0]!.open()), (err: CofferError) => ['ChecksumMismatch', 'BackupDecryptionFailed'].includes(err.code));
});

test('a tool that writes nothing for a while is still reported BUILDING, so the backup is not taken for abandoned', async () => {
  // mariadb-backup waiting on a tenant's table lock writes nothing until the lock goes
  const admin: BackupAdmin = {
    incremental: false,
    checkData: notChecked,
    async start() {
      const stream = new PassThrough();
      const finished = new Promise<BackupFacts>((resolve) => stream.on('end', () => resolve({})));
      setTimeout(() => stream.end(randomBytes(1 << 10)), 400);
      return { stream, finished };
    },
  };
  const reports: Report[] = [];
  const input: CreateBackupInput = { target: { backupId: 'silent', container: 'backups', objectName: 'silent', wrappedKey }, kind: 'full', projectId };
  await runBackup({
    admin,
    host,
    input,
    instanceId: 'instance-a',
    dataBytes: 1024,
    conductor: { updateBackup: async (report: Report) => void reports.push(report) } as never,
    progress: () => undefined,
    signal: new AbortController().signal,
    log: silentLogger(),
    keepAliveMs: 50,
  });
  const states = reports.map((r) => r.state);
  assert.equal(states.at(-1), 'COMPLETED');
  const keptAlive = reports.slice(1, -1);
  assert.ok(keptAlive.filter((r) => r.state === 'BUILDING' && r.bytes === 0).length >= 3, `reported while silent: ${JSON.stringify(reports)}`);
  // nothing, until the tool's 1 KB was stored (a loaded machine may send one more beat after it)
  const stored = reports.at(-1)!.bytes;
  assert.ok(keptAlive.every((r) => (r.bytes === 0 || r.bytes === stored) && r.dataBytes === undefined), `keep-alives carry the bytes stored so far: ${JSON.stringify(keptAlive)}`);
});

/**
 * An engine tool whose output nothing watches, as the MySQL family's: a real process that writes
 * `data` (from a file) into the compressor's stdin itself and then exits with `code`.
 */
function directTool(data: Buffer, code: number): BackupAdmin & { tookOutput: boolean } {
  const admin = {
    incremental: false,
    checkData: notChecked,
    tookOutput: false,
    async start(request: BackupRequest): Promise<BackupRun> {
      const path = join(dir.path, `tool-output-${randomBytes(4).toString('hex')}`);
      await writeFile(path, data);
      admin.tookOutput = request.output !== undefined;
      const tool = new LocalProcessRunner(undefined).stream('/bin/sh', ['-c', 'cat "$1"; exit "$2"', 'sh', path, String(code)], {
        timeoutMs: 60_000,
        signal: request.signal,
        ...(request.output === undefined ? {} : { stdout: request.output }),
      });
      tool.stdin.end();
      const finished = tool.exited.then(() => ({ 'tool-exit': '0' }));
      finished.catch(() => undefined);
      return { stream: tool.stdout, finished, wroteToOutput: request.output !== undefined };
    },
  };
  return admin;
}

test('a tool that writes into zstd itself: COMPLETED, and reads back as it wrote', async () => {
  const data = Buffer.concat([randomBytes(2 << 20), Buffer.alloc(3 << 20, 'coffer direct backup ')]);
  const admin = directTool(data, 0);
  const reports = await backup(admin, 'direct.zst.enc');
  assert.ok(admin.tookOutput, 'the runner offered the compressor’s input');
  assert.deepEqual(reports.map((r) => r.state), ['BUILDING', 'COMPLETED']);
  const done = reports.at(-1)!;
  assert.deepEqual(done.facts, { 'tool-exit': '0' });
  assert.ok(done.bytes! < data.length, 'compressed');
  assert.deepEqual(await buffer(await link('direct.zst.enc', done.sha256!).open()), data);
  assert.deepEqual(zstdChildren(), []);
});

test('a tool writing into zstd itself that exits non-zero is FAILED, and nothing is stored', async () => {
  const reports = await backup(directTool(randomBytes(1 << 20), 3), 'direct-failed');
  assert.deepEqual(reports.map((r) => r.state), ['BUILDING', 'FAILED']);
  assert.match(reports[1]!.message!, /exited with code 3/);
  assert.equal(await storage.head('backups', 'direct-failed'), undefined);
  assert.deepEqual(zstdChildren(), []);
});

test('an engine that cannot start its tool is FAILED, and the compressor started for it goes', async () => {
  const admin: BackupAdmin = {
    incremental: false,
    checkData: notChecked,
    start: () => Promise.reject(new CofferError('EngineError', 'the server is not running')),
  };
  const reports = await backup(admin, 'never-started');
  assert.deepEqual(reports.map((r) => r.state), ['BUILDING', 'FAILED']);
  assert.match(reports[1]!.message!, /not running/);
  while (zstdChildren().length > 0) await sleep(20);
});
