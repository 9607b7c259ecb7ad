// Down-scoped sessions: a password grant with `scope` naming permissions gets tokens granting
// only those (RFC 6749 §3.3: the answer carries the granted `scope`). The user is an admin, so
// holds every permission through its roles.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  base, claimsOf, clientA, firstParty, introspect, noCredentials, passwordGrant, recordingFetch, refreshGrant,
  refusal, timeout,
} from '../lib/common.mjs';

const get = (path, token) => recordingFetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });

test('a password grant with scope=users:read answers scope users:read and its access token carries only that scope', timeout, async () => {
  const answer = await passwordGrant(firstParty, noCredentials, { scope: 'users:read' });
  assert.equal(answer.scope, 'users:read', 'the token response names the granted scope');
  assert.equal(claimsOf(answer.access_token).scope, 'users:read', 'the access token carries scope');
});

test('the down-scoped token reaches GET /admin/users (users:read) and is refused 403 at GET /admin/roles (roles:read)', timeout, async () => {
  const { access_token } = await passwordGrant(firstParty, noCredentials, { scope: 'users:read' });
  assert.equal((await get('/admin/users', access_token)).status, 200);
  const refused = await get('/admin/roles', access_token);
  assert.equal(refused.status, 403, 'roles:read is outside the scope');
  assert.equal((await refused.json()).error, 'insufficient_permissions');
});

test('a refresh of a down-scoped session keeps its scope and cannot widen it (400 invalid_scope)', timeout, async () => {
  const pair = await passwordGrant(firstParty, noCredentials, { scope: 'users:read' });
  const refused = await refusal(() => refreshGrant(firstParty, noCredentials, pair.refresh_token, { scope: 'users:read users:write' }));
  assert.equal(refused.status, 400);
  assert.equal(refused.error, 'invalid_scope');
  const kept = await refreshGrant(firstParty, noCredentials, pair.refresh_token);
  assert.equal(kept.scope, 'users:read');
  assert.equal(claimsOf(kept.access_token).scope, 'users:read');
});

test('a scope naming no permission is 400 invalid_scope', timeout, async () => {
  const refused = await refusal(() => passwordGrant(firstParty, noCredentials, { scope: 'reports:read' }));
  assert.equal(refused.status, 400);
  assert.equal(refused.error, 'invalid_scope');
});

test('introspection of a down-scoped access token names its scope', timeout, async () => {
  const { access_token } = await passwordGrant(firstParty, noCredentials, { scope: 'users:read' });
  const answer = await introspect(clientA, access_token);
  assert.equal(answer.active, true);
  assert.equal(answer.scope, 'users:read', 'introspection names the scope');
});
