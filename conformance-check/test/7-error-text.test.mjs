// RFC 6749 §5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E (printable ASCII
// without `"` and `\`), so it can travel in a WWW-Authenticate header unchanged. This file
// provokes the usual refusals of each endpoint family, then judges every error_description seen
// by this run: these and those the earlier files recorded in SEEN_FILE.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { base, clientA, recordingFetch, seen, timeout } from '../lib/common.mjs';

const allowed = /^[\x20\x21\x23-\x5B\x5D-\x7E]*$/;
const basicA = `Basic ${Buffer.from(`${clientA.client_id}:${clientA.client_secret}`).toString('base64')}`;
const basicWrong = `Basic ${Buffer.from(`${clientA.client_id}:wrong-secret`).toString('base64')}`;

const form = (path, fields, headers = {}) => recordingFetch(`${base}${path}`, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
  body: new URLSearchParams(fields).toString(),
});
const json = (path, body, headers = {}) => recordingFetch(`${base}${path}`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

/** Requests that must be refused, one per kind of refusal. */
const provocations = [
  () => form('/oauth/token', {}),
  () => form('/oauth/token', { grant_type: 'implicit' }),
  () => form('/oauth/token', { grant_type: 'password', username: 'nobody@example.com', password: 'not the password' }),
  () => form('/oauth/token', { grant_type: 'password', username: 'nobody@example.com' }),
  () => form('/oauth/token', { grant_type: 'refresh_token', refresh_token: 'made-up' }),
  () => form('/oauth/token', { grant_type: 'client_credentials' }),
  () => form('/oauth/token', { grant_type: 'client_credentials' }, { authorization: basicWrong }),
  () => form('/oauth/token', { grant_type: 'client_credentials', scope: 'users:write' }, { authorization: basicA }),
  () => form('/oauth/token', { grant_type: 'client_credentials', scope: 'no-such:permission' }, { authorization: basicA }),
  () => form('/oauth/introspect', { token: 'x' }),
  () => form('/oauth/introspect', {}, { authorization: basicA }),
  () => form('/oauth/revoke', {}),
  () => recordingFetch(`${base}/oauth/token`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' }),
  () => json('/auth/login', { email: 'nobody@example.com', password: 'not the password' }),
  () => json('/auth/login', '{"email":'),
  () => json('/auth/refresh', { refresh_token: 'made-up' }),
  () => json('/auth/register', { email: 'not an email', password: 'long enough password 1' }),
  () => json('/auth/register', { email: 'short@example.com', password: 'short' }),
  () => json('/auth/register', { email: 'common@example.com', password: 'password123' }),
  () => recordingFetch(`${base}/users/me`, { headers: { authorization: 'Bearer not.a.jwt' } }),
  () => recordingFetch(`${base}/users/me`),
  () => recordingFetch(`${base}/no/such/route`),
];

test('every error_description answered by this run uses only the characters of RFC 6749 §5.2', timeout, async () => {
  for (const provoke of provocations) {
    const response = await provoke();
    assert.ok(response.status >= 400, `${response.url} was refused`);
  }
  let all = seen;
  if (process.env.SEEN_FILE) {
    all = readFileSync(process.env.SEEN_FILE, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));
  }
  assert.ok(all.length >= provocations.length, `error descriptions were recorded (${all.length})`);
  const offending = new Map();
  for (const { where, description } of all) {
    if (!allowed.test(description)) offending.set(`${where}: ${JSON.stringify(description)}`, true);
  }
  assert.equal(offending.size, 0,
    `${offending.size} error_description values outside %x20-21 / %x23-5B / %x5D-7E:\n  ${[...offending.keys()].join('\n  ')}`);
});
