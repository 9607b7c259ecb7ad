// Discovery as oauth4webapi does it: the metadata's `issuer` must equal the issuer the client was
// configured with, exactly (RFC 8414 §3.3; OpenID Connect Discovery §4.3). With no
// configuration the issuer is `http://127.0.0.1:<port>`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as oauth from 'oauth4webapi';
import { expectedIssuer, options, timeout } from '../lib/common.mjs';

const issuer = new URL(expectedIssuer);

/** processDiscoveryResponse, its refusal restated with the issuer the document named. */
async function accepted(response) {
  const copy = response.clone();
  try {
    return await oauth.processDiscoveryResponse(issuer, response);
  } catch (err) {
    const named = await copy.json().then((doc) => JSON.stringify(doc.issuer), () => 'no JSON');
    throw new Error(`oauth4webapi refused ${copy.url} (status ${copy.status}, issuer ${named}): ${err.message}`);
  }
}

test(`RFC 8414 discovery (oauth4webapi, algorithm oauth2) accepts the metadata for the issuer ${expectedIssuer}`, timeout, async () => {
  const as = await accepted(await oauth.discoveryRequest(issuer, { ...options, algorithm: 'oauth2' }));
  assert.equal(as.issuer, expectedIssuer, 'the issuer is the URL itself, without a trailing slash');
});

test('OpenID Connect discovery (oauth4webapi default, /.well-known/openid-configuration) accepts the same issuer', timeout, async () => {
  const as = await accepted(await oauth.discoveryRequest(issuer, options));
  assert.equal(as.issuer, expectedIssuer);
});

test('the metadata names the token, revocation and introspection endpoints and the JWKS, and lists none among the token endpoint auth methods', timeout, async () => {
  const response = await oauth.discoveryRequest(issuer, { ...options, algorithm: 'oauth2' });
  const as = await oauth.processDiscoveryResponse(issuer, response).catch(async () => {
    // Judge the fields even when the issuer check above fails.
    return (await fetch(`${expectedIssuer}/.well-known/oauth-authorization-server`)).json();
  });
  for (const field of ['token_endpoint', 'revocation_endpoint', 'introspection_endpoint', 'jwks_uri']) {
    assert.ok(typeof as[field] === 'string' && as[field].startsWith(`${expectedIssuer}/`), `${field}: ${as[field]}`);
  }
  assert.ok(as.token_endpoint_auth_methods_supported?.includes('none'), 'none (public clients) is listed');
  assert.ok(as.grant_types_supported?.includes('client_credentials'));
});
