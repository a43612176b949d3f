// Shared by the console's Chromium tests: signing in through the form and
// opening a page, with the page's console errors collected.

/** Sign-in and page helpers over `browser()` (launched in a `before` hook)
 *  and the query API at `base`. `expected` lists [status, path suffix]
 *  answers a test's pages ask for on purpose and that are not errors; the
 *  first load's 401 on /v1/auth/me always is. */
export function consolePages(browser, base, expected = []) {
  const answers = [[401, '/v1/auth/me'], ...expected];

  /** A page signed in as `who` ([email, password]) on the overview, with
   *  its console errors collected. */
  async function signedIn(who, viewport = { width: 1440, height: 900 }) {
    const page = await browser().newPage({ viewport });
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      const url = m.location()?.url || '';
      if (answers.some(([status, path]) => m.text().includes(`status of ${status}`) && url.endsWith(path))) return;
      errors.push(`${m.text()} ${url}`);
    });
    await page.goto(`${base}/console/`);
    await page.fill('input[name=email]', who[0]);
    await page.fill('input[name=password]', who[1]);
    await page.click('form[aria-label="sign in"] button[type=submit]');
    await page.waitForSelector('main[data-window]', { timeout: 15_000 });
    return { page, errors };
  }

  /** Open `/console<path>` and wait until page `name` has loaded. */
  async function open(page, path, name) {
    await page.goto(`${base}/console${path}`);
    await page.waitForSelector(`[data-page="${name}"]`, { timeout: 15_000 });
    await page.waitForFunction(() => !document.querySelector('.loading'), null, { timeout: 15_000 });
  }

  return { signedIn, open };
}
