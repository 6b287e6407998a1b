// The official SDK (purecloud-platform-client-v2, its browser bundle) beside the shared
// session, wired as the package README's recipe says, against the simulator that serves this
// page. The SDK signs in with PKCE through the simulator's login page; the session takes its
// tokens from the SDK. `window.sdkCall()` makes one SDK call and answers its HTTP status.
import { createSharedClient } from '../src/shared.js';

const say = (o) => console.log('GNW ' + JSON.stringify(o));
// The SDK takes the query off the address when it comes back from the login page: the test's
// settings stay in this tab's sessionStorage.
if (location.search.includes('topics=')) sessionStorage.setItem('gnw-sdk-test', location.search);
const q = new URLSearchParams(sessionStorage.getItem('gnw-sdk-test') ?? '');
const clientId = q.get('id');
const redirectUri = location.origin + location.pathname;

const platformClient = require('platformClient');
const sdk = platformClient.ApiClient.instance;
const here = new URL(location.origin);
sdk.setGateway({ host: here.hostname, protocol: here.protocol.slice(0, -1), port: Number(here.port) });

try {
  // --- the recipe (package README: "Beside the official SDK") ---
  await sdk.loginPKCEGrant(clientId, redirectUri); // the first time, goes to the login page
  const refused = new Set(); // tokens the service answered 401 to

  const client = await createSharedClient({
    apiBase: location.origin,
    topics: JSON.parse(q.get('topics') ?? '[]'),
    getToken: async () => {
      const { accessToken, tokenExpiryTime } = sdk.authData;
      const expiresIn = Math.floor((tokenExpiryTime - Date.now()) / 1000);
      // PKCE gives no refresh token: past this one (or within its last minute), only a new
      // sign-in helps. null says so: the session emits loginsoon, then loginrequired.
      if (!accessToken || refused.has(accessToken) || expiresIn <= 60) return null;
      return { accessToken, expiresIn };
    },
    ...JSON.parse(q.get('tuning') ?? '{}'),
  });
  // The session needs a sign-in: the SDK's (this page goes to the login page and back).
  client.addEventListener('loginrequired', () => sdk.loginPKCEGrant(clientId, redirectUri));
  // Back from signing in again while the (shared) session waited: it takes the new token.
  if (client.status === 'login_required') {
    const { accessToken, tokenExpiryTime } = sdk.authData;
    client.login(accessToken, Math.floor((tokenExpiryTime - Date.now()) / 1000));
  }
  // Every SDK call of the application goes through this.
  const withSession = async (call) => {
    const token = sdk.authData.accessToken;
    try {
      return await call();
    } catch (e) {
      if (e?.status === 401) {
        refused.add(token);
        client.reportUnauthorized(token);
      }
      throw e;
    }
  };
  // --- end of the recipe ---

  window.client = client;
  window.sdkCall = () =>
    withSession(() => new platformClient.NotificationsApi().getNotificationsChannels()).then(
      () => 200,
      (e) => e?.status ?? String(e),
    );
  say({ type: 'attached', mode: client.mode, status: client.status });
  for (const type of ['notification', 'gap', 'status', 'topicrejected', 'loginrequired', 'warning', 'fatal']) {
    client.addEventListener(type, (e) => {
      const d = e.detail;
      if (type === 'notification') say({ type, topic: d.topic });
      else if (type === 'gap') say({ type, topics: d.topics, reason: d.reason });
      else say({ type, ...d });
      if (type === 'status') document.getElementById('status').textContent = d.status;
    });
  }
} catch (e) {
  say({ type: 'pageerror', message: String(e?.message ?? e) });
}
