'use client';
// The session in the browser: a shared client (made once the page runs), the provider, and
// a component that follows one topic with the hook. It signs in with the simulator's client
// credentials from the address (a test app: a real page signs in with PKCE).
import { useEffect, useState } from 'react';
import { createSharedClient } from 'genesys-notify-web/shared';
import { GenesysNotificationsProvider, useGenesysNotifications } from 'genesys-notify-web/react';

function Topic({ topic }) {
  const { status, events, mode, error } = useGenesysNotifications([topic], { keep: 1000 });
  return (
    <>
      <p>mode: <span id="mode">{mode ?? 'loading'}</span></p>
      <p>status: <span id="status">{status}</span></p>
      <p>notifications: <span id="notifications">{events.length > 0 ? `${events.length} ${events[0].topic}` : '0'}</span></p>
      <p>error: <span id="error">{error ? error.message : ''}</span></p>
    </>
  );
}

export default function Live() {
  const [client, setClient] = useState(null);
  const [topic, setTopic] = useState(null);
  const [failure, setFailure] = useState('');
  useEffect(() => {
    const q = new URLSearchParams(location.search);
    const api = q.get('api') ?? location.origin;
    setTopic(q.get('topic'));
    let made = null;
    let gone = false;
    createSharedClient({
      apiBase: api,
      getToken: async () => {
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
      },
    }).then(
      (c) => {
        made = c;
        if (gone) c.close();
        else setClient(c);
      },
      (e) => setFailure(String(e?.message ?? e)),
    );
    return () => {
      gone = true;
      made?.close();
    };
  }, []);
  if (failure) return <p>error: <span id="error">{failure}</span></p>;
  if (!client || !topic) return <p>status: <span id="status">loading</span></p>;
  return (
    <GenesysNotificationsProvider client={client}>
      <Topic topic={topic} />
    </GenesysNotificationsProvider>
  );
}
