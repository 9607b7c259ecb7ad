// Drives GET /docs in headless Chromium like a person would: Authorize with the OAuth2 password
// flow, expand GET /users/me, "Try it out", "Execute", and check that the response is 200 with
// the account's email. Any request that leaves the server's origin fails the check (it is
// aborted, so the check also holds with the network off). Run through ./run, which starts the
// server; by hand: BASE_URL=http://127.0.0.1:8000 EMAIL=... PASSWORD=... node check.mjs
import { chromium } from 'playwright-core';

const base = new URL(process.env.BASE_URL ?? 'http://127.0.0.1:8000');
const email = process.env.EMAIL ?? 'docs-check@example.com';
const password = process.env.PASSWORD ?? 'correct horse battery';
const screenshot = process.env.SCREENSHOT ?? new URL('./screenshot.png', import.meta.url).pathname;
const timeout = 15_000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});

const problems = [];
const external = [];
const requests = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
  page.setDefaultTimeout(timeout);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  await page.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.origin !== base.origin && url.protocol !== 'data:') {
      external.push(url.href);
      return route.abort('blockedbyclient');
    }
    requests.push(`${route.request().method()} ${url.pathname}`);
    return route.continue();
  });

  const response = await page.goto(new URL('/docs', base).href, { waitUntil: 'load' });
  if (response?.status() !== 200) throw new Error(`GET /docs answered ${response?.status()}`);
  await page.locator('.swagger-ui .info .title', { hasText: 'Portcullis' }).waitFor();

  // Authorize: the OAuth2 password flow of the "oauth2" scheme.
  await page.locator('.scheme-container button.authorize').click();
  const modal = page.locator('.dialog-ux .modal-ux');
  await modal.waitFor();
  const oauth = modal.locator('.auth-container', { hasText: 'OAuth2, password' });
  await oauth.locator('#oauth_username').fill(email);
  await oauth.locator('#oauth_password').fill(password);
  const tokenResponse = page.waitForResponse((r) => new URL(r.url()).pathname === '/oauth/token');
  await oauth.locator('button.authorize').click();
  const token = await tokenResponse;
  if (token.status() !== 200) throw new Error(`POST /oauth/token answered ${token.status()}: ${await token.text()}`);
  await oauth.getByText('Authorized', { exact: true }).waitFor();
  await modal.locator('button.btn-done').first().click();
  await modal.waitFor({ state: 'detached' });

  // GET /users/me: expand, "Try it out", "Execute".
  const operation = page.locator('#operations-users-me');
  await operation.locator('.opblock-summary').click();
  await operation.locator('button.try-out__btn').click();
  const meResponse = page.waitForResponse((r) => new URL(r.url()).pathname === '/users/me');
  await operation.locator('button.execute').click();
  const me = await meResponse;
  if (me.request().headers()['authorization']?.startsWith('Bearer ') !== true) {
    throw new Error('GET /users/me was sent without the bearer token');
  }
  const live = operation.locator('.live-responses-table .response');
  await live.locator('.response-col_status', { hasText: '200' }).waitFor();
  await live.locator('.response-col_description', { hasText: email }).waitFor();

  await operation.scrollIntoViewIfNeeded();
  await page.screenshot({ path: screenshot, fullPage: false });
  console.log(`GET /users/me answered 200 with ${email}; screenshot: ${screenshot}`);
} catch (e) {
  problems.push(e.message);
  const pages = browser.contexts().flatMap((c) => c.pages());
  if (pages.length > 0) await pages[0].screenshot({ path: screenshot, fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}

console.log(`requests (all to ${base.origin}):\n  ${requests.join('\n  ')}`);
if (external.length > 0) problems.push(`requests to other origins: ${external.join(', ')}`);
if (problems.length > 0) {
  console.error(`FAILED:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log('docs-check passed');
