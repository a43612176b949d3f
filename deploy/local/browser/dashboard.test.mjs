// Headless-Chromium check of the AgentOps dashboard served by the query API at `/`.
//
//   AGENTOPS_QUERY_URL=http://127.0.0.1:18081 AGENTOPS_READ_KEY=... node --test dashboard.test.mjs
//
// Optional: CHROMIUM_PATH (default /usr/bin/chromium), AGENTOPS_SCREENSHOT (PNG path for a
// full-page screenshot of the loaded dashboard).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

const BASE = (process.env.AGENTOPS_QUERY_URL || '').replace(/\/+$/, '');
const KEY = process.env.AGENTOPS_READ_KEY || '';
const SCREENSHOT = process.env.AGENTOPS_SCREENSHOT || '';
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const FAILURE_LIMIT = 20; // must match FAILURE_LIMIT in query-api/dashboard/index.html
const TEST_TIMEOUT = 30_000;
const STEP_TIMEOUT = 15_000;

let browser;

async function getJson(path) {
  const res = await fetch(BASE + path, {
    headers: { Authorization: `Bearer ${KEY}`, Accept: 'application/json' },
    signal: AbortSignal.timeout(10_000),
  });
  const body = await res.text();
  assert.equal(res.status, 200, `GET ${path} returned HTTP ${res.status}: ${body.slice(0, 300)}`);
  try {
    return JSON.parse(body);
  } catch {
    assert.fail(`GET ${path} did not return JSON: ${body.slice(0, 300)}`);
  }
}

// Page state as seen by an operator: the KPI data-values/texts, row count, etc.
function readPage(page) {
  return page.evaluate(() => {
    const kpi = (id) => {
      const el = document.getElementById(id);
      return el ? { value: el.getAttribute('data-value'), text: el.textContent.trim() } : null;
    };
    const q = (sel) => document.querySelector(sel);
    return {
      runs: kpi('kpi-runs'),
      successRate: kpi('kpi-success-rate'),
      spend: kpi('kpi-spend'),
      p95: kpi('kpi-p95'),
      failureRows: document.querySelectorAll('#failures-table tbody tr').length,
      lastUpdated: (q('#last-updated')?.textContent || '').trim(),
      chartNodes: q('#chart')?.childElementCount ?? 0,
      banner: q('#banner') && !q('#banner').hidden ? q('#banner').textContent.trim() : '',
      authMsg: q('#auth') && !q('#auth').hidden ? (q('#auth-msg')?.textContent || 'key form shown').trim() : '',
    };
  });
}

// Returns a list of human-readable mismatches between the API's numbers and the page.
function compare(overview, failures, s) {
  const problems = [];
  const checkKpi = (name, expected, got) => {
    if (!got) return problems.push(`#${name} element is missing`);
    if (!got.text) problems.push(`#${name} shows no text`);
    const raw = got.value;
    if (expected === null || expected === undefined) {
      if (raw !== null && raw !== '') problems.push(`#${name} data-value is ${JSON.stringify(raw)}, API value is null`);
      return;
    }
    const n = raw === null || raw === '' ? NaN : Number(raw);
    if (!(Math.abs(n - expected) <= 1e-9 * Math.max(1, Math.abs(expected)))) {
      problems.push(`#${name} data-value is ${JSON.stringify(raw)} (text ${JSON.stringify(got.text)}), API value is ${expected}`);
    }
  };
  checkKpi('kpi-runs', overview.runs, s.runs);
  checkKpi('kpi-success-rate', overview.success_rate, s.successRate);
  checkKpi('kpi-spend', overview.cost_usd, s.spend);
  checkKpi('kpi-p95', overview.latency_ms?.p95, s.p95);
  const want = failures.failures?.length;
  if (s.failureRows !== want) problems.push(`#failures-table has ${s.failureRows} body rows, API returned ${want} failures`);
  return problems;
}

before(async () => {
  assert.ok(BASE, 'AGENTOPS_QUERY_URL must be set (e.g. http://127.0.0.1:18081)');
  assert.ok(KEY, 'AGENTOPS_READ_KEY must be set to a read API key');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 20_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  if (browser) await browser.close();
});

// Await a page wait; on timeout fail with what the operator would see (banner / key form).
async function waitOrExplain(page, what, promise) {
  try {
    await promise;
  } catch (e) {
    const s = await readPage(page).catch(() => ({}));
    assert.fail(`timed out waiting for ${what}; error banner: ${JSON.stringify(s.banner || '')}, ` +
      `key form: ${JSON.stringify(s.authMsg || '')} (${e.message.split('\n')[0]})`);
  }
}

async function withPage(fn) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);
  page.setDefaultNavigationTimeout(STEP_TIMEOUT);
  const pageErrors = [];
  const foreign = [];
  const origin = new URL(BASE).origin;
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith('data:') && new URL(u).origin !== origin) foreign.push(u);
  });
  try {
    await fn(page);
    assert.deepEqual(pageErrors, [], 'uncaught JavaScript errors on the page');
    assert.deepEqual(foreign, [], 'the page must not load anything from other origins');
  } finally {
    await context.close();
  }
}

test('dashboard shows the overview KPIs and recent failures from the API', { timeout: TEST_TIMEOUT }, async () => {
  await withPage(async (page) => {
    await page.goto(`${BASE}/`, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('#auth-form', { state: 'visible' });
    await page.fill('#auth-key', KEY);
    await page.click('#auth-form button[type=submit]');
    await waitOrExplain(page, '#kpi-runs to get a data-value',
      page.waitForSelector('#kpi-runs[data-value]', { state: 'attached' }));
    await waitOrExplain(page, '#last-updated to be filled (a fully successful refresh)',
      page.waitForFunction(() => document.getElementById('last-updated')?.textContent.trim() !== ''));

    // Data may move between our fetch and the page's; re-read both until they agree (the
    // page refreshes every 5 s), and report the last mismatch if they never do.
    const deadline = Date.now() + 12_000;
    let problems, state, overview;
    for (;;) {
      overview = await getJson('/v1/metrics/overview?window=24h');
      const failures = await getJson(`/v1/failures/recent?limit=${FAILURE_LIMIT}`);
      state = await readPage(page);
      problems = compare(overview, failures, state);
      if (problems.length === 0 || Date.now() > deadline) break;
      await sleep(1000);
    }
    if (SCREENSHOT) await page.screenshot({ path: SCREENSHOT, fullPage: true, timeout: STEP_TIMEOUT });

    assert.deepEqual(problems, [], `dashboard disagrees with the API (overview ${JSON.stringify(overview)})`);
    assert.match(state.lastUpdated, /\d{1,2}:\d{2}:\d{2}/, `#last-updated is ${JSON.stringify(state.lastUpdated)}`);
    assert.ok(state.chartNodes > 0, 'the runs/errors chart (#chart) drew nothing');
    assert.equal(state.banner, '', 'an error banner is shown');
  });
});

test('a rejected read key shows a clear 401 message and the key form', { timeout: TEST_TIMEOUT }, async () => {
  await withPage(async (page) => {
    await page.goto(`${BASE}/`, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('#auth-form', { state: 'visible' });
    await page.fill('#auth-key', 'agentops-browser-test-invalid-key');
    await page.click('#auth-form button[type=submit]');
    await page.waitForSelector('#auth-form', { state: 'visible' });
    await page.waitForFunction(() => /401/.test(document.getElementById('auth-msg')?.textContent || ''));
    const stored = await page.evaluate(() => localStorage.getItem('agentops_read_key'));
    assert.equal(stored, null, 'a rejected key must not stay in localStorage');
  });
});

test('without a key the page asks for one and calls no API', { timeout: TEST_TIMEOUT }, async () => {
  await withPage(async (page) => {
    const apiCalls = [];
    page.on('request', (r) => { if (new URL(r.url()).pathname.startsWith('/v1/')) apiCalls.push(r.url()); });
    await page.goto(`${BASE}/`, { waitUntil: 'load' });
    await page.waitForSelector('#auth-form', { state: 'visible' });
    assert.deepEqual(apiCalls, [], 'no API call should be made without a key');
  });
});

test('a key in the address is not used: removed, not stored, the form asks for it', { timeout: TEST_TIMEOUT }, async () => {
  await withPage(async (page) => {
    const apiCalls = [];
    page.on('request', (r) => { if (new URL(r.url()).pathname.startsWith('/v1/')) apiCalls.push(r.url()); });
    await page.goto(`${BASE}/?key=${encodeURIComponent(KEY)}`, { waitUntil: 'load' });
    await page.waitForSelector('#auth-form', { state: 'visible' });
    await page.waitForFunction(() => /not accepted in the address/.test(document.getElementById('auth-msg')?.textContent || ''));
    assert.deepEqual(apiCalls, [], 'a key from the address must not be used');
    assert.equal(new URL(page.url()).searchParams.get('key'), null, 'the key should be removed from the address bar');
    const stored = await page.evaluate(() => localStorage.getItem('agentops_read_key'));
    assert.equal(stored, null, 'a key from the address must not be stored');
  });
});
