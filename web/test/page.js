// The browser tests' page: one client against the simulator that serves this page, its
// events written to the console as `GNW {json}` lines for the test to account for.
import { createClient } from '../src/index.js';
import { clientCredentials } from './token.js';

const q = new URLSearchParams(location.search);
const base = q.get('api') ?? location.origin;
const say = (o) => console.log('GNW ' + JSON.stringify(o));

const getToken = clientCredentials(base, q.get('id'), q.get('secret'));

try {
  const client = await createClient({
    apiBase: base,
    getToken,
    topics: JSON.parse(q.get('topics') ?? '[]'),
    seed: 1,
    ...JSON.parse(q.get('tuning') ?? '{}'),
  });
  window.client = client;
  say({ type: 'start', epochMs: client.toDate(0).getTime() });
  for (const type of ['notification', 'gap', 'status', 'topicrejected', 'loginrequired', 'warning', 'tokenrotated', 'fatal', 'resumed']) {
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
