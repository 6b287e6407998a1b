// genesys-notify-web/react: the session as React hooks.
//
//   <GenesysNotificationsProvider client={client}>…</GenesysNotificationsProvider>
//   const { status, events, gaps, resolveGap, loginRequired } =
//     useGenesysNotifications(topics, { onNotification, onGap });
//
// `client` is what createSharedClient (or createClient) resolved to, or null while it loads.
// Create it without topics: the mounted hooks decide what is subscribed. Each hook holds its
// topics while it is mounted; a topic is unsubscribed once no mounted hook holds it. Releases
// wait one task, so Strict Mode's unmount-and-mount (and a re-render that keeps a topic)
// sends nothing to the service.

import { createContext, createElement, useCallback, useContext, useEffect, useRef, useState } from 'react';

const ClientContext = createContext(null);

/** Makes `client` (or null while it loads) the one the hooks below use. */
export function GenesysNotificationsProvider({ client, children }) {
  return createElement(ClientContext.Provider, { value: client ?? null }, children);
}

/** The provider's client (null while it loads). */
export function useGenesysClient() {
  return useContext(ClientContext);
}

/** Per client: topic → how many mounted hooks hold it, and the topics whose release waits. */
const holds = new WeakMap();

function holder(client) {
  let h = holds.get(client);
  if (!h) {
    h = { counts: new Map(), releasing: new Set(), timer: null };
    holds.set(client, h);
  }
  return h;
}

function hold(client, topics) {
  const h = holder(client);
  const fresh = [];
  for (const t of topics) {
    const n = h.counts.get(t) ?? 0;
    h.counts.set(t, n + 1);
    // Released a moment ago and not yet unsubscribed: still subscribed, nothing to send.
    if (n === 0 && !h.releasing.delete(t)) fresh.push(t);
  }
  if (fresh.length) client.subscribe(fresh);
}

function release(client, topics) {
  const h = holder(client);
  for (const t of topics) {
    const n = (h.counts.get(t) ?? 0) - 1;
    if (n > 0) {
      h.counts.set(t, n);
    } else {
      h.counts.delete(t);
      h.releasing.add(t);
    }
  }
  if (h.releasing.size && h.timer === null) {
    h.timer = setTimeout(() => {
      h.timer = null;
      const gone = [...h.releasing].filter((t) => !h.counts.has(t));
      h.releasing.clear();
      if (gone.length) client.unsubscribe(gone);
    }, 0);
  }
}

let gapIds = 0;

/**
 * Subscribes `topics` while the component is mounted and returns what the session says of
 * them:
 * - `status`: connecting, live, recovering, login_required, closed, failed;
 * - `events`: the latest notifications of these topics, newest first (at most `keep`);
 * - `gaps`: the reported stretches in which some of these topics were not covered, oldest
 *   first (at most `keep`), until `resolveGap(gap)` (after re-reading the state over REST)
 *   or `clearGaps()`;
 * - `loginRequired`: the `loginrequired` detail while a new login is needed, else null;
 * - `mode`: 'shared' (one session per browser) or 'per-tab', and `client`.
 * `onNotification(detail)` and `onGap(gap)` are called for each, with the latest callbacks.
 */
export function useGenesysNotifications(topics, options = {}) {
  const { onNotification, onGap, keep = 50 } = options;
  const client = useContext(ClientContext);
  // A new array with the same topics is the same subscription.
  const key = JSON.stringify([...new Set(topics ?? [])].sort());
  const [state, setState] = useState(() => ({
    status: client?.status ?? 'connecting',
    events: [],
    gaps: [],
    loginRequired: null,
  }));
  const callbacks = useRef({ onNotification, onGap });
  useEffect(() => {
    callbacks.current = { onNotification, onGap };
  });

  useEffect(() => {
    if (!client) return undefined;
    const mine = new Set(JSON.parse(key));
    hold(client, mine);
    setState((s) => (s.status === client.status ? s : { ...s, status: client.status }));
    const onN = (e) => {
      const d = e.detail;
      if (!mine.has(d.topic)) return;
      callbacks.current.onNotification?.(d);
      setState((s) => ({ ...s, events: [d, ...s.events].slice(0, keep) }));
    };
    const onG = (e) => {
      const topicsHit = e.detail.topics.filter((t) => mine.has(t));
      if (!topicsHit.length) return;
      gapIds += 1;
      const gap = { ...e.detail, topics: topicsHit, id: gapIds };
      callbacks.current.onGap?.(gap);
      setState((s) => ({ ...s, gaps: [...s.gaps, gap].slice(-keep) }));
    };
    const onS = (e) => {
      const status = e.detail.status;
      setState((s) => ({ ...s, status, loginRequired: status === 'login_required' ? s.loginRequired : null }));
    };
    const onL = (e) => setState((s) => ({ ...s, loginRequired: e.detail }));
    client.addEventListener('notification', onN);
    client.addEventListener('gap', onG);
    client.addEventListener('status', onS);
    client.addEventListener('loginrequired', onL);
    return () => {
      client.removeEventListener('notification', onN);
      client.removeEventListener('gap', onG);
      client.removeEventListener('status', onS);
      client.removeEventListener('loginrequired', onL);
      release(client, mine);
    };
  }, [client, key, keep]);

  const resolveGap = useCallback((gap) => {
    setState((s) => ({ ...s, gaps: s.gaps.filter((g) => g.id !== gap?.id) }));
  }, []);
  const clearGaps = useCallback(() => setState((s) => ({ ...s, gaps: [] })), []);
  return { ...state, resolveGap, clearGaps, mode: client?.mode ?? null, client };
}
