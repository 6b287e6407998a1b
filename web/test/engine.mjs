// The browser a test bridge drives: `GNW_ENGINE=chromium` (default: Debian's Chromium through
// playwright-core) or `GNW_ENGINE=firefox` (Debian's firefox-esr through puppeteer-core, over
// WebDriver BiDi). Never a downloaded browser. Both come as the same small page interface, so
// the bridges do not care which runs.
import { launch as launchChromium } from './chromium.mjs';

export const engine = process.env.GNW_ENGINE ?? 'chromium';

/** A page of either engine, with what the bridges use of it. */
function wrap(page, pw) {
  return {
    raw: page,
    onConsole(fn) {
      // Playwright says 'warning' where Puppeteer says 'warn'.
      page.on('console', (m) => fn(m.text(), m.type() === 'warn' ? 'warning' : m.type()));
    },
    onPageError(fn) {
      page.on('pageerror', (e) => fn(String(e?.message ?? e)));
    },
    goto: (url) => page.goto(url),
    evaluate: (code) => page.evaluate(code),
    close: () => page.close(),
    isClosed: () => page.isClosed(),
    screenshot: (path) => page.screenshot({ path, fullPage: true }),
    click: (selector) =>
      pw
        ? page.locator(selector).first().click({ timeout: 30000 })
        : page.locator(selector).setTimeout(30000).click(),
    waitFor: (selector, gone) =>
      page.waitForSelector(
        selector,
        pw ? { state: gone ? 'detached' : 'visible', timeout: 30000 } : { [gone ? 'hidden' : 'visible']: true, timeout: 30000 },
      ),
    count: async (selector) => (pw ? page.locator(selector).count() : (await page.$$(selector)).length),
  };
}

/** Starts the engine with a fresh profile. `firstPage()` is the window it opened with;
 * `close()` closes the browser and removes the profile. */
export async function launch(options = {}) {
  if (engine === 'chromium') {
    const { context, close } = await launchChromium(options);
    return {
      firstPage: async () => wrap(context.pages()[0] ?? (await context.newPage()), true),
      newPage: async () => wrap(await context.newPage(), true),
      cdp: (page) => context.newCDPSession(page.raw),
      close,
    };
  }
  if (engine !== 'firefox') throw new Error(`GNW_ENGINE=${engine}: chromium or firefox`);
  const { default: puppeteer } = await import('puppeteer-core');
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: process.env.FIREFOX ?? '/usr/bin/firefox-esr',
    headless: true,
    defaultViewport: options.viewport ?? { width: 1200, height: 800 },
    extraPrefsFirefox: {
      // A closed network: nothing of Firefox's own calls out.
      'network.captive-portal-service.enabled': false,
      'network.connectivity-service.enabled': false,
      'browser.safebrowsing.update.enabled': false,
      'extensions.update.enabled': false,
      'app.update.enabled': false,
    },
  });
  return {
    // The window's first tab stays open and blank, as a user's other tabs do: Firefox
    // "closes" the last tab of a window by keeping its page in the back-forward cache,
    // where it holds its SharedWorker and Web Lock, which no user's closed tab does.
    firstPage: async () => wrap(await browser.newPage(), false),
    newPage: async () => wrap(await browser.newPage(), false),
    cdp: () => {
      throw new Error('freezing a page needs the Chrome DevTools Protocol: Chromium only');
    },
    close: () => browser.close().catch(() => {}),
  };
}
