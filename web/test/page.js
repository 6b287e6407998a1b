// The browser tests' page: one client against the simulator that serves this page, its
// events written to the console as `GNW {json}` lines for the test to account for.
import { createClient } from '../src/index.js';
import { createPkceLogin } from '../src/pkce.js';
import { clientCredentials } from './token.js';

const q = new URLSearchParams(location.search);
const base = q.get('api') ?? location.origin;
const say = (o) => console.log('GNW ' + JSON.stringify(o));

// `throttleMs=N`: timers run late as Chromium runs a hidden tab's (each one waits for the
// next multiple of N ms, as intensive throttling aligns them to whole minutes), while socket
// and fetch callbacks run at once. Headless Chromium never hides a page, so the page does it.
const throttle = Number(q.get('throttleMs') ?? 0);
// `hidden=1` (or throttling): the page says it is hidden, as a background tab does.
if (throttle > 0 || q.get('hidden') === '1') {
  Object.defineProperty(document, 'visibilityState', { get: () => 'hidden', configurable: true });
}
if (throttle > 0) {
  const setTimeoutNow = window.setTimeout.bind(window);
  window.setTimeout = (fn, delay = 0, ...args) => {
    const now = performance.now();
    const aligned = Math.ceil((now + delay) / throttle) * throttle;
    return setTimeoutNow(fn, aligned - now, ...args);
  };
}

// `auth=pkce`: the page signs in as a real page does (the simulator's login page agrees at
// once), and signs in again in a popup whenever the session asks for a login.
let getToken;
let relogin = null;
if (q.get('auth') === 'pkce') {
  const back = new URL(location.href);
  back.searchParams.delete('code');
  back.searchParams.delete('state');
  const auth = createPkceLogin({
    loginBase: base,
    clientId: q.get('id'),
    redirectUri: back.href,
    minLifeSeconds: Number(q.get('minLife') ?? 60),
  });
  const done = await auth.completeRedirect();
  if (done === 'popup') throw new Error('unreachable: the popup has closed');
  if (!(await auth.getToken())) {
    say({ type: 'bridge', signingIn: true });
    await auth.start();
    await new Promise(() => {});
  }
  getToken = auth.getToken;
  relogin = () => auth.popup();
} else {
  getToken = clientCredentials(base, q.get('id'), q.get('secret'));
}

try {
  const client = await createClient({
    apiBase: base,
    getToken,
    topics: JSON.parse(q.get('topics') ?? '[]'),
    seed: 1,
    // A hidden page's lateness limit, scaled with the throttling the page plays.
    ...(throttle > 0 ? { hiddenLateMs: throttle * 1.25 } : {}),
    ...JSON.parse(q.get('tuning') ?? '{}'),
  });
  window.client = client;
  if (relogin) {
    // Signed in again as soon as the session says the token will not be renewed.
    client.addEventListener('loginsoon', async () => {
      try {
        const t = await relogin();
        client.login(t.accessToken, t.expiresIn);
      } catch (e) {
        say({ type: 'pageerror', message: String(e?.message ?? e) });
      }
    });
  }
  say({ type: 'start', epochMs: client.toDate(0).getTime() });
  for (const type of ['notification', 'gap', 'status', 'topicrejected', 'loginsoon', 'loginrequired', 'warning', 'tokenrotated', 'fatal', 'resumed']) {
    client.addEventListener(type, (e) => {
      const d = e.detail;
      if (type === 'notification') say({ type, topic: d.topic, raw: d.raw });
      else if (type === 'gap') say({ type, topics: d.topics, fromMs: d.fromMs, toMs: d.toMs, fromEpochMs: d.from.getTime(), toEpochMs: d.to.getTime(), reason: d.reason });
      else say({ type, ...d });
      if (type === 'status') document.getElementById('status').textContent = d.status;
    });
  }
} catch (e) {
  say({ type: 'pageerror', message: String(e?.message ?? e) });
}
