// A relying party nobody here wrote: panva's openid-client (v6), on its defaults, through the
// whole browser sign-in. Discovery; the authorization URL with PKCE S256, state and nonce; the
// hosted sign-in driven by fetch with a cookie jar kept by hand (as a browser would: the page,
// its form's hidden fields, a POST of email and password, the redirects); authorizationCodeGrant
// (it verifies the ID token — RS256 unless the client registered EdDSA — its nonce, at_hash, and
// `iss` of the authorization response, RFC 9207); fetchUserInfo; a refresh with its new ID token;
// single sign-on for a second client (no password form); buildEndSessionUrl with id_token_hint
// and post_logout_redirect_uri (RP-Initiated Logout 1.0), followed; and then the sessions the
// browser session started are gone (their refresh tokens refused).
//
// The clients are made by `run` with the command line: a public client (third-party: a consent
// page, approved here), a first-party confidential one, and a first-party confidential one whose
// ID tokens are EdDSA. Their redirect URIs are on RP_BASE_URL, a loopback port where nothing
// listens: the check reads the redirects and never fetches them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as client from 'openid-client';
import { base, claimsOf, recordingFetch, user } from '../lib/common.mjs';

const rp = process.env.RP_BASE_URL;
const redirectUri = `${rp}/cb`;
const postLogoutRedirectUri = `${rp}/signed-out`;
const clients = {
  public: { id: process.env.OIDC_PUBLIC_ID, auth: () => client.None() },
  confidential: {
    id: process.env.OIDC_CONFIDENTIAL_ID,
    auth: () => client.ClientSecretBasic(process.env.OIDC_CONFIDENTIAL_SECRET),
  },
  eddsa: {
    id: process.env.OIDC_EDDSA_ID,
    auth: () => client.ClientSecretPost(process.env.OIDC_EDDSA_SECRET),
    metadata: { id_token_signed_response_alg: 'EdDSA' },
  },
};
const timeout = { timeout: 30_000 };

/** openid-client's Configuration for `which`, by discovery of the issuer. */
async function configure(which) {
  const { id, auth, metadata = {} } = clients[which];
  assert.ok(id, `run created the ${which} client with the command line`);
  const config = await client.discovery(new URL(base), id, metadata, auth(), {
    execute: [client.allowInsecureRequests],
  });
  config[client.customFetch] = recordingFetch;
  return config;
}

/** A browser: fetch with a cookie jar and no automatic redirects. */
class Browser {
  jar = new Map();

  async request(url, init = {}) {
    const headers = new Headers(init.headers);
    if (this.jar.size > 0) headers.set('cookie', [...this.jar].map(([k, v]) => `${k}=${v}`).join('; '));
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';').map((part) => part.trim());
      const at = pair.indexOf('=');
      const [name, value] = [pair.slice(0, at), pair.slice(at + 1)];
      const gone = attributes.some((a) => /^max-age=0$/i.test(a) || (/^expires=/i.test(a) && Date.parse(a.slice(8)) < Date.now()));
      if (gone) this.jar.delete(name);
      else this.jar.set(name, value);
    }
    return response;
  }

  /** Follows redirects from `url` until one leaves for the relying party (`{ left: URL }`) or a
   * page is shown (`{ page, url, status }`). */
  async follow(url, init) {
    let current = new URL(url);
    let response = await this.request(current, init);
    for (let hops = 0; hops < 10; hops++) {
      if (![301, 302, 303, 307].includes(response.status)) {
        return { page: await response.text(), url: current, status: response.status };
      }
      const next = new URL(response.headers.get('location'), current);
      if (next.origin === rp) return { left: next };
      current = next;
      response = await this.request(current);
    }
    throw new Error('too many redirects');
  }

  /** Posts the page's form with its hidden fields plus `fields`, and follows. */
  async submit(page, pageUrl, fields) {
    const form = parseForm(page);
    const body = new URLSearchParams({ ...form.fields, ...fields });
    return this.follow(new URL(form.action, pageUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
  }
}

const entities = { '&amp;': '&', '&#38;': '&', '&quot;': '"', '&#34;': '"', '&#39;': "'", '&lt;': '<', '&#60;': '<', '&gt;': '>', '&#62;': '>' };
const unescape = (text) => text.replace(/&(amp|quot|lt|gt|#\d+);/g, (m) => entities[m] ?? m);

/** The first POST form of `html`: its action and hidden fields (the CSRF token among them). */
function parseForm(html) {
  const form = html.match(/<form[^>]*method="post"[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/i);
  assert.ok(form, `a form in the page: ${html.slice(0, 400)}`);
  const fields = {};
  for (const input of form[2].matchAll(/<input([^>]*)>/gi)) {
    const name = input[1].match(/name="([^"]*)"/)?.[1];
    const type = input[1].match(/type="([^"]*)"/)?.[1];
    if (name && type === 'hidden') fields[name] = unescape(input[1].match(/value="([^"]*)"/)?.[1] ?? '');
  }
  return { action: unescape(form[1]), fields };
}

const hasPasswordForm = (page) => /name="password"/.test(page ?? '');

/** One authorization request of `config` in `browser`; signs in with the password when the
 * sign-in page shows and approves a consent page. Returns the callback URL and the checks. */
async function authorize(config, browser, { expectPassword }) {
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const checks = { pkceCodeVerifier, expectedState: client.randomState(), expectedNonce: client.randomNonce() };
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid email',
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: 'S256',
    state: checks.expectedState,
    nonce: checks.expectedNonce,
  });
  let step = await browser.follow(url);
  assert.equal(hasPasswordForm(step.page), expectPassword, expectPassword ? 'the sign-in page' : 'no password form (SSO)');
  if (hasPasswordForm(step.page)) {
    assert.equal(step.status, 200);
    step = await browser.submit(step.page, step.url, { email: user.email, password: user.password });
  }
  if (step.page && /action="\/consent"/.test(step.page)) {
    step = await browser.submit(step.page, step.url, { decision: 'approve' });
  }
  assert.ok(step.left, `back at the relying party, not ${step.status}: ${step.page?.slice(0, 400)}`);
  assert.equal(step.left.searchParams.get('iss'), base, 'RFC 9207 iss in the authorization response');
  return { callback: step.left, checks };
}

const browser = new Browser();
const state = {};

test('openid-client discovers the issuer and finds the end_session_endpoint', timeout, async () => {
  const config = await configure('public');
  const metadata = config.serverMetadata();
  assert.equal(metadata.issuer, base);
  assert.equal(metadata.end_session_endpoint, `${base}/oauth/logout`);
  assert.ok(metadata.id_token_signing_alg_values_supported.includes('RS256'));
});

test('a public client signs in through the hosted page: authorizationCodeGrant verifies the RS256 ID token, nonce and iss', timeout, async () => {
  const config = await configure('public');
  const { callback, checks } = await authorize(config, browser, { expectPassword: true });
  const tokens = await client.authorizationCodeGrant(config, callback, { ...checks, idTokenExpected: true });
  const claims = tokens.claims();
  assert.equal(claims.iss, base);
  assert.equal(claims.aud, clients.public.id);
  assert.equal(claims.nonce, checks.expectedNonce);
  assert.equal(claims.email, user.email);
  assert.ok(claims.sid && claims.auth_time, 'sid and auth_time');
  assert.equal(JSON.parse(Buffer.from(tokens.id_token.split('.')[0], 'base64url')).alg, 'RS256');
  assert.ok(tokens.refresh_token, 'a refresh token');
  Object.assign(state, { publicTokens: tokens, claims });
});

test('fetchUserInfo answers the ID token subject and email', timeout, async () => {
  const config = await configure('public');
  const info = await client.fetchUserInfo(config, state.publicTokens.access_token, state.claims.sub);
  assert.equal(info.sub, state.claims.sub);
  assert.equal(info.email, user.email);
});

test('refreshTokenGrant answers a new ID token with the original auth_time', timeout, async () => {
  const config = await configure('public');
  const refreshed = await client.refreshTokenGrant(config, state.publicTokens.refresh_token);
  const claims = refreshed.claims();
  assert.ok(claims, 'an ID token at the refresh');
  assert.equal(claims.sub, state.claims.sub);
  assert.equal(claims.auth_time, state.claims.auth_time, 'OpenID Connect Core §12.2');
  assert.notEqual(refreshed.refresh_token, state.publicTokens.refresh_token, 'rotated');
  state.publicRefresh = refreshed.refresh_token;
});

test('a second client signs in with the same browser without the password form (single sign-on)', timeout, async () => {
  const config = await configure('confidential');
  const { callback, checks } = await authorize(config, browser, { expectPassword: false });
  const tokens = await client.authorizationCodeGrant(config, callback, { ...checks, idTokenExpected: true });
  assert.equal(tokens.claims().auth_time, state.claims.auth_time, 'the same sign-in');
  state.confidentialTokens = tokens;
});

test('buildEndSessionUrl with id_token_hint and post_logout_redirect_uri, followed: back at the relying party with state', timeout, async () => {
  const config = await configure('confidential');
  const url = client.buildEndSessionUrl(config, {
    id_token_hint: state.confidentialTokens.id_token,
    post_logout_redirect_uri: postLogoutRedirectUri,
    state: 'after-logout',
  });
  const step = await browser.follow(url);
  assert.ok(step.left, `redirected, not ${step.status}: ${step.page?.slice(0, 400)}`);
  assert.equal(`${step.left.origin}${step.left.pathname}`, postLogoutRedirectUri);
  assert.equal(step.left.searchParams.get('state'), 'after-logout');
});

test('after logout the sessions the browser session started are over: refresh tokens refused, the next sign-in asks for the password', timeout, async () => {
  for (const [which, refreshToken] of [['public', state.publicRefresh], ['confidential', state.confidentialTokens.refresh_token]]) {
    const config = await configure(which);
    await assert.rejects(client.refreshTokenGrant(config, refreshToken), (error) => {
      assert.equal(error.error, 'invalid_grant', `${which}: ${error}`);
      return true;
    });
  }
  const step = await browser.follow(client.buildAuthorizationUrl(await configure('public'), {
    redirect_uri: redirectUri, scope: 'openid', code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
    code_challenge_method: 'S256', state: client.randomState(),
  }));
  assert.ok(hasPasswordForm(step.page), 'signed out: the sign-in page again');
});

test('a client registered with id_token_signed_response_alg EdDSA gets EdDSA ID tokens that openid-client verifies', timeout, async () => {
  const config = await configure('eddsa');
  const { callback, checks } = await authorize(config, new Browser(), { expectPassword: true });
  const tokens = await client.authorizationCodeGrant(config, callback, { ...checks, idTokenExpected: true });
  assert.equal(claimsOf(tokens.id_token).aud, clients.eddsa.id);
  assert.equal(JSON.parse(Buffer.from(tokens.id_token.split('.')[0], 'base64url')).alg, 'EdDSA');
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.equal(refreshed.claims().auth_time, tokens.claims().auth_time);
});
