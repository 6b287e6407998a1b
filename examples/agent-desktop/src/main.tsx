// Signs the agent in (the code grant with PKCE: no client secret in the page), attaches this
// tab to the browser's one notification session, has what a gap missed read again over REST,
// and renders the desktop.
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { createPkceLogin } from 'genesys-notify-web/pkce';
import { createSharedClient } from 'genesys-notify-web/shared';
import { attachRereaders, presence, queueObservations, routingStatus } from 'genesys-notify-web/reread';
import type { NotificationClient } from 'genesys-notify-web';
import { App } from './App';
import { makeApi } from './api';
import './styles.css';

const q = new URLSearchParams(location.search);

/** Where the organisation is: `?api=https://api.mypurecloud.ie&login=https://login.mypurecloud.ie&clientId=…`
 * (`start.sh` passes the simulator's own address). `?queues=a,b` shows those queues instead
 * of the agent's; `?reread=0` turns the re-reading after a gap off (to see what it buys). */
const apiBase = q.get('api') ?? location.origin;
const loginBase = q.get('login') ?? apiBase;
const clientId = q.get('clientId') ?? '';
const queues = q.get('queues')?.split(',').filter(Boolean) ?? null;

const redirect = new URL(location.href);
redirect.searchParams.delete('code');
redirect.searchParams.delete('state');
const auth = createPkceLogin({
  loginBase,
  clientId,
  redirectUri: redirect.href,
  // A stored token with less life left is not handed out (60 s by default).
  ...(q.get('minLife') ? { minLifeSeconds: Number(q.get('minLife')) } : {}),
});

async function boot(): Promise<NotificationClient | null> {
  if (!clientId) throw new Error('open the desktop with ?clientId=… (an OAuth client with the code grant and PKCE)');
  if ((await auth.completeRedirect()) === 'popup') return null;
  if (!(await auth.getToken())) {
    await auth.start();
    return null;
  }
  // No topics here: the components' hooks subscribe what they show.
  const client = await createSharedClient({ apiBase, getToken: auth.getToken, topics: [] });
  if (q.get('reread') !== '0') {
    attachRereaders(client, {
      apiBase,
      getToken: async () => (await auth.getToken())?.accessToken ?? '',
      readers: [presence, routingStatus, queueObservations],
    });
  }
  return client;
}

const root = createRoot(document.getElementById('root')!);
boot().then(
  (client) => {
    if (client) {
      root.render(
        <StrictMode>
          <App client={client} api={makeApi(apiBase, auth.getToken, client)} signIn={() => auth.popup()} queues={queues} />
        </StrictMode>,
      );
    }
  },
  (e: unknown) => root.render(<p className="fatal">The desktop could not start: {String(e)}</p>),
);
