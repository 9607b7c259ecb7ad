// What every check file shares: the server under test, its user and clients (from the
// environment `run` sets), the authorization server metadata as oauth4webapi discovers it, and
// a fetch that records every error answer so the error-text check can look at all of them.
//
// The libraries run on their defaults with one exception: oauth4webapi refuses plain `http`
// unless told otherwise (`allowInsecureRequests`), and the issuer under test is the loopback
// `http://127.0.0.1:<port>` the contract's quick start uses.
import { appendFileSync } from 'node:fs';
import * as oauth from 'oauth4webapi';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the checks through conformance-check/run`);
  return value;
}

export const base = required('BASE_URL').replace(/\/+$/, '');
/** The issuer a client is configured with: the base URL itself (RFC 8414 §2, no trailing slash). */
export const expectedIssuer = base;
/** `auth.audience` of the default configuration. */
export const audience = 'portcullis';
/** The rotation grace interval of the default configuration (`auth.reuse_grace`). */
export const reuseGraceSeconds = 10;

export const user = { email: required('USER_EMAIL'), password: required('USER_PASSWORD') };
/** Client A: `tokens:introspect` and `metrics:read`; grants client_credentials, password, refresh_token. */
export const clientA = { client_id: required('CLIENT_A_ID'), client_secret: required('CLIENT_A_SECRET') };
/** The permissions client A was actually created with (fewer when `run` fell back to the v2 form). */
export const clientAPermissions = (process.env.CLIENT_A_PERMISSIONS ?? '').split(' ').filter(Boolean).sort();
/** Client B: `metrics:read` only; grants client_credentials, password, refresh_token. */
export const clientB = { client_id: required('CLIENT_B_ID'), client_secret: required('CLIENT_B_SECRET') };
/** Client C: `metrics:read`, created without --grant-type (so client_credentials alone). */
export const clientC = { client_id: required('CLIENT_C_ID'), client_secret: required('CLIENT_C_SECRET') };
/** `v3` when `run` created the clients with `--grant-type`; `v2` when it had to fall back. */
export const clientsForm = process.env.CLIENTS_FORM ?? 'unknown';

/** The first-party client: the password grant without a registered client's credentials. */
export const firstParty = { client_id: 'portcullis' };
/** Client authentication that sends nothing at all (no `client_id` either), as authlib's default. */
export const noCredentials = async () => {};

export const basic = (client) => oauth.ClientSecretBasic(client.client_secret);

const seenFile = process.env.SEEN_FILE;

/** fetch, recording each 4xx/5xx answer's `error_description` (body and WWW-Authenticate). */
export async function recordingFetch(url, init) {
  const response = await fetch(url, init);
  if (response.status >= 400) {
    const where = `${init?.method ?? 'GET'} ${new URL(url).pathname} -> ${response.status}`;
    const challenge = response.headers.get('www-authenticate');
    const match = challenge?.match(/error_description="((?:[^"\\]|\\.)*)"/);
    if (match) record({ where: `${where} (WWW-Authenticate)`, description: match[1] });
    try {
      const body = await response.clone().json();
      if (typeof body?.error_description === 'string') {
        record({ where: `${where} ${body.error}`, description: body.error_description });
      }
    } catch {
      // Not JSON: the error-shape checks of the Rust tests own that.
    }
  }
  return response;
}

export const seen = [];
function record(entry) {
  seen.push(entry);
  if (seenFile) appendFileSync(seenFile, `${JSON.stringify(entry)}\n`);
}

/** Options for every oauth4webapi call. */
export const options = { [oauth.allowInsecureRequests]: true, [oauth.customFetch]: recordingFetch };

let discovered;
/**
 * The authorization server metadata. Discovery proper is checked in discovery.test.mjs; when it
 * fails here, the other files go on with the raw RFC 8414 document, its `issuer` replaced by
 * the one a client is configured with, so each check fails on its own subject only.
 */
export async function server() {
  discovered ??= (async () => {
    const issuer = new URL(expectedIssuer);
    try {
      const response = await oauth.discoveryRequest(issuer, { ...options, algorithm: 'oauth2' });
      return await oauth.processDiscoveryResponse(issuer, response);
    } catch {
      const raw = await (await recordingFetch(`${base}/.well-known/oauth-authorization-server`)).json().catch(() => ({}));
      return {
        token_endpoint: `${base}/oauth/token`,
        revocation_endpoint: `${base}/oauth/revoke`,
        introspection_endpoint: `${base}/oauth/introspect`,
        jwks_uri: `${base}/.well-known/jwks.json`,
        ...raw,
        issuer: expectedIssuer,
      };
    }
  })();
  return discovered;
}

/** The password grant (RFC 6749 §4.3) for `account` (the admin user), through `client` with `auth`. */
export async function passwordGrant(client, auth, extra = {}, account = user) {
  const as = await server();
  const response = await oauth.genericTokenEndpointRequest(
    as, client, auth, 'password', { username: account.email, password: account.password, ...extra }, options);
  return oauth.processGenericTokenEndpointResponse(as, client, response);
}

/** The refresh grant (RFC 6749 §6). */
export async function refreshGrant(client, auth, refreshToken, extra = {}) {
  const as = await server();
  const response = await oauth.refreshTokenGrantRequest(
    as, client, auth, refreshToken, { ...options, additionalParameters: extra });
  return oauth.processRefreshTokenResponse(as, client, response);
}

/** The client-credentials grant (RFC 6749 §4.4) of `client`. */
export async function clientCredentials(client, parameters = {}) {
  const as = await server();
  const response = await oauth.clientCredentialsGrantRequest(as, client, basic(client), parameters, options);
  return oauth.processClientCredentialsResponse(as, client, response);
}

/** Introspection (RFC 7662) of `token` by `client`. */
export async function introspect(client, token) {
  const as = await server();
  const response = await oauth.introspectionRequest(as, client, basic(client), token, options);
  return oauth.processIntrospectionResponse(as, client, response);
}

/**
 * Runs `action`, which must be refused. Returns `{status, error, description, challenges}` from
 * oauth4webapi's error (a body error, or a WWW-Authenticate challenge, whose body is read here).
 */
export async function refusal(action) {
  let result;
  try {
    result = await action();
  } catch (err) {
    if (err instanceof oauth.ResponseBodyError) {
      return { status: err.status, error: err.error, description: err.error_description };
    }
    if (err instanceof oauth.WWWAuthenticateChallengeError) {
      const body = await err.response.json().catch(() => ({}));
      return { status: err.status, error: body.error, description: body.error_description, challenges: err.cause };
    }
    throw err;
  }
  const fields = result && typeof result === 'object' ? ` with ${Object.keys(result).join(', ')}` : '';
  throw new Error(`expected a refusal, got a success${fields}`);
}

/** The claims of a JWT, unverified (for looking at what a token carries after verification elsewhere). */
export function claimsOf(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

/** Per-test timeout: a hung server fails one check, not the run. */
export const timeout = { timeout: 30_000 };
