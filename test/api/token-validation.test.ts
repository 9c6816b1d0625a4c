import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { adminSession, memberSession, startHarness, type Harness, type Session } from './api-harness.js';

// Token validation on the read path (issue 14): one statement per request, so that a revocation
// holds at once in every API process sharing the state database, not only in the one that
// revoked. The token's holder (user, project, roles) is read once and reused for a few seconds;
// the statement of a reuse only checks by key that the token is still stored. Two API servers on one SQLite file stand in for two `coffer api` processes:
// they share nothing but the file.

describe('token validation', () => {
  let dir: string;
  let a: Harness;
  let b: Harness;
  let statementsOnB = 0;
  const textsOnB: string[] = [];
  let admin: Session;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coffer-tokens-'));
    const url = `sqlite:${join(dir, 'state.db')}`;
    a = await startHarness({ rateLimitPerMinute: 0 }, url);
    b = await startHarness({ rateLimitPerMinute: 0 }, url, {
      onStatement: (sql) => {
        statementsOnB += 1;
        textsOnB.push(sql);
      },
    });
    admin = await adminSession(a.app);
  });
  after(async () => {
    await a.close();
    await b.close();
    await rm(dir, { recursive: true, force: true });
  });

  const listOn = (h: Harness, s: Session) =>
    h.app.inject({ method: 'GET', url: `/v1.0/${s.projectId}/instances`, headers: { 'x-auth-token': s.token } });

  it('costs one statement: an empty list runs two, the token and the page', async () => {
    const member = await memberSession(a, 'one');
    const before = statementsOnB;
    const res = await listOn(b, member);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(statementsOnB - before, 2);
  });

  it("reads a token's holder once, then only looks its row up by key", async () => {
    const member = await memberSession(a, 'reuse');
    textsOnB.length = 0;
    for (let n = 0; n < 3; n++) assert.equal((await listOn(b, member)).statusCode, 200);
    const tokenStatements = textsOnB.filter((t) => /from "tokens"/.test(t));
    assert.equal(tokenStatements.length, 3, textsOnB.join('\n'));
    assert.match(tokenStatements[0]!, /inner join "role_assignments"/);
    assert.deepEqual(tokenStatements.slice(1), ['select * from "tokens" where "token_hash" = ?', 'select * from "tokens" where "token_hash" = ?']);
  });

  it('a token revoked through one API process is refused by another at once, which had just accepted it', async () => {
    const member = await memberSession(a, 'revoke');
    for (let n = 0; n < 3; n++) assert.equal((await listOn(b, member)).statusCode, 200);
    const revoked = await a.app.inject({
      method: 'DELETE',
      url: '/identity/v3/auth/tokens',
      headers: { 'x-auth-token': admin.token, 'x-subject-token': member.token },
    });
    assert.equal(revoked.statusCode, 204, revoked.body);
    const refused = await listOn(b, member);
    assert.equal(refused.statusCode, 401);
    assert.deepEqual(JSON.parse(refused.body), {
      error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' },
    });
    assert.equal((await listOn(a, member)).statusCode, 401);
  });

  it('a user disabled through one API process loses its tokens on the other at once', async () => {
    const member = await memberSession(a, 'disable');
    assert.equal((await listOn(b, member)).statusCode, 200);
    const disabled = await a.app.inject({
      method: 'PATCH',
      url: `/identity/v3/users/${member.userId}`,
      headers: { 'x-auth-token': admin.token },
      payload: { user: { enabled: false } },
    });
    assert.equal(disabled.statusCode, 200, disabled.body);
    assert.equal((await listOn(b, member)).statusCode, 401);
  });
});
