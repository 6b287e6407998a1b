// Signs the agent in (the code grant with PKCE: no client secret in the page), attaches this
// tab to the browser's one notification session, and renders the desktop.
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { createPkceLogin } from 'genesys-notify-web/pkce';
import { createSharedClient } from 'genesys-notify-web/shared';
import type { NotificationClient } from 'genesys-notify-web';
import { App, type Settings } from './App';
import './styles.css';

const q = new URLSearchParams(location.search);
const list = (name: string, fallback: string[]) => (q.get(name)?.split(',').filter(Boolean) ?? fallback);

/** Against `genesys-notify sim` (which serves this page) everything is on this origin; for
 * a real organisation pass `?api=https://api.mypurecloud.ie&login=https://login.mypurecloud.ie&clientId=…`. */
const settings: Settings = {
  apiBase: q.get('api') ?? location.origin,
  loginBase: q.get('login') ?? location.origin,
  clientId: q.get('clientId') ?? 'genesys-notify-sim',
  users: list('users', ['agent-1', 'agent-2']),
  queues: list('queues', ['queue-1']),
};

const redirect = new URL(location.href);
redirect.searchParams.delete('code');
redirect.searchParams.delete('state');
const auth = createPkceLogin({
  loginBase: settings.loginBase,
  clientId: settings.clientId,
  redirectUri: redirect.href,
  // A stored token with less life left is not handed out (60 s by default).
  ...(q.get('minLife') ? { minLifeSeconds: Number(q.get('minLife')) } : {}),
});

async function boot(): Promise<NotificationClient | null> {
  if ((await auth.completeRedirect()) === 'popup') return null;
  if (!(await auth.getToken())) {
    await auth.start();
    return null;
  }
  // No topics here: the components' hooks subscribe what they show.
  return createSharedClient({ apiBase: settings.apiBase, getToken: auth.getToken, topics: [] });
}

const root = createRoot(document.getElementById('root')!);
boot().then(
  (client) => {
    if (client) {
      root.render(
        <StrictMode>
          <App client={client} settings={settings} signIn={() => auth.popup()} />
        </StrictMode>,
      );
    }
  },
  (e: unknown) => root.render(<p className="fatal">The desktop could not start: {String(e)}</p>),
);
