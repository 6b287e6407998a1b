// Throughput in the browser: notifications per second through genesys-notify-web against a
// bare WebSocket onmessage + JSON.parse loop on a channel of its own, on the same simulator,
// alternating. The bench (tests/benches/browser_throughput.rs) publishes a burst of N when
// the page says `ready`, and reads `done` with the elapsed milliseconds.
import { createClient } from '../src/index.js';
import { clientCredentials } from './token.js';

const q = new URLSearchParams(location.search);
const base = location.origin;
const n = Number(q.get('n'));
const rounds = Number(q.get('rounds'));
const TOPIC = 'v2.users.bench.presence';
const say = (o) => console.log('GNW ' + JSON.stringify(o));

const token = clientCredentials(base, q.get('id'), q.get('secret'));

async function bare() {
  const { accessToken } = await token();
  const auth = { Authorization: `Bearer ${accessToken}`, 'Content-Type': 'application/json' };
  const ch = await (await fetch(`${base}/api/v2/notifications/channels`, { method: 'POST', headers: auth })).json();
  await fetch(`${base}/api/v2/notifications/channels/${ch.id}/subscriptions`, {
    method: 'PUT',
    headers: auth,
    body: JSON.stringify([{ id: TOPIC }]),
  });
  const ws = new WebSocket(ch.connectUri);
  await new Promise((r) => (ws.onopen = r));
  let got = 0;
  let start = 0;
  const done = new Promise((resolve) => {
    ws.onmessage = (ev) => {
      const v = JSON.parse(ev.data);
      if (v.topicName === TOPIC && ++got === n) resolve();
    };
  });
  start = performance.now();
  say({ type: 'ready', phase: 'bare' });
  await done;
  const ms = performance.now() - start;
  ws.close();
  return ms;
}

async function adapter() {
  const client = await createClient({ apiBase: base, getToken: token, topics: [TOPIC], seed: 1 });
  await new Promise((r) => {
    if (client.status === 'live') r();
    client.addEventListener('status', (e) => e.detail.status === 'live' && r());
  });
  let got = 0;
  const done = new Promise((resolve) => {
    client.addEventListener('notification', () => ++got === n && resolve());
  });
  const start = performance.now();
  say({ type: 'ready', phase: 'adapter' });
  await done;
  const ms = performance.now() - start;
  client.close();
  return ms;
}

for (let i = 0; i < rounds; i++) {
  const a = await adapter();
  say({ type: 'done', phase: 'adapter', ms: a });
  const b = await bare();
  say({ type: 'done', phase: 'bare', ms: b });
}
say({ type: 'finished' });
