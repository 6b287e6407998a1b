// Runs the test page in a headless browser (`engine.mjs`: Debian's Chromium or Firefox) and bridges it
// to the Rust test: the page's `GNW {json}` console lines go to stdout, one per line; stdin
// takes commands: `close` (close the client, then exit), `freeze MS` (stop the page's
// JavaScript for MS, as a browser freezes a background tab, then let it go on; `freeze MS
// lifecycle`: with the Page Lifecycle `freeze` and `resume` events Chromium sends around it,
// Chromium only).
import { engine, launch } from './engine.mjs';
import readline from 'node:readline';

const url = process.argv[2];
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const browser = await launch();
const page = await browser.firstPage();
page.onConsole((t) => {
  if (t.startsWith('GNW ')) process.stdout.write(t.slice(4) + '\n');
});
page.onPageError((message) => out({ type: 'pageerror', message }));
await page.goto(url);
out({ type: 'bridge', ready: true });

let cdp = null;
const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  const [cmd, arg, how] = line.trim().split(/\s+/);
  if (cmd === 'close') {
    await page.evaluate('window.client?.close()');
    await new Promise((r) => setTimeout(r, 500));
    break;
  }
  if (cmd === 'freeze' && engine !== 'chromium') {
    // No debugger to pause the page over WebDriver BiDi: the page's own thread is kept busy
    // for MS instead, which stops the rest of its JavaScript just as well (timers, socket
    // handlers and fetch callbacks wait; the network keeps buffering). Firefox sends no Page
    // Lifecycle events, so there is no `lifecycle` form.
    if (how === 'lifecycle') throw new Error(`${engine} has no Page Lifecycle freeze events`);
    out({ type: 'bridge', frozen: true });
    await page.evaluate(`(() => { const end = Date.now() + ${Number(arg)}; while (Date.now() < end); })()`);
    out({ type: 'bridge', frozen: false });
    continue;
  }
  if (cmd === 'freeze') {
    // Chromium freezes only hidden pages, and a headless page is never hidden; pausing its
    // JavaScript does what a freeze does to it: timers, socket handlers and fetch callbacks
    // all wait, while the network keeps buffering.
    cdp ??= await browser.cdp(page);
    await cdp.send('Debugger.enable');
    let thawed = Promise.resolve();
    if (how === 'lifecycle') {
      // As Chromium does it: `freeze` fires, nothing runs until `resume` has fired, then
      // what waited (socket messages, timers) runs. The `debugger` statement stops the page
      // between the two, and the rest of the function runs first when it goes on.
      thawed = page.raw.evaluate(() => {
        document.dispatchEvent(new Event('freeze'));
        // eslint-disable-next-line no-debugger
        debugger;
        document.dispatchEvent(new Event('resume'));
      });
      await new Promise((r) => setTimeout(r, 100));
    } else {
      await cdp.send('Debugger.pause');
    }
    out({ type: 'bridge', frozen: true });
    await new Promise((r) => setTimeout(r, Number(arg)));
    await cdp.send('Debugger.resume');
    await thawed;
    out({ type: 'bridge', frozen: false });
  }
}
await browser.close();
process.exit(0);
