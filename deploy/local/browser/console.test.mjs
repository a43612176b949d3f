// Headless-Chromium check of the operator console served by the query API
// under /console/ (issue 14): sign in and out, KPI cards and budget gauge
// colors equal what the API returns, the window picker updates every panel
// and the URL; an owner creates a budget (a bad value is shown next to its
// field) and a key (the secret shown once); a viewer sees no admin buttons
// and is refused by the API anyway; a member acknowledges an alert; every
// page renders without console errors, with a screenshot of each.
//
//   AGENTOPS_QUERY_URL=http://127.0.0.1:18081 AGENTOPS_READ_KEY=... \
//   AGENTOPS_USER_EMAIL=viewer... AGENTOPS_USER_PASSWORD=... \
//   AGENTOPS_OWNER_EMAIL=... AGENTOPS_OWNER_PASSWORD=... \
//   AGENTOPS_MEMBER_EMAIL=... AGENTOPS_MEMBER_PASSWORD=... AGENTOPS_ALERT_ID=... \
//   node --test console.test.mjs
//
// Optional: CHROMIUM_PATH (default /usr/bin/chromium), AGENTOPS_SCREENSHOT_DIR (PNG files).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { consolePages } from './console-pages.mjs';

const BASE = (process.env.AGENTOPS_QUERY_URL || '').replace(/\/+$/, '');
const KEY = process.env.AGENTOPS_READ_KEY || '';
const SHOTS = process.env.AGENTOPS_SCREENSHOT_DIR || '';
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const EMAIL = process.env.AGENTOPS_USER_EMAIL || '';
const PASSWORD = process.env.AGENTOPS_USER_PASSWORD || '';
const OWNER = [process.env.AGENTOPS_OWNER_EMAIL || '', process.env.AGENTOPS_OWNER_PASSWORD || ''];
const MEMBER = [process.env.AGENTOPS_MEMBER_EMAIL || '', process.env.AGENTOPS_MEMBER_PASSWORD || ''];
const VIEWER = [EMAIL, PASSWORD];
const ALERT_ID = process.env.AGENTOPS_ALERT_ID || '';

let browser;
const { signedIn, open } = consolePages(() => browser, BASE, [[404, '/v1/admin/digest']]);
before(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});
after(async () => browser?.close());

async function api(path) {
  const r = await fetch(BASE + path, { headers: { Authorization: `Bearer ${KEY}` } });
  assert.equal(r.status, 200, `GET ${path}: ${r.status}`);
  return r.json();
}

const level = (pct) => (pct === null ? 'unknown' : pct >= 100 ? 'over' : pct >= 80 ? 'warn' : 'ok');

test('the overview shows what the API returns and follows the window', { timeout: 60_000 }, async () => {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  // The first page load asks /v1/auth/me whether a session exists: its 401 is expected.
  page.on('console', (m) => m.type() === 'error' && !/status of 401/.test(m.text()) && errors.push(m.text()));
  await page.goto(`${BASE}/console/`);
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/console-sign-in.png` });
  await page.fill('input[name=email]', EMAIL);
  await page.fill('input[name=password]', PASSWORD);
  await page.click('form[aria-label="sign in"] button[type=submit]');
  await page.waitForSelector('main[data-window="24h"]', { timeout: 15_000 });
  assert.match(await page.textContent('#who-name'), /\(viewer, /);

  const o = await api('/v1/metrics/overview?window=24h');
  const kpi = (name) => page.getAttribute(`[data-kpi="${name}"]`, 'data-value');
  assert.equal(await kpi('runs'), String(o.runs));
  assert.equal(await kpi('errors_last_hour'), String(o.errors_last_hour));
  assert.equal(await kpi('active_agents'), String(o.active_agents));
  assert.equal(Number(await kpi('cost_usd')), o.cost_usd);

  const budgets = (await api('/v1/budgets/status')).budgets;
  assert.ok(budgets.length > 0, 'the test set up budgets');
  for (const b of budgets) {
    const got = await page.getAttribute(`[data-budget="${b.name}"]`, 'data-level');
    assert.equal(got, level(b.percent), `budget ${b.name} at ${b.percent}%`);
  }
  // Sparklines in the runs, spend and errors cards.
  for (const k of ['runs', 'cost_usd', 'errors_last_hour']) {
    assert.ok(await page.$(`[data-kpi="${k}"] [data-spark] canvas`), `no sparkline in ${k}`);
  }
  const top = (await api('/v1/metrics/top?by=cost&window=24h&limit=5')).top;
  const cells = await page.$$eval('#top-cost tbody tr', (trs) => trs.map((tr) => tr.cells[0].textContent));
  assert.deepEqual(cells, top.map((r) => r.agent));
  const failures = (await api('/v1/failures/recent?limit=10')).failures;
  assert.equal(await page.$$eval('#failures tbody tr', (trs) => trs.length), failures.length);
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/console-overview-24h.png`, fullPage: true });

  await page.click('#window button:text("7d")');
  await page.waitForSelector('main[data-window="7d"]', { timeout: 15_000 });
  assert.match(page.url(), /[?&]window=7d/);
  const o7 = await api('/v1/metrics/overview?window=7d');
  assert.equal(await kpi('runs'), String(o7.runs));
  assert.equal(await page.getAttribute('#window button[aria-pressed="true"]', 'aria-pressed'), 'true');
  assert.equal(await page.textContent('#window button[aria-pressed="true"]'), '7d');
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/console-overview-7d.png`, fullPage: true });

  // A link reproduces the view.
  const again = await browser.newPage();
  await again.goto(page.url());
  await again.evaluate((k) => sessionStorage.setItem('agentops.console.key', k), KEY);
  await again.reload();
  await again.waitForSelector('main[data-window="7d"]', { timeout: 15_000 });
  assert.deepEqual(errors, []);

  // Signing out revokes the session: the page asks again, the cookie is dead.
  const cookies = await page.context().cookies();
  assert.ok(cookies.some((c) => c.name === 'agentops_session' && c.httpOnly && c.sameSite === 'Strict'));
  await page.click('#sign-out');
  await page.waitForSelector('form[aria-label="sign in"]', { timeout: 15_000 });
  const stale = cookies.find((c) => c.name === 'agentops_session');
  const r = await fetch(`${BASE}/v1/auth/me`, { headers: { cookie: `agentops_session=${stale.value}` } });
  assert.equal(r.status, 401);
});

test('a wrong password is refused on the form', { timeout: 30_000 }, async () => {
  const page = await browser.newPage();
  await page.goto(`${BASE}/console/`);
  await page.fill('input[name=email]', EMAIL);
  await page.fill('input[name=password]', 'not the password at all');
  await page.click('form[aria-label="sign in"] button[type=submit]');
  await page.waitForSelector('form[aria-label="sign in"] [role=alert]:not(:empty)', { timeout: 15_000 });
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/console-sign-in-refused.png` });
});

test('a wrong key is refused and asked again', { timeout: 30_000 }, async () => {
  const page = await browser.newPage();
  await page.goto(`${BASE}/console/`);
  await page.click('details summary');
  await page.fill('input[name=key]', 'aok_00000000_' + '0'.repeat(64));
  await page.click('form[aria-label="read key"] button[type=submit]');
  await page.waitForSelector('form[aria-label="sign in"] [role=alert]:not(:empty)', { timeout: 15_000 });
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/console-key-refused.png` });
});

test('TV mode fills 1920×1080 without scrollbars or navigation', { timeout: 30_000 }, async () => {
  const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
  await page.goto(`${BASE}/console/?tv=1`);
  await page.evaluate((k) => sessionStorage.setItem('agentops.console.key', k), KEY);
  await page.reload();
  await page.waitForSelector('main[data-window="24h"]', { timeout: 15_000 });
  const m = await page.evaluate(() => ({
    sw: document.documentElement.scrollWidth,
    sh: document.documentElement.scrollHeight,
    w: window.innerWidth,
    h: window.innerHeight,
    nav: getComputedStyle(document.querySelector('header.top')).display,
    cards: document.querySelectorAll('[data-kpi]').length,
    gauges: document.querySelectorAll('[data-budget]').length,
  }));
  assert.ok(m.sw <= m.w && m.sh <= m.h, `scrollbars: content ${m.sw}×${m.sh} in ${m.w}×${m.h}`);
  assert.equal(m.nav, 'none');
  assert.equal(m.cards, 6);
  assert.ok(m.gauges > 0);
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/console-tv-1920x1080.png` });
});

test('an owner creates a budget; a bad value is shown next to its field', { timeout: 60_000 }, async () => {
  const { page, errors } = await signedIn(OWNER);
  assert.match(await page.textContent('#who-name'), /\(owner, /);
  // Client-side navigation through the Admin menu.
  await page.click('nav.menu summary');
  await page.click('nav.menu a[href^="/console/admin/budgets"]');
  await page.waitForSelector('[data-page="budgets"] form[aria-label="new budget"]', { timeout: 15_000 });
  assert.match(page.url(), /\/console\/admin\/budgets/);
  const form = 'form[aria-label="new budget"]';
  await page.fill(`${form} input[name=name]`, 'pw-budget');
  await page.fill(`${form} input[name=limit_usd]`, '-5');
  await page.click(`${form} button[type=submit]`);
  const err = `${form} [data-field="limit_usd"] [data-field-error="limit_usd"]`;
  await page.waitForSelector(err, { timeout: 15_000 });
  assert.match(await page.textContent(err), /above 0/);
  // Only that field is marked, and nothing was created.
  assert.equal(await page.$$eval(`${form} [data-field-error]`, (e) => e.length), 1);
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/console-budget-field-error.png`, fullPage: true });
  await page.fill(`${form} input[name=limit_usd]`, '25');
  await page.fill(`${form} input[name=thresholds]`, '50, 100');
  await page.click(`${form} button[type=submit]`);
  await page.waitForSelector('tr[data-row="pw-budget"]', { timeout: 15_000 });
  assert.equal(await page.$$eval(`${form} [data-field-error]`, (e) => e.length), 0);
  const status = (await api('/v1/budgets/status')).budgets.find((b) => b.name === 'pw-budget');
  assert.ok(status, 'the budget exists in the API');
  assert.equal(status.limit_usd, 25);
  assert.deepEqual(status.thresholds, [50, 100]);
  // Edit it, then delete it (asks first).
  await page.click('button[data-edit="pw-budget"]');
  await page.fill('form[aria-label="edit budget pw-budget"] input[name=limit_usd]', '30');
  await page.click('form[aria-label="edit budget pw-budget"] button[type=submit]');
  await page.waitForFunction(() => !document.querySelector('[data-editing]'), null, { timeout: 15_000 });
  assert.equal((await api('/v1/budgets/status')).budgets.find((b) => b.name === 'pw-budget').limit_usd, 30);
  await page.click('tr[data-row="pw-budget"] .confirm button.danger');
  await page.click('tr[data-row="pw-budget"] [aria-label=confirm] button.danger');
  await page.waitForSelector('tr[data-row="pw-budget"]', { state: 'detached', timeout: 15_000 });
  assert.ok(!(await api('/v1/budgets/status')).budgets.some((b) => b.name === 'pw-budget'));
  // The one refused create (400) is the expected answer.
  assert.deepEqual(errors.filter((e) => !/status of 400 .*\/v1\/admin\/budgets$/.test(e)), []);
});

test('an owner creates a key and sees its secret once', { timeout: 60_000 }, async () => {
  const { page, errors } = await signedIn(OWNER);
  await open(page, '/admin/keys', 'keys');
  const form = 'form[aria-label="new key"]';
  await page.fill(`${form} input[name=name]`, 'pw-key');
  await page.click(`${form} button[type=submit]`);
  await page.waitForSelector('[data-secret-value]', { timeout: 15_000 });
  const secret = (await page.textContent('[data-secret-value]')).trim();
  assert.match(secret, /^aok_/);
  assert.match(await page.textContent('[data-secret]'), /shown this once/);
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/console-key-created.png`, fullPage: true });
  // The key works, with the read scope only.
  const me = await fetch(`${BASE}/v1/auth/me`, { headers: { Authorization: `Bearer ${secret}` } });
  assert.equal(me.status, 200);
  const adm = await fetch(`${BASE}/v1/admin/budgets`, { headers: { Authorization: `Bearer ${secret}` } });
  assert.equal(adm.status, 403);
  // Once: gone after Done and after a reload; the list shows its prefix only.
  await page.click('[data-secret] button:text("Done")');
  assert.equal(await page.$('[data-secret-value]'), null);
  await open(page, '/admin/keys', 'keys');
  assert.equal(await page.$('[data-secret-value]'), null);
  assert.ok(!(await page.content()).includes(secret));
  const prefix = (await fetch(`${BASE}/v1/auth/me`, { headers: { Authorization: `Bearer ${secret}` } }).then((r) => r.json())).key.prefix;
  await page.waitForSelector(`tr[data-key="${prefix}"]`);
  // Revoke it (asks first): the API refuses it after.
  await page.click(`tr[data-key="${prefix}"] .confirm button.danger`);
  await page.click(`tr[data-key="${prefix}"] [aria-label=confirm] button.danger`);
  await page.waitForSelector(`tr[data-key="${prefix}"].muted`, { timeout: 15_000 });
  const gone = await fetch(`${BASE}/v1/auth/me`, { headers: { Authorization: `Bearer ${secret}` } });
  assert.equal(gone.status, 401);
  assert.deepEqual(errors, []);
});

test('a viewer sees no admin actions and the API refuses them anyway', { timeout: 60_000 }, async () => {
  const { page, errors } = await signedIn(VIEWER);
  await open(page, '/admin/budgets', 'budgets');
  assert.equal(await page.$('form[aria-label="new budget"]'), null);
  assert.equal(await page.$('[data-edit]'), null);
  assert.ok((await page.$$('tr[data-row]')).length > 0, 'the viewer still reads the budgets');
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/console-viewer-budgets.png`, fullPage: true });
  for (const [path, name] of [['/admin/keys', 'keys'], ['/admin/rules', 'rules'], ['/admin/channels', 'channels'],
    ['/admin/policies', 'policies'], ['/admin/members', 'members']]) {
    await open(page, path, name);
    assert.match(await page.textContent('[data-cannot]'), /Your role \(viewer\) cannot/, path);
    assert.equal(await page.$('form.api-form'), null, path);
  }
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/console-viewer-keys.png`, fullPage: true });
  await open(page, '/admin/prices', 'prices');
  assert.equal(await page.$('form[aria-label="new price"]'), null);
  assert.equal(await page.$('[data-add-price]'), null);
  await open(page, `/alerts/${encodeURIComponent(ALERT_ID)}`, 'alert');
  assert.equal(await page.$('form[aria-label="acknowledge"]'), null);
  assert.ok(await page.$('[data-cannot]'));
  assert.deepEqual(errors, []);
  // Calling the API anyway, with the session's CSRF token: 403 by role.
  const answers = await page.evaluate(async () => {
    const me = await (await fetch('/v1/auth/me')).json();
    const headers = { 'content-type': 'application/json', 'x-csrf-token': me.csrf_token };
    const out = {};
    for (const [m, p, b] of [['POST', '/v1/admin/budgets', { name: 'x', period: 'day', limit_usd: 1 }],
      ['GET', '/v1/admin/keys'], ['POST', '/v1/admin/agents/a1/pause', {}]]) {
      const r = await fetch(p, { method: m, headers, body: b ? JSON.stringify(b) : undefined });
      out[`${m} ${p}`] = [r.status, (await r.json()).error?.code];
    }
    return out;
  });
  for (const [k, v] of Object.entries(answers)) assert.deepEqual(v, [403, 'forbidden'], k);
});

test('a member acknowledges an alert with a note', { timeout: 60_000 }, async () => {
  const { page, errors } = await signedIn(MEMBER);
  await page.click('nav.menu a[href^="/console/alerts"]');
  await page.waitForSelector(`tr[data-alert="${ALERT_ID}"][data-state="firing"]`, { timeout: 15_000 });
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/console-alerts.png`, fullPage: true });
  await page.click(`tr[data-alert="${ALERT_ID}"] a`);
  await page.waitForSelector('form[aria-label="acknowledge"]', { timeout: 15_000 });
  await page.fill('form[aria-label="acknowledge"] textarea[name=note]', 'on it — pw');
  await page.click('form[aria-label="acknowledge"] button[type=submit]');
  await page.waitForSelector('[data-alert-state="acknowledged"]', { timeout: 15_000 });
  assert.match(await page.textContent('#history'), /on it — pw/);
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/console-alert.png`, fullPage: true });
  const a = await api(`/v1/alerts/${encodeURIComponent(ALERT_ID)}`);
  assert.equal(a.state, 'acknowledged');
  assert.match(a.acked_by, /^user:.*member@/);
  // The acknowledged tab lists it.
  await page.goto(`${BASE}/console/alerts?state=acknowledged`);
  await page.waitForSelector(`tr[data-alert="${ALERT_ID}"][data-state="acknowledged"]`, { timeout: 15_000 });
  assert.deepEqual(errors, []);
});

test('every page renders without console errors (screenshots)', { timeout: 120_000 }, async () => {
  const { page, errors } = await signedIn(OWNER);
  const pages = [['/', 'overview'], ['/runs', 'runs'], ['/agents', 'agents'], ['/cost', 'cost'],
    ['/alerts', 'alerts'], ['/alerts?state=resolved', 'alerts'], [`/alerts/${encodeURIComponent(ALERT_ID)}`, 'alert'],
    ['/admin/keys', 'keys'], ['/admin/budgets', 'budgets'], ['/admin/rules', 'rules'], ['/admin/channels', 'channels'],
    ['/admin/policies', 'policies'], ['/admin/prices', 'prices'], ['/admin/members', 'members'],
    ['/accept-invitation', 'accept-invitation'], ['/no/such/page', 'not-found']];
  for (const [path, name] of pages) {
    // Opened directly: the query API answers index.html for every /console/ path.
    if (name === 'overview') {
      await page.goto(`${BASE}/console${path}`);
      await page.waitForSelector('main[data-window]', { timeout: 15_000 });
    } else {
      await open(page, path, name);
    }
    assert.ok(!(await page.$('main [role=alert]:not(:empty):not(.form-error)')), `an error on ${path}: ${await page.textContent('main')}`);
    const file = path.includes('state=resolved') ? 'alerts-resolved' : name;
    if (SHOTS) await page.screenshot({ path: `${SHOTS}/console-${file}.png`, fullPage: true });
  }
  // The Admin menu open, as an operator sees it.
  await open(page, '/admin/rules', 'rules');
  await page.click('nav.menu summary');
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/console-admin-menu.png` });
  assert.deepEqual(errors, []);
});
