// The grants as oauth4webapi processes them, and the access tokens as resource servers verify
// them with the strict libraries: oauth4webapi's validateJwtAccessToken (RFC 9068) and jose's
// jwtVerify against the JWKS. RFC 9068 §2.2 requires iss, exp, aud, sub, client_id, iat, jti.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as jose from 'jose';
import * as oauth from 'oauth4webapi';
import {
  audience, basic, claimsOf, clientA, clientAPermissions, clientB, clientC, clientCredentials, clientsForm,
  expectedIssuer, firstParty, introspect, noCredentials, options, passwordGrant, refusal, server, timeout,
} from '../lib/common.mjs';

const rfc9068Claims = ['iss', 'aud', 'exp', 'iat', 'sub', 'client_id', 'jti'];

async function validateAsResourceServer(accessToken) {
  const as = await server();
  const request = new Request(`${expectedIssuer}/users/me`, { headers: { authorization: `Bearer ${accessToken}` } });
  return oauth.validateJwtAccessToken(as, request, audience, options);
}

async function verifyWithJose(accessToken) {
  const as = await server();
  const jwks = jose.createRemoteJWKSet(new URL(as.jwks_uri));
  const { payload, protectedHeader } = await jose.jwtVerify(accessToken, jwks, {
    issuer: expectedIssuer, audience, typ: 'at+jwt', requiredClaims: rfc9068Claims,
  });
  assert.ok(protectedHeader.kid, 'the header names its key (kid)');
  return payload;
}

test('the clients were created with the v3 command line (--grant-type), not the v2 fallback', () => {
  assert.equal(clientsForm, 'v3', 'portcullis client create refused the v3 flags; see the setup lines above');
});

test('the client-credentials grant answers a Bearer token with its scope (processClientCredentialsResponse)', timeout, async () => {
  const answer = await clientCredentials(clientA);
  assert.equal(answer.token_type, 'bearer');
  assert.equal(answer.refresh_token, undefined, 'no refresh token for a client');
  assert.deepEqual(answer.scope.split(' ').sort(), clientAPermissions, 'scope: every permission of the client');
});

test('the password grant through a confidential client holding the password grant answers a token pair for that client', timeout, async () => {
  const answer = await passwordGrant(clientA, basic(clientA));
  assert.equal(answer.token_type, 'bearer');
  assert.ok(answer.refresh_token);
  assert.equal(claimsOf(answer.access_token).client_id, clientA.client_id, 'the access token names the client (client_id)');
});

test('the password grant without client credentials acts as the first-party client portcullis', timeout, async () => {
  const answer = await passwordGrant(firstParty, noCredentials);
  assert.ok(answer.refresh_token);
  assert.equal(claimsOf(answer.access_token).client_id, 'portcullis', 'the access token names client_id portcullis');
});

test('a confidential client without the password grant is refused with unauthorized_client', timeout, async () => {
  // Confidential clients get `password` only when it is in their grant_types, never by default:
  // client C is created without --grant-type, so it holds client_credentials alone.
  const refused = await refusal(() => passwordGrant(clientC, basic(clientC)));
  assert.equal(refused.status, 400);
  assert.equal(refused.error, 'unauthorized_client');
});

test('validateJwtAccessToken (RFC 9068) accepts a user access token obtained through a client', timeout, async () => {
  const { access_token } = await passwordGrant(clientA, basic(clientA));
  const claims = await validateAsResourceServer(access_token);
  assert.equal(claims.client_id, clientA.client_id);
});

test('validateJwtAccessToken (RFC 9068) accepts a first-party user access token', timeout, async () => {
  const { access_token } = await passwordGrant(firstParty, noCredentials);
  const claims = await validateAsResourceServer(access_token);
  assert.equal(claims.client_id, 'portcullis');
});

test('validateJwtAccessToken (RFC 9068) accepts a client-credentials access token', timeout, async () => {
  const { access_token } = await clientCredentials(clientA);
  const claims = await validateAsResourceServer(access_token);
  assert.equal(claims.sub, clientA.client_id);
  assert.equal(claims.client_id, clientA.client_id);
});

test('jose.jwtVerify with the remote JWKS accepts a user access token requiring iss, aud, exp, iat, sub, client_id, jti', timeout, async () => {
  const { access_token } = await passwordGrant(clientA, basic(clientA));
  const payload = await verifyWithJose(access_token);
  assert.equal(typeof payload.aud, 'string', 'aud is a single string');
});

test('jose.jwtVerify with the remote JWKS accepts a client-credentials access token requiring the RFC 9068 claims', timeout, async () => {
  const { access_token } = await clientCredentials(clientA);
  const payload = await verifyWithJose(access_token);
  assert.equal(payload.client_id, clientA.client_id);
});

test('introspection of a user access token answers active, token_type Bearer, token_use access_token and the client_id', timeout, async () => {
  const { access_token } = await passwordGrant(clientA, basic(clientA));
  const answer = await introspect(clientA, access_token);
  assert.equal(answer.active, true);
  assert.equal(answer.token_type, 'Bearer', 'RFC 7662 §2.2: the token type of RFC 6749 §7.1');
  assert.equal(answer.token_use, 'access_token', 'token_use');
  assert.equal(answer.client_id, clientA.client_id, 'client_id');
  assert.equal(answer.iss, expectedIssuer, 'iss');
  for (const field of ['sub', 'exp', 'iat', 'aud', 'sid']) assert.ok(answer[field] !== undefined, `${field} is present`);
});

test('introspection of a refresh token answers active with token_use refresh_token and the client_id', timeout, async () => {
  const { refresh_token } = await passwordGrant(clientA, basic(clientA));
  const answer = await introspect(clientA, refresh_token);
  assert.equal(answer.active, true);
  assert.equal(answer.token_use, 'refresh_token', 'token_use');
  assert.equal(answer.client_id, clientA.client_id, 'client_id');
});

test('introspection of a client-credentials token answers token_type Bearer, the client_id and the scope', timeout, async () => {
  const { access_token } = await clientCredentials(clientA);
  const answer = await introspect(clientA, access_token);
  assert.equal(answer.active, true);
  assert.equal(answer.token_type, 'Bearer', 'token_type');
  assert.equal(answer.token_use, 'access_token', 'token_use');
  assert.equal(answer.client_id, clientA.client_id, 'client_id');
  assert.equal(typeof answer.scope, 'string', 'scope');
});

test('introspection by a client without tokens:introspect is 403 insufficient_permissions', timeout, async () => {
  const { access_token } = await clientCredentials(clientA);
  const refused = await refusal(() => introspect(clientB, access_token));
  assert.equal(refused.status, 403);
  assert.equal(refused.error, 'insufficient_permissions');
});

test('introspection of a made-up token answers active false', timeout, async () => {
  const answer = await introspect(clientA, 'not-a-token-at-all');
  assert.deepEqual(answer, { active: false });
});
