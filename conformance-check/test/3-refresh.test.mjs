// The refresh grant (RFC 6749 §6) as oauth4webapi processes it: rotation with reuse detection,
// and refresh tokens bound to the client they were issued to (RFC 6749 §6 and §10.4).
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import {
  base, basic, clientA, clientB, firstParty, noCredentials, passwordGrant, recordingFetch, refreshGrant, refusal,
  reuseGraceSeconds, timeout,
} from '../lib/common.mjs';

test(`the refresh grant rotates, and after the ${reuseGraceSeconds} s grace the spent refresh token is invalid_grant and ends the session`, { timeout: 60_000 }, async () => {
  const first = await passwordGrant(clientA, basic(clientA));
  const second = await refreshGrant(clientA, basic(clientA), first.refresh_token);
  assert.ok(second.refresh_token, 'a new refresh token');
  assert.notEqual(second.refresh_token, first.refresh_token, 'rotated');
  assert.notEqual(second.access_token, first.access_token);
  // The grace interval is wall-clock time on the server with no configuration, so there is no
  // condition to poll: presenting the spent token earlier would be a legitimate replay.
  await sleep((reuseGraceSeconds + 1.5) * 1000);
  const replay = await refusal(() => refreshGrant(clientA, basic(clientA), first.refresh_token));
  assert.equal(replay.status, 400, 'RFC 6749 §5.2: invalid_grant is a 400 at the token endpoint');
  assert.equal(replay.error, 'invalid_grant');
  const successor = await refusal(() => refreshGrant(clientA, basic(clientA), second.refresh_token));
  assert.equal(successor.error, 'invalid_grant', 'the reuse ended the whole session, the newest token too');
});

test('a refresh token of one client presented by another client is invalid_grant and stays usable by its own client', timeout, async () => {
  const pair = await passwordGrant(clientA, basic(clientA));
  const refused = await refusal(() => refreshGrant(clientB, basic(clientB), pair.refresh_token));
  assert.equal(refused.status, 400);
  assert.equal(refused.error, 'invalid_grant');
  const own = await refreshGrant(clientA, basic(clientA), pair.refresh_token);
  assert.ok(own.refresh_token, 'the refusal changed nothing');
});

test("a confidential client's refresh token presented without client credentials is invalid_grant", timeout, async () => {
  const pair = await passwordGrant(clientA, basic(clientA));
  const refused = await refusal(() => refreshGrant(firstParty, noCredentials, pair.refresh_token));
  assert.equal(refused.status, 400);
  assert.equal(refused.error, 'invalid_grant');
});

test('a first-party (portcullis) refresh token presented by a confidential client is invalid_grant', timeout, async () => {
  const pair = await passwordGrant(firstParty, noCredentials);
  const refused = await refusal(() => refreshGrant(clientA, basic(clientA), pair.refresh_token));
  assert.equal(refused.status, 400);
  assert.equal(refused.error, 'invalid_grant');
  const own = await refreshGrant(firstParty, noCredentials, pair.refresh_token);
  assert.ok(own.refresh_token, 'the refusal changed nothing');
});

test("a confidential client's refresh token at POST /auth/refresh is 401 invalid_grant", timeout, async () => {
  const pair = await passwordGrant(clientA, basic(clientA));
  const response = await recordingFetch(`${base}/auth/refresh`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ refresh_token: pair.refresh_token }),
  });
  assert.equal(response.status, 401, '/auth/refresh takes only first-party and public sessions');
  assert.equal((await response.json()).error, 'invalid_grant');
});
