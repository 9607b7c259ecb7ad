// Revocation (RFC 7009) as oauth4webapi sends it (client_secret_basic), and what introspection
// and the refresh grant say afterwards.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as oauth from 'oauth4webapi';
import {
  basic, clientA, clientCredentials, firstParty, introspect, noCredentials, options, passwordGrant, refreshGrant,
  refusal, server, timeout,
} from '../lib/common.mjs';

async function revoke(client, auth, token) {
  const as = await server();
  const response = await oauth.revocationRequest(as, client, auth, token, options);
  return oauth.processRevocationResponse(response);
}

test('revocation of a refresh token by its client answers 200 and the token no longer refreshes', timeout, async () => {
  const pair = await passwordGrant(clientA, basic(clientA));
  await revoke(clientA, basic(clientA), pair.refresh_token);
  const refused = await refusal(() => refreshGrant(clientA, basic(clientA), pair.refresh_token));
  assert.equal(refused.error, 'invalid_grant');
  assert.equal((await introspect(clientA, pair.refresh_token)).active, false);
});

test('revocation with a wrong client secret is 401 invalid_client', timeout, async () => {
  const pair = await passwordGrant(clientA, basic(clientA));
  const wrong = oauth.ClientSecretBasic(`${clientA.client_secret}-wrong`);
  const refused = await refusal(() => revoke(clientA, wrong, pair.refresh_token));
  assert.equal(refused.status, 401);
  assert.equal(refused.error, 'invalid_client');
  assert.equal((await introspect(clientA, pair.refresh_token)).active, true, 'nothing was revoked');
});

test("revocation without client authentication of a confidential client's token answers 200 and changes nothing", timeout, async () => {
  const pair = await passwordGrant(clientA, basic(clientA));
  await revoke(firstParty, noCredentials, pair.refresh_token);
  assert.equal((await introspect(clientA, pair.refresh_token)).active, true, 'the session is still live');
});

test('revocation of a first-party refresh token without client authentication ends its session', timeout, async () => {
  const pair = await passwordGrant(firstParty, noCredentials);
  await revoke(firstParty, noCredentials, pair.refresh_token);
  assert.equal((await introspect(clientA, pair.refresh_token)).active, false);
  assert.equal((await introspect(clientA, pair.access_token)).active, false);
});

test('revocation by a client of its own client-credentials access token makes it inactive', timeout, async () => {
  const { access_token } = await clientCredentials(clientA);
  await revoke(clientA, basic(clientA), access_token);
  assert.equal((await introspect(clientA, access_token)).active, false, 'introspection calls it inactive');
});
