// The page of the Vite and webpack consumer apps (build.sh copies it into each app's src/):
// genesys-notify-web used as an application uses it, installed from the packed tarball. It
// shows the session's mode, status and notifications for the test to read. It signs in with
// the simulator's client credentials from the address (a test app: a real page signs in with
// PKCE, see the package README).
import { createSharedClient } from 'genesys-notify-web/shared';

const q = new URLSearchParams(location.search);
const api = q.get('api') ?? location.origin;
const show = (id, text) => {
  document.getElementById(id).textContent = text;
};

async function getToken() {
  const r = await fetch(`${api}/oauth/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${btoa(`${q.get('id')}:${q.get('secret')}`)}`,
    },
    body: 'grant_type=client_credentials',
  });
  if (!r.ok) throw new Error(`token: HTTP ${r.status}`);
  const t = await r.json();
  return { accessToken: t.access_token, expiresIn: t.expires_in };
}

async function main() {
  const client = await createSharedClient({ apiBase: api, getToken, topics: [q.get('topic')] });
  show('mode', client.mode);
  show('status', client.status);
  let n = 0;
  client.addEventListener('status', (e) => show('status', e.detail.status));
  client.addEventListener('notification', (e) => show('notifications', `${++n} ${e.detail.topic}`));
  client.addEventListener('warning', (e) => show('warning', e.detail.message));
  client.addEventListener('fatal', (e) => show('error', e.detail.message));
}

main().catch((e) => show('error', String(e?.message ?? e)));
