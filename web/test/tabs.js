// A tab of the shared-session test: attaches to the origin's SharedWorker with its own
// topics and writes what it receives to the console as `GNW {json}` lines. It says when its
// getToken() is asked (`tokenfetch`), so the test can close the tab that fetches tokens.
import { createSharedClient } from '../src/shared.js';
import { attachRereaders, presence, routingStatus } from '../src/reread.js';
import { clientCredentials } from './token.js';

const q = new URLSearchParams(location.search);
const base = location.origin;
const say = (o) => console.log('GNW ' + JSON.stringify(o));
const fetchToken = clientCredentials(base, q.get('id'), q.get('secret'));

try {
  const client = await createSharedClient({
    apiBase: base,
    getToken: async () => {
      say({ type: 'tokenfetch' });
      const t = await fetchToken();
      // The token the session holds now, for a test that reports it as refused.
      window.lastToken = t?.accessToken;
      return t;
    },
    topics: JSON.parse(q.get('topics') ?? '[]'),
    seed: 1,
    shared: q.get('shared') !== '0',
    ...(q.get('workerUrl') ? { workerUrl: q.get('workerUrl') } : {}),
    ...JSON.parse(q.get('tuning') ?? '{}'),
  });
  window.client = client;
  // `reread=1`: what a gap missed of a user's presence or routing status is read again.
  if (q.get('reread') === '1') {
    attachRereaders(client, { apiBase: base, getToken: () => window.lastToken, readers: [presence, routingStatus], retryMs: 200 });
    client.addEventListener('resync', (e) => say({ type: 'resync', topic: e.detail.topic, data: e.detail.data, reason: e.detail.gap.reason }));
    client.addEventListener('resyncfailed', (e) => say({ type: 'resyncfailed', ...e.detail }));
  }
  say({ type: 'attached', mode: client.mode, status: client.status });
  for (const type of ['notification', 'gap', 'status', 'topicrejected', 'loginsoon', 'loginrequired', 'warning', 'tokenrotated', 'fatal']) {
    client.addEventListener(type, (e) => {
      const d = e.detail;
      if (type === 'notification') say({ type, topic: d.topic, raw: d.raw });
      else if (type === 'gap') say({ type, topics: d.topics, fromEpochMs: d.from.getTime(), toEpochMs: d.to.getTime(), reason: d.reason });
      else say({ type, ...d });
      if (type === 'status') document.getElementById('status').textContent = d.status;
    });
  }
} catch (e) {
  say({ type: 'pageerror', message: String(e?.message ?? e) });
}
