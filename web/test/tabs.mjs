// Opens several tabs of one browser profile in a headless browser (`engine.mjs`: Debian's
// Chromium or Firefox), so that they
// share one SharedWorker, and bridges them to the Rust test: each tab's `GNW {json}` console
// lines go to stdout with `"tab": I`. stdin takes commands: `open URL` (one more tab),
// `closetab I` (the tab goes away as a user closes it), `waitfor I SELECTOR [gone]` (until
// the element shows, or is gone; 30 s at most), `click I SELECTOR` (the first match), `count I SELECTOR`, `eval I CODE`, `screenshot I PATH`,
// `close`. Each command is answered with a `bridge` line.
import { launch } from './engine.mjs';
import readline from 'node:readline';

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const browser = await launch({ viewport: { width: 1200, height: 800 } });
const pages = [];

async function open(url) {
  const tab = pages.length;
  const page = pages.length === 0 ? await browser.firstPage() : await browser.newPage();
  pages.push(page);
  page.onConsole((t, level) => {
    if (level === 'error' || level === 'warning') out({ tab, type: 'console', level, text: t.slice(0, 500) });
    if (!t.startsWith('GNW ')) return;
    try {
      out({ tab, ...JSON.parse(t.slice(4)) });
    } catch {
      out({ tab, type: 'pageerror', message: `unreadable line: ${t.slice(0, 200)}` });
    }
  });
  page.onPageError((message) => out({ tab, type: 'pageerror', message }));
  await page.goto(url);
  out({ type: 'bridge', opened: tab });
}

for (const url of process.argv.slice(2)) await open(url);
out({ type: 'bridge', ready: true });

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  const [cmd, a, b] = line.trim().split(/\s+/);
  if (cmd === 'open') {
    await open(a);
  } else if (cmd === 'closetab') {
    await pages[Number(a)]?.close();
    out({ type: 'bridge', closed: Number(a) });
  } else if (cmd === 'screenshot') {
    await pages[Number(a)]?.screenshot(b);
    out({ type: 'bridge', screenshot: b });
  } else if (cmd === 'click') {
    try {
      await pages[Number(a)].click(b);
      out({ type: 'bridge', clicked: b, ok: true });
    } catch (e) {
      out({ type: 'bridge', clicked: b, ok: false, message: String(e) });
    }
  } else if (cmd === 'eval') {
    // The rest of the line, run in the tab (`window.client` is its client).
    const code = line.trim().split(/\s+/).slice(2).join(' ');
    try {
      const value = await pages[Number(a)].evaluate(code);
      out({ type: 'bridge', evaluated: true, ok: true, value: value ?? null });
    } catch (e) {
      out({ type: 'bridge', evaluated: true, ok: false, message: String(e) });
    }
  } else if (cmd === 'count') {
    out({ type: 'bridge', counted: b, n: await pages[Number(a)].count(b) });
  } else if (cmd === 'waitfor') {
    const gone = line.trim().split(/\s+/)[3] === 'gone';
    try {
      await pages[Number(a)].waitFor(b, gone);
      out({ type: 'bridge', waited: b, gone, ok: true });
    } catch (e) {
      out({ type: 'bridge', waited: b, gone, ok: false, message: String(e) });
    }
  } else if (cmd === 'close') {
    for (const p of pages) if (!p.isClosed()) await p.evaluate('window.client?.close()').catch(() => {});
    await new Promise((r) => setTimeout(r, 500));
    break;
  }
}
await browser.close();
process.exit(0);
