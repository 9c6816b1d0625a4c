import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createLogger, redactUrl } from '../../src/common/logger.js';

test('passwords never reach a log line, wherever they sit in what is logged', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-logger-'));
  try {
    const file = join(dir, 'coffer.log');
    const logger = createLogger({ name: 'test', file });
    logger.info(
      {
        adminPassword: 'secret-admin-1',
        payload: { adminPassword: 'secret-admin-2', users: [{ name: 'app', password: 'secret-user-1' }] },
        task: { payload: { adminPassword: 'secret-admin-3' } },
        password: 'secret-plain-1',
      },
      'logged with secrets',
    );
    // The file is written asynchronously: wait for the line to land.
    let text = '';
    for (let i = 0; i < 200 && !text.includes('logged with secrets'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      text = await readFile(file, 'utf8').catch(() => '');
    }
    assert.match(text, /logged with secrets/);
    assert.doesNotMatch(text, /secret-/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a URL is shown with its password masked, whatever its scheme', () => {
  assert.equal(redactUrl('amqp://guest:s3cret@127.0.0.1:5672/vhost'), 'amqp://guest:***@127.0.0.1:5672/vhost');
  assert.equal(redactUrl('amqp://127.0.0.1'), 'amqp://127.0.0.1');
});
