// Headless-Chromium check of the operator console served by the query API
// under /console/ (issue 14): sign in with a read key, KPI cards and budget
// gauge colors equal what the API returns, the window picker updates every
// panel and the URL, screenshots of each state.
//
//   AGENTOPS_QUERY_URL=http://127.0.0.1:18081 AGENTOPS_READ_KEY=... node --test console.test.mjs
//
// Optional: CHROMIUM_PATH (default /usr/bin/chromium), AGENTOPS_SCREENSHOT_DIR (PNG files).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const BASE = (process.env.AGENTOPS_QUERY_URL || '').replace(/\/+$/, '');
const KEY = process.env.AGENTOPS_READ_KEY || '';
const SHOTS = process.env.AGENTOPS_SCREENSHOT_DIR || '';
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const EMAIL = process.env.AGENTOPS_USER_EMAIL || '';
const PASSWORD = process.env.AGENTOPS_USER_PASSWORD || '';

let browser;
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
