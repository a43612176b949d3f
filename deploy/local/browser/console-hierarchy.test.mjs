// Headless-Chromium check of the console's coding-agent pages (issue 17
// item 3) against a stack with a known mix (e2e/tests/console_browser.rs:
// projects github.com/acme/shop and github.com/acme/billing, machines
// ada-laptop and ci-runner-2, 3 workspaces, 4 sessions; sess-shop-2 has a
// subagent's call, sess-shop-ci-1 failed): the projects and machines lists
// show the API's figures in the API's order (by last seen and by cost); a
// project's breadcrumbs, machines, workspaces and sessions, a machine's, a
// workspace's, and a session's timeline (in order, the subagent step
// marked, "Load more" through the pages) equal the API's; a breadcrumb
// goes back to the project; an admin pauses the project, its session shows
// paused with the reason, then resumes it; a viewer sees no pause button;
// with no data yet, the lists say how to install the collector; the run
// page still draws its timeline (the component the session page shares);
// no console errors on any page; a screenshot of each page.
//
//   AGENTOPS_QUERY_URL=... AGENTOPS_READ_KEY=... AGENTOPS_ADMIN_EMAIL=...
//   AGENTOPS_VIEWER_EMAIL=... AGENTOPS_PASSWORD=... node --test console-hierarchy.test.mjs
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
const PASSWORD = process.env.AGENTOPS_PASSWORD || '';
const ADMIN = [process.env.AGENTOPS_ADMIN_EMAIL || '', PASSWORD];
const VIEWER = [process.env.AGENTOPS_VIEWER_EMAIL || '', PASSWORD];

const SHOP = 'github.com/acme/shop';
const LAPTOP = 'm-laptop-7f3a';
const enc = encodeURIComponent;

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

const shot = async (page, name) => SHOTS && page.screenshot({ path: `${SHOTS}/console-hierarchy-${name}.png`, fullPage: true });
const num = (v) => (v === null || v === undefined ? null : Number(v));
const en = (n) => Math.round(n).toLocaleString('en-US');

/** The figures a row carries (data-*), and its cells' text. */
function rowsOf(page, selector) {
  return page.$$eval(selector, (trs) =>
    trs.map((tr) => ({ ...tr.dataset, cells: [...tr.cells].map((c) => c.textContent.trim()) })),
  );
}

/** Rows' figures against the API's rows (`id` names a row), in order. */
function sameFigures(rows, want, id, what) {
  assert.deepEqual(rows.map((r) => r[id.row]), want.map((w) => w[id.api]), `${what}: the API's rows in its order`);
  rows.forEach((r, i) => {
    const w = want[i];
    for (const [attr, v] of [
      ['events', w.events],
      ['llmCalls', w.llm_calls],
      ['toolCalls', w.tool_calls],
      ['errors', w.errors],
      ['tokens', w.tokens.total],
      ['cost', w.cost_usd],
    ]) {
      assert.equal(num(r[attr]), v, `${what} ${w[id.api]}: ${attr}`);
    }
    // The token total is shown as the API counts it.
    assert.ok(r.cells.includes(en(w.tokens.total)), `${what} ${w[id.api]}: shows ${en(w.tokens.total)} tokens in ${r.cells}`);
  });
}

async function crumbs(page) {
  return page.$$eval('nav.crumbs li', (lis) => lis.map((li) => [li.dataset.crumb, li.textContent.trim()]));
}

/** The totals cards against a node's or session's totals. */
async function sameCards(page, t, what) {
  const kpi = (name) => page.getAttribute(`[data-kpi="${name}"]`, 'data-value');
  assert.equal(num(await kpi('cost_usd')), t.cost_usd, `${what}: spend`);
  assert.equal(num(await kpi('tokens')), t.tokens.total, `${what}: tokens`);
  assert.equal(num(await kpi('llm_calls')), t.llm_calls, `${what}: LLM calls`);
  assert.equal(num(await kpi('errors')), t.errors, `${what}: errors`);
  if (t.sessions !== undefined) assert.equal(num(await kpi('sessions')), t.sessions, `${what}: sessions`);
}

test('the projects and machines lists show the API’s figures, by last seen and by cost', { timeout: 90_000 }, async () => {
  const { page, errors } = await signedIn(VIEWER);
  await page.click('nav.menu a[href^="/console/projects"]');
  await page.waitForSelector('[data-loaded="projects:last_seen"]', { timeout: 15_000 });
  assert.equal(await page.getAttribute('nav.menu a[href^="/console/projects"]', 'aria-current'), 'page');
  const projects = (await api('/v1/projects?sort=last_seen&limit=200')).projects;
  assert.equal(projects.length, 2);
  let rows = await rowsOf(page, 'tr[data-node="project"]');
  sameFigures(rows, projects, { row: 'id', api: 'id' }, 'projects');
  rows.forEach((r, i) => {
    assert.equal(r.status, projects[i].status);
    assert.equal(num(r.sessions), projects[i].sessions);
  });
  await shot(page, 'projects');
  // By cost: the API's order, the choice in the URL. The answer is held
  // back a moment: meanwhile the last-seen rows stay on screen, and the
  // page must not say it shows the cost order until it does.
  let released = false;
  const byCostCall = /\/v1\/projects\?.*sort=cost/;
  await page.route(byCostCall, async (route) => {
    await new Promise((r) => setTimeout(r, 1500));
    released = true;
    await route.continue();
  });
  await page.click('[data-sort="cost"]');
  await page.waitForSelector('[data-loaded="projects:cost"]', { timeout: 15_000 });
  assert.ok(released, 'the cost order was marked loaded before its answer came');
  await page.unroute(byCostCall);
  assert.equal(new URL(page.url()).searchParams.get('sort'), 'cost');
  const byCost = (await api('/v1/projects?sort=cost&limit=200')).projects;
  sameFigures(await rowsOf(page, 'tr[data-node="project"]'), byCost, { row: 'id', api: 'id' }, 'projects by cost');
  // Machines: a tab of the same section.
  await page.click('.tabs a[data-tab="machines"]');
  await page.waitForSelector('[data-loaded^="machines:"]', { timeout: 15_000 });
  const machines = (await api('/v1/machines?sort=last_seen&limit=200')).machines;
  assert.equal(machines.length, 2);
  rows = await rowsOf(page, 'tr[data-node="machine"]');
  sameFigures(rows, machines, { row: 'id', api: 'id' }, 'machines');
  assert.deepEqual(
    await page.$$eval('tr[data-node="machine"] a[data-link="machine"]', (as) => as.map((a) => a.textContent.trim())),
    machines.map((m) => m.name),
    'machines by name',
  );
  await shot(page, 'machines');
  // All sessions, latest first.
  await page.click('.tabs a[data-tab="sessions"]');
  await page.waitForSelector('[data-sessions-loaded]', { timeout: 15_000 });
  const sessions = (await api('/v1/sessions?limit=50')).sessions;
  assert.equal(sessions.length, 4);
  sameFigures(await rowsOf(page, 'tr[data-session]'), sessions, { row: 'session', api: 'session_id' }, 'sessions');
  await shot(page, 'sessions');
  // Two at a time: "Load more" follows the API's cursor to the same list.
  await open(page, '/sessions?limit=2', 'sessions');
  await page.waitForSelector('[data-sessions-loaded="2"]', { timeout: 15_000 });
  await page.click('[data-load-more]');
  await page.waitForSelector('[data-sessions-loaded="4"]', { timeout: 15_000 });
  assert.deepEqual(await page.$$eval('tr[data-session]', (trs) => trs.map((tr) => tr.dataset.session)), sessions.map((x) => x.session_id));
  // Filtered by project and status, in the URL.
  await open(page, `/sessions?project_id=${enc(SHOP)}&status=failed`, 'sessions');
  await page.waitForSelector('[data-sessions-loaded]', { timeout: 15_000 });
  const failed = (await api(`/v1/sessions?project_id=${enc(SHOP)}&status=failed`)).sessions;
  assert.deepEqual(await page.$$eval('tr[data-session]', (trs) => trs.map((tr) => tr.dataset.session)), failed.map((x) => x.session_id));
  assert.deepEqual(failed.map((x) => x.session_id), ['sess-shop-ci-1']);
  assert.deepEqual(errors, []);
});

test('with no coding-agent data yet the lists say how to install the collector', { timeout: 60_000 }, async () => {
  const { page, errors } = await signedIn(VIEWER);
  // This org has data: stand in an empty answer for the lists.
  await page.route(/\/v1\/(projects|machines)\?/, (route) => {
    const kind = new URL(route.request().url()).pathname.split('/').pop();
    return route.fulfill({ json: { [kind]: [] } });
  });
  await open(page, '/projects', 'projects');
  await page.waitForSelector('[data-empty="coding-agents"]', { timeout: 15_000 });
  const text = await page.textContent('[data-empty="coding-agents"]');
  assert.match(text, /agentops-collector install/);
  assert.match(text, /docs\/coding-agents\.md/);
  await shot(page, 'empty');
  assert.deepEqual(errors, []);
});

test('a project, its machine and workspace, and a session’s timeline are the API’s', { timeout: 120_000 }, async () => {
  const { page, errors } = await signedIn(VIEWER);
  await open(page, '/projects', 'projects');
  await page.click(`tr[data-id="${SHOP}"] a[data-link="project"]`);
  await page.waitForSelector('[data-page="project"] [data-scope-status]', { timeout: 15_000 });
  assert.equal(new URL(page.url()).pathname, `/console/projects/${enc(SHOP)}`);
  const p = await api(`/v1/projects/${enc(SHOP)}`);
  assert.deepEqual(await crumbs(page), [['projects', 'Projects'], ['project', SHOP]]);
  assert.equal(await page.getAttribute('[data-scope-status]', 'data-scope-status'), p.project.status);
  await sameCards(page, p.project, 'project');
  const machineRows = await rowsOf(page, '#project-machines tr[data-group="machine"]');
  sameFigures(machineRows, p.machines, { row: 'id', api: 'id' }, 'project machines');
  assert.deepEqual(machineRows.map((r) => num(r.workspaces)), p.machines.map((m) => m.workspaces));
  // Machines by name once the names are known.
  const names = Object.fromEntries((await api('/v1/machines')).machines.map((m) => [m.id, m.name]));
  await page.waitForFunction((n) => document.querySelector('#project-machines a[data-link="machine"]')?.textContent === n, names[p.machines[0].id], { timeout: 15_000 });
  const wsRows = await rowsOf(page, '#project-workspaces tr[data-workspace]');
  sameFigures(wsRows, p.workspaces, { row: 'workspace', api: 'id' }, 'project workspaces');
  assert.deepEqual(wsRows.map((r) => [r.path, r.machine]), p.workspaces.map((w) => [w.path, w.machine_id]));
  assert.equal(p.workspaces.length, 2);
  const sessRows = await rowsOf(page, '#project-sessions tr[data-session]');
  sameFigures(sessRows, p.sessions, { row: 'session', api: 'session_id' }, 'project sessions');
  assert.deepEqual(sessRows.map((r) => r.status), p.sessions.map((s) => s.status));
  assert.equal(p.sessions.length, 3);
  await shot(page, 'project');

  // A session: breadcrumbs, totals, the timeline in order with the subagent's step marked.
  await page.click('#project-sessions tr[data-session="sess-shop-2"] a[data-link="session"]');
  await page.waitForSelector('[data-page="session"] [data-timeline-complete="true"]', { timeout: 15_000 });
  const s = await api('/v1/sessions/sess-shop-2?limit=200');
  assert.equal(s.next_cursor, null);
  assert.deepEqual(await crumbs(page), [...s.breadcrumbs.map((c) => [c.kind, c.label]), ['session', 'sess-shop-2']]);
  assert.deepEqual((await crumbs(page)).map(([, l]) => l), [SHOP, 'ada-laptop', '/home/ada/src/shop', 'sess-shop-2']);
  await sameCards(page, s.session, 'session');
  assert.equal(await page.getAttribute('[data-scope-status]', 'data-scope-status'), s.session.status);
  const steps = await page.$$eval('#timeline tr[data-step]', (trs) => trs.map((tr) => [tr.dataset.eventId, tr.dataset.step, tr.dataset.sidechain === 'true']));
  assert.deepEqual(steps, s.timeline.map((e) => [e.event_id, e.type, e.sidechain]), 'the API’s timeline, in order');
  const sub = s.timeline.filter((e) => e.sidechain);
  assert.equal(sub.length, 1, 'one subagent step');
  assert.match(await page.textContent(`tr[data-event-id="${sub[0].event_id}"]`), /subagent/);
  assert.match(await page.textContent(`tr[data-event-id="${sub[0].event_id}"]`), /claude-haiku-4-5/);
  const bars = await page.$$eval('#timeline .latency-bar', (bs) => bs.map((b) => Number(b.dataset.latency)));
  assert.deepEqual(bars, s.timeline.filter((e) => e.latency_ms !== null).map((e) => e.latency_ms));
  await shot(page, 'session');

  // The same timeline 3 events at a time: "Load more" to the end.
  await open(page, '/sessions/sess-shop-2?limit=3', 'session');
  await page.waitForSelector('[data-timeline-shown="3"][data-timeline-complete="false"]', { timeout: 15_000 });
  for (let i = 0; i < 5; i++) {
    if (await page.$('[data-timeline-complete="true"]')) break;
    const shown = await page.getAttribute('[data-timeline-shown]', 'data-timeline-shown');
    await page.click('[data-load-more]');
    await page.waitForSelector(`[data-timeline-shown]:not([data-timeline-shown="${shown}"])`, { timeout: 15_000 });
  }
  await page.waitForSelector('[data-timeline-complete="true"]');
  const paged = await page.$$eval('#timeline tr[data-step]', (trs) => trs.map((tr) => tr.dataset.eventId));
  assert.deepEqual(paged, s.timeline.map((e) => e.event_id), 'the pages make the whole timeline');

  // The breadcrumb goes back to the project.
  await page.click('nav.crumbs [data-crumb="project"] a');
  await page.waitForSelector('[data-page="project"] [data-scope-status]', { timeout: 15_000 });
  assert.equal(new URL(page.url()).pathname, `/console/projects/${enc(SHOP)}`);

  // Its machine: Machines › name, the projects and workspaces on it.
  await page.click(`#project-machines tr[data-id="${LAPTOP}"] a[data-link="machine"]`);
  await page.waitForSelector('[data-page="machine"] [data-scope-status]', { timeout: 15_000 });
  const m = await api(`/v1/machines/${LAPTOP}`);
  assert.deepEqual(await crumbs(page), [['machines', 'Machines'], ['machine', 'ada-laptop']]);
  await sameCards(page, m.machine, 'machine');
  sameFigures(await rowsOf(page, '#machine-projects tr[data-group="project"]'), m.projects, { row: 'id', api: 'id' }, 'machine projects');
  sameFigures(await rowsOf(page, '#machine-workspaces tr[data-workspace]'), m.workspaces, { row: 'workspace', api: 'id' }, 'machine workspaces');
  sameFigures(await rowsOf(page, '#machine-sessions tr[data-session]'), m.sessions, { row: 'session', api: 'session_id' }, 'machine sessions');
  await shot(page, 'machine');

  // A workspace: project › machine › path.
  await page.click('#machine-workspaces tr[data-workspace="ws-shop-laptop"] a[data-link="workspace"]');
  await page.waitForSelector('[data-page="workspace"] [data-scope-status]', { timeout: 15_000 });
  const w = await api('/v1/workspaces/ws-shop-laptop');
  await page.waitForFunction(() => document.querySelector('nav.crumbs [data-crumb="machine"]')?.textContent === 'ada-laptop', null, { timeout: 15_000 });
  assert.deepEqual(await crumbs(page), [['project', SHOP], ['machine', 'ada-laptop'], ['workspace', '/home/ada/src/shop']]);
  await sameCards(page, w.workspace, 'workspace');
  sameFigures(await rowsOf(page, '#workspace-sessions tr[data-session]'), w.sessions, { row: 'session', api: 'session_id' }, 'workspace sessions');
  await shot(page, 'workspace');

  // The failed session: its failing step highlighted.
  await open(page, '/sessions/sess-shop-ci-1', 'session');
  await page.waitForSelector('[data-scope-status="failed"]', { timeout: 15_000 });
  assert.ok(await page.$('tr.step-error[data-step="run_failed"]'), 'the failing step is highlighted');
  assert.match(await page.textContent('tr.step-error[data-step="run_failed"]'), /cargo test failed/);
  // The run page draws the same timeline component (the session is its run).
  const run = await api('/v1/runs/sess-shop-ci-1');
  await open(page, '/runs/sess-shop-ci-1', 'run');
  await page.waitForSelector(`[data-run="sess-shop-ci-1"][data-steps="${run.events.length}"]`, { timeout: 15_000 });
  assert.deepEqual(await page.$$eval('#timeline tr[data-step]', (trs) => trs.map((tr) => tr.dataset.eventId)), run.events.map((e) => e.event_id));
  assert.ok(await page.$('#timeline tr.step-error[data-step="run_failed"]'));
  assert.deepEqual(errors, []);
});

test('an admin pauses a project and its session shows why; then resumes it; a viewer cannot', { timeout: 120_000 }, async () => {
  const { page: viewer, errors: vErrors } = await signedIn(VIEWER);
  for (const [path, name] of [[`/projects/${enc(SHOP)}`, 'project'], [`/machines/${LAPTOP}`, 'machine'], ['/workspaces/ws-shop-laptop', 'workspace'], ['/sessions/sess-shop-1', 'session']]) {
    await open(viewer, path, name);
    await viewer.waitForSelector('[data-scope-status]', { timeout: 15_000 });
    assert.equal(await viewer.$('[data-scope-controls]'), null, `no controls for a viewer on ${path}`);
    assert.equal(await viewer.$('[data-scope-action]'), null);
  }
  assert.deepEqual(vErrors, []);
  await viewer.close();

  const { page, errors } = await signedIn(ADMIN);
  await open(page, `/projects/${enc(SHOP)}`, 'project');
  await page.waitForSelector('[data-scope-controls="project"]', { timeout: 15_000 });
  await page.fill('[data-scope-controls] input[name=reason]', 'pw: runaway spend');
  await page.click('[data-scope-action="pause"] button');
  await page.click('[data-scope-action="pause"] [aria-label=confirm] button.danger');
  await page.waitForSelector('[data-scope-status="paused"]', { timeout: 15_000 });
  assert.match(await page.textContent('[data-status-reason]'), /pw: runaway spend/);
  const p = (await api(`/v1/projects/${enc(SHOP)}`)).project;
  assert.deepEqual([p.status, p.status_reason], ['paused', 'pw: runaway spend']);
  await page.waitForSelector('#project-sessions tr[data-session="sess-shop-1"][data-status="paused"]', { timeout: 15_000 });
  await shot(page, 'project-paused');
  // Its session says so, with the reason.
  await page.click('#project-sessions tr[data-session="sess-shop-1"] a[data-link="session"]');
  await page.waitForSelector('[data-page="session"] [data-scope-status="paused"]', { timeout: 15_000 });
  assert.match(await page.textContent('[data-status-reason]'), /pw: runaway spend/);
  const s = (await api('/v1/sessions/sess-shop-1')).session;
  assert.deepEqual([s.status, s.status_reason], ['paused', 'pw: runaway spend']);
  // Where the pause is: its project (not its machine or workspace).
  await page.waitForSelector('[data-stopped-by="project"]', { timeout: 15_000 });
  assert.match(await page.textContent('[data-stopped-by="project"]'), /github\.com\/acme\/shop is paused/);
  assert.equal(await page.$('[data-stopped-by="machine"], [data-stopped-by="workspace"]'), null);
  // The session has no pause of its own: resuming it says where the pause is.
  await page.click('[data-scope-action="resume"] button');
  await page.click('[data-scope-action="resume"] [aria-label=confirm] button.danger');
  await page.waitForSelector('[data-scope-note]', { timeout: 15_000 });
  assert.match(await page.textContent('[data-scope-note]'), /project, machine or workspace/);
  assert.ok(await page.$('[data-scope-status="paused"]'));
  await shot(page, 'session-paused');
  // A session of the other project is not paused.
  assert.notEqual((await api('/v1/sessions/sess-billing-1')).session.status, 'paused');
  // Back to the project by its breadcrumb, and resume it.
  await page.click('nav.crumbs [data-crumb="project"] a');
  await page.waitForSelector('[data-page="project"] [data-scope-status="paused"]', { timeout: 15_000 });
  await page.click('[data-scope-action="resume"] button');
  await page.click('[data-scope-action="resume"] [aria-label=confirm] button.danger');
  await page.waitForSelector('[data-page="project"] [data-scope-status]:not([data-scope-status="paused"])', { timeout: 15_000 });
  assert.notEqual((await api(`/v1/projects/${enc(SHOP)}`)).project.status, 'paused');
  await page.click('#project-sessions tr[data-session="sess-shop-1"] a[data-link="session"]');
  await page.waitForSelector('[data-page="session"] [data-scope-status="completed"]', { timeout: 15_000 });
  assert.equal(await page.$('[data-status-reason]'), null);
  assert.deepEqual(errors, []);
});
