// Headless-Chromium check of the console's operating pages (issue 14,
// items 3, 4, 6, 7) against a stack with a known mix (e2e/tests/
// console_browser.rs: 120 runs `ops-run-<i>` over agent-0..5, the even
// ones failed, team tags, one unpriced call): a window change and a custom
// range redraw every panel and land in the URL; a failed run sent to the
// gateway reaches the live ticker within 2 s of its 202 and its row opens
// the run timeline with the API's steps; the runs explorer pages through
// exactly the API's runs over 3 pages while new runs arrive; an admin's
// pause on the agent page is the gateway's next directive, a viewer has no
// pause button; TV mode at 1920×1080 has no scrollbars and redraws the
// ticker at most once a second; a screenshot of every page.
//
//   AGENTOPS_QUERY_URL=... AGENTOPS_GATEWAY_URL=... AGENTOPS_READ_KEY=...
//   AGENTOPS_INGEST_KEY=... AGENTOPS_ADMIN_EMAIL=... AGENTOPS_VIEWER_EMAIL=...
//   AGENTOPS_PASSWORD=... node --test console-ops.test.mjs
//
// Optional: CHROMIUM_PATH (default /usr/bin/chromium), AGENTOPS_SCREENSHOT_DIR (PNG files).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { chromium } from 'playwright-core';
import { consolePages } from './console-pages.mjs';

const BASE = (process.env.AGENTOPS_QUERY_URL || '').replace(/\/+$/, '');
const GATEWAY = (process.env.AGENTOPS_GATEWAY_URL || '').replace(/\/+$/, '');
const KEY = process.env.AGENTOPS_READ_KEY || '';
const INGEST = process.env.AGENTOPS_INGEST_KEY || '';
const SHOTS = process.env.AGENTOPS_SCREENSHOT_DIR || '';
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const PASSWORD = process.env.AGENTOPS_PASSWORD || '';
const ADMIN = [process.env.AGENTOPS_ADMIN_EMAIL || '', PASSWORD];
const VIEWER = [process.env.AGENTOPS_VIEWER_EMAIL || '', PASSWORD];

let browser;
const { signedIn, open } = consolePages(() => browser, BASE);
before(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});
after(async () => browser?.close());

async function api(path) {
  const r = await fetch(BASE + path, { headers: { Authorization: `Bearer ${KEY}` } });
  assert.equal(r.status, 200, `GET ${path}: ${r.status}`);
  return r.json();
}

/** POST events to the gateway; resolves at its 202 with the answer. */
async function ingest(events) {
  const r = await fetch(`${GATEWAY}/v1/events`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${INGEST}`, 'content-type': 'application/json' },
    body: JSON.stringify({ events }),
  });
  const body = await r.json();
  assert.equal(r.status, 202, JSON.stringify(body));
  return body;
}

/** The five events of a run (as e2e/src/events.rs builds them). */
function run(agent, runId, failed, latency) {
  const t = (ms) => new Date(Date.now() + ms).toISOString();
  const base = { agent_id: agent, run_id: runId, workflow_id: 'wf-e2e' };
  const llm = (n) => ({ ...base, event_id: randomUUID(), type: 'llm_call', timestamp: t(n), provider: 'openai', model: 'gpt-4o', input_tokens: 1000, output_tokens: 200, latency_ms: 300, status: 'ok' });
  return [
    { ...base, event_id: randomUUID(), type: 'run_started', timestamp: t(0) },
    llm(1),
    llm(2),
    { agent_id: agent, run_id: runId, event_id: randomUUID(), type: 'tool_call', timestamp: t(2), tool_name: 'search', latency_ms: 40, status: 'ok' },
    failed
      ? { ...base, event_id: randomUUID(), type: 'run_failed', timestamp: t(3), latency_ms: latency, status: 'error', error_type: 'tool_error', error_message: `run ${runId} failed: search tool timed out` }
      : { ...base, event_id: randomUUID(), type: 'run_completed', timestamp: t(3), latency_ms: latency, status: 'ok' },
  ];
}

const shot = async (page, name, fullPage = true) => SHOTS && page.screenshot({ path: `${SHOTS}/console-${name}.png`, fullPage });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** What every overview panel shows for window `w`, against the API. */
async function checkPanels(page, w) {
  const o = await api(`/v1/metrics/overview?window=${w}`);
  const kpi = (name) => page.getAttribute(`[data-kpi="${name}"]`, 'data-value');
  assert.equal(await kpi('runs'), String(o.runs), `runs of ${w}`);
  assert.equal(Number(await kpi('cost_usd')), o.cost_usd, `spend of ${w}`);
  const cmp = await api(`/v1/metrics/compare?window=${w}`);
  const prev = cmp.previous.runs;
  const want = o.runs === prev ? '0.0' : prev === 0 ? 'new' : (((o.runs - prev) / prev) * 100).toFixed(1);
  assert.equal(await page.getAttribute('[data-kpi="runs"] [data-kpi-change]', 'data-kpi-change'), want, `runs change of ${w}`);
  // Spend up is bad.
  if (cmp.previous.cost_usd !== o.cost_usd) {
    assert.equal(await page.getAttribute('[data-kpi="cost_usd"] [data-kpi-change]', 'data-tone'), o.cost_usd > cmp.previous.cost_usd ? 'bad' : 'good');
  }
  const top = (await api(`/v1/metrics/top?by=runs&window=${w}&limit=5`)).top;
  const cells = await page.$$eval('#top-runs tbody tr', (trs) => trs.map((tr) => tr.cells[0].textContent));
  assert.deepEqual(cells, top.map((r) => r.agent), `top agents of ${w}`);
  for (const k of ['runs', 'cost_usd', 'errors_last_hour']) assert.ok(await page.$(`[data-kpi="${k}"] [data-spark] canvas`), `no sparkline in ${k}`);
  assert.ok((await page.$$eval('.charts canvas', (c) => c.length)) >= 2, 'charts drawn');
}

test('a window change and a custom range redraw every panel and land in the URL', { timeout: 90_000 }, async () => {
  const { page, errors } = await signedIn(VIEWER);
  await page.waitForSelector('main[data-window="24h"]');
  await checkPanels(page, '24h');
  await page.waitForSelector('#ticker[data-ticker-mode="live"]', { timeout: 15_000 });
  await shot(page, 'overview');
  await page.click('#window button:text("1h")');
  await page.waitForSelector('main[data-window="1h"]', { timeout: 15_000 });
  assert.match(page.url(), /[?&]window=1h/);
  await checkPanels(page, '1h');
  // A custom range: from three hours ago to now (empty "to").
  await page.click('[data-window-custom]');
  const from = new Date(Date.now() - 3 * 3600_000);
  const p = (n) => String(n).padStart(2, '0');
  const local = `${from.getFullYear()}-${p(from.getMonth() + 1)}-${p(from.getDate())}T${p(from.getHours())}:${p(from.getMinutes())}`;
  await page.fill('form[aria-label="custom range"] input[name=from]', local);
  await page.click('form[aria-label="custom range"] button[type=submit]');
  await page.waitForSelector('main[data-window$="m"]', { timeout: 15_000 });
  const url = new URL(page.url());
  assert.ok(url.searchParams.get('from'), 'from in the URL');
  assert.equal(url.searchParams.get('window'), null);
  assert.equal(new Date(url.searchParams.get('from')).getTime(), new Date(local).getTime());
  const w = await page.getAttribute('main', 'data-window');
  assert.ok(Number.parseInt(w, 10) >= 180 && Number.parseInt(w, 10) <= 182, `window ${w} covers the range`);
  assert.match(await page.textContent('[data-range-note]'), /nearest window/);
  await checkPanels(page, w);
  assert.equal(await page.getAttribute('[data-window-custom]', 'aria-pressed'), 'true');
  await shot(page, 'overview-custom-range');
  // The range follows to the runs explorer (the exact from, sticky in links).
  await page.click('nav.menu a[href^="/console/runs"]');
  await page.waitForSelector('[data-runs-loaded]', { timeout: 15_000 });
  assert.equal(new URL(page.url()).searchParams.get('from'), url.searchParams.get('from'));
  assert.equal(await page.inputValue('form[aria-label="run filters"] input[name=from]'), local);
  assert.deepEqual(errors, []);
});

test('a failed run reaches the ticker within 2 s and opens its timeline', { timeout: 90_000 }, async () => {
  const { page, errors } = await signedIn(VIEWER);
  await page.waitForSelector('#ticker[data-ticker-mode="live"]', { timeout: 15_000 });
  const runId = `ticker-${randomUUID().slice(0, 8)}`;
  const events = run('agent-ticker', runId, true, 1234);
  await ingest(events);
  const at202 = Date.now();
  const row = `#ticker [data-ticker-row][data-type="run.failed"][data-run-id="${runId}"]`;
  await page.waitForSelector(row, { timeout: 10_000 });
  const took = Date.now() - at202;
  assert.ok(took <= 2000, `ticker row ${took} ms after the 202`);
  assert.equal(await page.getAttribute('#ticker', 'data-ticker-mode'), 'live');
  assert.match(await page.textContent(row), /search tool timed out/);
  if (SHOTS) await page.locator('#ticker').screenshot({ path: `${SHOTS}/console-ticker.png` });
  // The projection may trail the live feed: click once the API has the run.
  let want;
  for (let i = 0; i < 40; i++) {
    const r = await fetch(`${BASE}/v1/runs/${runId}`, { headers: { Authorization: `Bearer ${KEY}` } });
    want = r.status === 200 ? await r.json() : null;
    if (want?.events.length === events.length) break;
    await sleep(250);
  }
  assert.equal(want?.events.length, events.length);
  await page.click(`${row} a`);
  await page.waitForSelector(`[data-page="run"] [data-run="${runId}"]`, { timeout: 20_000 });
  assert.match(page.url(), new RegExp(`/console/runs/${runId}`));
  await page.waitForSelector(`[data-run="${runId}"][data-steps="${want.events.length}"]`, { timeout: 15_000 });
  const steps = await page.$$eval('#timeline tr[data-step]', (trs) => trs.map((tr) => tr.dataset.step));
  assert.deepEqual(steps, want.events.map((e) => e.type));
  assert.deepEqual([...steps].sort(), events.map((e) => e.type).sort());
  assert.equal(await page.getAttribute('[data-run]', 'data-status'), 'failed');
  assert.match(await page.textContent('[data-run-error]'), /search tool timed out/);
  assert.ok(await page.$('tr.step-error[data-step="run_failed"]'), 'the failing step is highlighted');
  // A latency bar for each step with a latency, sized from the data.
  const bars = await page.$$eval('.latency-bar', (bs) => bs.map((b) => Number(b.dataset.latency)));
  assert.deepEqual(bars, want.events.filter((e) => e.latency_ms !== null).map((e) => e.latency_ms));
  await page.waitForSelector('#run-agent-control [data-control="none"]', { timeout: 15_000 }); // no directive for this agent
  await shot(page, 'run');
  assert.deepEqual(errors, []);
});

test('the runs explorer pages through exactly the API’s runs while new ones arrive', { timeout: 120_000 }, async () => {
  const { page, errors } = await signedIn(VIEWER);
  const filter = 'status=failed&provider=openai&model=gpt-4o&workflow_id=wf-e2e&tag=team%3Dpay&sort=latency_ms&order=asc';
  // The known mix: the even runs failed; even agents are team=pay, and run i is agent-(i % 6).
  const all = (await api(`/v1/runs?${filter}&limit=500`)).runs.map((r) => r.run_id);
  const known = Array.from({ length: 120 }, (_, i) => i).filter((i) => i % 2 === 0).map((i) => `ops-run-${i}`);
  assert.deepEqual([...all].sort(), [...known].sort(), 'the API answers the known mix');
  assert.equal(all.length, 60);
  await open(page, `/runs?${filter}`, 'runs');
  await page.waitForSelector('[data-runs-loaded][data-page-number="1"]');
  // The filter bar shows the URL's filters.
  assert.equal(await page.inputValue('form[aria-label="run filters"] input[name=tag]'), 'team=pay');
  assert.equal(await page.$eval('form[aria-label="run filters"] select[name=status]', (s) => s.value), 'failed');
  const seen = [];
  const rows = () => page.$$eval('table.runs tbody tr', (trs) => trs.map((tr) => tr.dataset.runId));
  for (let n = 1; n <= 3; n++) {
    await page.waitForSelector(`[data-runs-loaded][data-page-number="${n}"]`, { timeout: 15_000 });
    seen.push(...(await rows()));
    if (n === 1) await shot(page, 'runs');
    // New failed team=pay runs (the fastest of all: first in this order) arrive between pages.
    const late = [...run('agent-0', `late-${n}-${randomUUID().slice(0, 6)}`, true, 1), ...run('agent-2', `late-b-${n}-${randomUUID().slice(0, 6)}`, true, 2)];
    for (const e of late) e.attributes = { team: 'pay' };
    await ingest(late);
    await sleep(300);
    if (n < 3) {
      assert.equal(await page.isDisabled('[data-page-next]'), false, `page ${n} has a next`);
      await page.click('[data-page-next]');
    } else {
      assert.equal(await page.isDisabled('[data-page-next]'), true, 'three pages only');
    }
  }
  assert.deepEqual(seen, all, 'the pages are the API’s answer, in order, none repeated or skipped');
  // Previous goes back through the stack.
  await page.click('[data-page-prev]');
  await page.waitForSelector('[data-runs-loaded][data-page-number="2"]', { timeout: 15_000 });
  assert.deepEqual(await rows(), all.slice(25, 50));
  await page.click('[data-page-prev]');
  await page.waitForSelector('[data-runs-loaded][data-page-number="1"]', { timeout: 15_000 });
  // A fresh first page now starts with the late runs.
  assert.match((await rows())[0], /^late-/);
  // Sorting by a column starts again; the export links carry the filter.
  await page.click('button[data-sort="cost_usd"]');
  await page.waitForFunction(() => new URL(location.href).searchParams.get('sort') === 'cost_usd');
  await page.waitForSelector('[data-runs-loaded*="sort=cost_usd"]', { timeout: 15_000 });
  const csv = await page.getAttribute('[data-export="csv"]', 'href');
  assert.match(csv, /format=csv/);
  assert.match(csv, /tag=team%3Dpay/);
  const text = await page.evaluate(async (u) => (await fetch(u)).text(), csv);
  const api6 = (await api(`/v1/runs?${filter.replace('sort=latency_ms&order=asc', 'sort=cost_usd')}&limit=500`)).runs.length;
  assert.equal(text.trim().split('\n').length - 1, api6);
  // Filtering through the form lands in the URL.
  await page.fill('form[aria-label="run filters"] input[name=agent_id]', 'agent-2');
  await page.click('form[aria-label="run filters"] button[type=submit]');
  await page.waitForSelector('[data-runs-loaded*="agent_id=agent-2"]', { timeout: 15_000 });
  assert.equal(new URL(page.url()).searchParams.get('agent_id'), 'agent-2');
  const a2 = await rows();
  const want = (await api(`/v1/runs?${filter.replace('sort=latency_ms&order=asc', 'sort=cost_usd')}&agent_id=agent-2&limit=25`)).runs.map((r) => r.run_id);
  assert.deepEqual(a2, want);
  assert.deepEqual(errors, []);
});

/** The gateway's directives for `agent` (its answer to a heartbeat). */
async function directives(agent) {
  const body = await ingest([{ event_id: randomUUID(), type: 'heartbeat', agent_id: agent, timestamp: new Date().toISOString() }]);
  return body.directives ?? [];
}

test('an admin pauses an agent from its page: the gateway directs it; a viewer cannot', { timeout: 90_000 }, async () => {
  const { page: viewer, errors: vErrors } = await signedIn(VIEWER);
  await open(viewer, '/agents/agent-2', 'agent');
  await viewer.waitForSelector('[data-agent-status]', { timeout: 15_000 });
  assert.equal(await viewer.$('[data-controls]'), null);
  assert.equal(await viewer.$('[data-control-action]'), null);
  assert.deepEqual(vErrors, []);
  await viewer.close();

  const { page, errors } = await signedIn(ADMIN);
  await page.click('nav.menu a[href^="/console/agents"]');
  await page.waitForSelector('tr[data-agent="agent-2"]', { timeout: 15_000 });
  await shot(page, 'agents');
  await page.click('tr[data-agent="agent-2"] a');
  await page.waitForSelector('[data-page="agent"] [data-agent-status]', { timeout: 15_000 });
  const a = await api('/v1/agents/agent-2?window=24h');
  assert.equal(await page.getAttribute('[data-kpi="runs"]', 'data-value'), String(a.totals.runs));
  assert.ok(await page.$('[data-budget="agent-2 monthly"]'), 'the agent budget has a gauge');
  assert.ok(await page.$('[data-chart="agent-runs"] canvas'));
  assert.deepEqual(await directives('agent-2'), []);
  await page.fill('[data-controls] input[name=reason]', 'pw: runaway spend');
  await page.click('[data-control-action="pause"] button');
  await page.click('[data-control-action="pause"] [aria-label=confirm] button.danger');
  await page.waitForSelector('[data-agent-status="paused"]', { timeout: 15_000 });
  assert.match(await page.textContent('[data-control="pause"]'), /pw: runaway spend/);
  await shot(page, 'agent-paused');
  let d = [];
  for (let i = 0; i < 40 && d.length === 0; i++) {
    d = await directives('agent-2');
    if (!d.length) await sleep(500);
  }
  assert.deepEqual(d, [{ agent_id: 'agent-2', action: 'pause', reason: 'pw: runaway spend' }]);
  // Resume lifts it.
  await page.click('[data-control-action="resume"] button');
  await page.click('[data-control-action="resume"] [aria-label=confirm] button.danger');
  await page.waitForSelector('[data-agent-status]:not([data-agent-status="paused"])', { timeout: 15_000 });
  for (let i = 0; i < 40 && d.length; i++) {
    d = await directives('agent-2');
    if (d.length) await sleep(500);
  }
  assert.deepEqual(d, []);
  await shot(page, 'agent');
  // An admin manages configuration but not keys or roles (owners do).
  await open(page, '/admin/budgets', 'budgets');
  assert.ok(await page.$('form[aria-label="new budget"]'), 'an admin creates budgets');
  for (const [path, name] of [['/admin/keys', 'keys']]) {
    await open(page, path, name);
    assert.match(await page.textContent('[data-cannot]'), /Your role \(admin\) cannot/, path);
  }
  assert.deepEqual(errors, []);
  // The API refuses it anyway (the browser logs the 403 it asked for).
  const keys = await page.evaluate(async () => (await fetch('/v1/admin/keys')).status);
  assert.equal(keys, 403, 'GET /v1/admin/keys as an admin');
});

test('the cost explorer stacks spend by group and links the unpriced model', { timeout: 60_000 }, async () => {
  const { page, errors } = await signedIn(ADMIN);
  for (const group of ['agent', 'tag:team', 'model']) {
    await open(page, `/cost?group=${encodeURIComponent(group)}`, 'cost');
    await page.waitForSelector(`[data-cost-group="${group}"]`, { timeout: 15_000 });
    const c = await api(`/v1/metrics/cost?group=${encodeURIComponent(group)}&window=24h&bucket=15m&limit=10`);
    const keys = await page.$$eval('#cost-groups tbody tr', (trs) => trs.map((tr) => tr.dataset.groupKey));
    assert.deepEqual(keys, c.groups.map((g) => g.key), group);
    assert.ok(await page.$('[data-chart="cost-stacked"] canvas'), `stacked chart for ${group}`);
    assert.equal(await page.getAttribute('[data-unpriced]', 'data-unpriced'), String(c.unpriced.calls));
    await shot(page, `cost-${group.replace(':', '-')}`);
  }
  assert.ok(Number(await page.getAttribute('[data-unpriced]', 'data-unpriced')) >= 1);
  await page.click('[data-add-price-link="mystery-llm"]');
  await page.waitForSelector('form[aria-label="new price"]', { timeout: 15_000 });
  assert.equal(await page.inputValue('form[aria-label="new price"] input[name=model]'), 'mystery-llm');
  assert.equal(await page.inputValue('form[aria-label="new price"] input[name=provider]'), 'acme');
  assert.deepEqual(errors, []);
});

test('TV mode: no scrollbars at 1920×1080, the ticker redraws at most once a second', { timeout: 60_000 }, async () => {
  const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
  await page.goto(`${BASE}/console/?tv=1`);
  await page.evaluate((k) => sessionStorage.setItem('agentops.console.key', k), KEY);
  await page.reload();
  await page.waitForSelector('main[data-window="24h"]', { timeout: 15_000 });
  await page.waitForSelector('#ticker[data-ticker-mode="live"]', { timeout: 15_000 });
  await sleep(1500);
  // Watch the ticker's list: each redraw is one burst of DOM changes.
  await page.evaluate(() => {
    window.__redraws = [];
    new MutationObserver(() => window.__redraws.push(performance.now())).observe(document.querySelector('#ticker .ticks'), { childList: true });
  });
  const batch = [];
  for (let i = 0; i < 12; i++) batch.push(...run(`agent-tv-${i % 3}`, `tv-${i}-${randomUUID().slice(0, 6)}`, i % 3 === 0, 500 + i));
  for (let i = 0; i < 6; i++) {
    await ingest(batch.slice(i * 10, i * 10 + 10));
    await sleep(150);
  }
  await page.waitForFunction(() => document.querySelectorAll('#ticker [data-run-id^="tv-"]').length >= 24, null, { timeout: 15_000 });
  const times = await page.evaluate(() => window.__redraws);
  const bursts = times.filter((t, i) => i === 0 || t - times[i - 1] > 100);
  assert.ok(bursts.length >= 1);
  for (let i = 1; i < bursts.length; i++) assert.ok(bursts[i] - bursts[i - 1] >= 900, `redraws ${Math.round(bursts[i] - bursts[i - 1])} ms apart`);
  const m = await page.evaluate(() => ({
    sw: document.documentElement.scrollWidth,
    sh: document.documentElement.scrollHeight,
    w: window.innerWidth,
    h: window.innerHeight,
    rows: document.querySelectorAll('#ticker [data-ticker-row]').length,
  }));
  assert.ok(m.sw <= m.w && m.sh <= m.h, `scrollbars: content ${m.sw}×${m.sh} in ${m.w}×${m.h}`);
  assert.ok(m.rows >= 24 && m.rows <= 200, `${m.rows} rows`);
  await shot(page, 'tv-ticker-1920x1080', false);
});
