// Time until the console's overview is fully drawn in Chromium: from the
// navigation's start to `main[data-window]` (set once every panel of the
// window has its data and the charts are drawn, see pages/overview.tsx),
// over BENCH_LOADS cold page loads (a new browser context each, signed in
// with a read key kept for the tab like the sign-in page does).
//
//   AGENTOPS_QUERY_URL=http://127.0.0.1:28081 AGENTOPS_READ_KEY=... node bench-console.mjs
//
// Optional: BENCH_LOADS (default 10), BENCH_WINDOW (24h), CHROMIUM_PATH,
// AGENTOPS_SCREENSHOT_DIR (a PNG of the last load). Prints one line per
// load and a JSON summary.
import { chromium } from 'playwright-core';

const BASE = (process.env.AGENTOPS_QUERY_URL || '').replace(/\/+$/, '');
const KEY = process.env.AGENTOPS_READ_KEY || '';
const LOADS = Number(process.env.BENCH_LOADS || 10);
const WINDOW = process.env.BENCH_WINDOW || '24h';
const SHOTS = process.env.AGENTOPS_SCREENSHOT_DIR || '';
if (!BASE || !KEY) {
  console.error('set AGENTOPS_QUERY_URL and AGENTOPS_READ_KEY');
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
const times = [];
try {
  for (let i = 0; i < LOADS; i++) {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    await context.addInitScript((key) => sessionStorage.setItem('agentops.console.key', key), KEY);
    const page = await context.newPage();
    await page.goto(`${BASE}/console/?window=${WINDOW}`);
    await page.waitForSelector(`main[data-window="${WINDOW}"]`, { timeout: 60_000 });
    const ms = await page.evaluate(() => performance.now());
    times.push(ms);
    console.log(`load ${i + 1}: overview drawn in ${ms.toFixed(0)} ms`);
    if (SHOTS && i === LOADS - 1) await page.screenshot({ path: `${SHOTS}/bench-console-overview.png`, fullPage: true });
    await context.close();
  }
} finally {
  await browser.close();
}
const sorted = [...times].sort((a, b) => a - b);
const at = (q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
console.log(`overview drawn: p50 ${at(0.5).toFixed(0)} ms, max ${sorted[sorted.length - 1].toFixed(0)} ms over ${LOADS} cold loads`);
console.log(JSON.stringify({ bench: 'console-draw', window: WINDOW, loads: LOADS,
  p50_ms: Math.round(at(0.5)), max_ms: Math.round(sorted[sorted.length - 1]) }));
