'use client';
// genesys-notify-web/react: the session as React hooks.
//
//   <GenesysNotificationsProvider client={client}>…</GenesysNotificationsProvider>
//   const { status, events, gaps, resolveGap, loginRequired, error } =
//     useGenesysNotifications(topics, { onNotification, onGap });
//   const { status, loginRequired, error } = useGenesysStatus();   // a header: no topics
//
// `client` is what createSharedClient (or createClient) resolved to, or null while it loads.
// Create it without topics: the mounted hooks decide what is subscribed. Each hook holds its
// topics while it is mounted; a topic is unsubscribed once no mounted hook holds it. Releases
// wait one task, so Strict Mode's unmount-and-mount (and a re-render that keeps a topic)
// sends nothing to the service. Nothing here throws into React: what goes wrong (a closed
// client, a failed session, a topic refused) is the hooks' `error`.

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

/** Counts `topics` as held, subscribing those nobody held. If the client refuses (closed,
 * or a topic it cannot take), it throws and nothing is counted. */
function hold(client, topics) {
  const h = holder(client);
  // Released a moment ago and not yet unsubscribed: still subscribed, nothing to send.
  const fresh = [...topics].filter((t) => !h.counts.has(t) && !h.releasing.has(t));
  if (fresh.length) client.subscribe(fresh);
  for (const t of topics) {
    h.counts.set(t, (h.counts.get(t) ?? 0) + 1);
    h.releasing.delete(t);
  }
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
      try {
        if (gone.length) client.unsubscribe(gone);
      } catch {
        // A client closed meanwhile has nothing left to release.
      }
    }, 0);
  }
}

/** What a client's status alone says is wrong: it was closed, or its session failed. */
function statusError(status, message) {
  if (status === 'closed') return { kind: 'closed', message: 'the client was closed', topics: [] };
  if (status === 'failed') return { kind: 'fatal', message: message ?? 'the session failed', topics: [] };
  return null;
}

/** Adds `handlers` (event type → listener) to `client`; returns what removes them. */
function listen(client, handlers) {
  const pairs = Object.entries(handlers);
  for (const [type, f] of pairs) client.addEventListener(type, f);
  return () => {
    for (const [type, f] of pairs) client.removeEventListener(type, f);
  };
}

function messageOf(e) {
  return String(e?.message ?? e);
}

/**
 * The client's status, without subscribing anything (a header, a banner):
 * - `status`: connecting, live, recovering, login_required, closed, failed;
 * - `loginRequired`: the `loginrequired` detail while a new login is needed, else null;
 * - `error`: `{ kind: 'closed' | 'fatal', message, topics: [] }` once the client was closed or
 *   its session failed, else null;
 * - `mode`: 'shared' or 'per-tab', and `client`.
 */
export function useGenesysStatus() {
  const client = useContext(ClientContext);
  const [state, setState] = useState(() => ({
    status: client?.status ?? 'connecting',
    loginRequired: null,
    error: statusError(client?.status),
  }));
  useEffect(() => {
    if (!client) return undefined;
    // What an earlier client said does not hold for this one.
    setState((s) => ({ ...s, status: client.status, error: statusError(client.status) }));
    const onS = (e) => {
      const status = e.detail.status;
      setState((s) => ({
        ...s,
        status,
        loginRequired: status === 'login_required' ? s.loginRequired : null,
        error: s.error?.kind === 'fatal' ? s.error : statusError(status),
      }));
    };
    const onL = (e) => setState((s) => ({ ...s, loginRequired: e.detail }));
    const onF = (e) => setState((s) => ({ ...s, error: { kind: 'fatal', message: e.detail.message, topics: [] } }));
    return listen(client, { status: onS, loginrequired: onL, fatal: onF });
  }, [client]);
  return { ...state, mode: client?.mode ?? null, client };
}

let gapIds = 0;

/**
 * Subscribes `topics` while the component is mounted and returns what the session says of
 * them:
 * - `status`, `loginRequired`, `mode`, `client`: as `useGenesysStatus()`;
 * - `events`: the latest notifications of these topics, newest first (at most `keep`);
 * - `gaps`: the reported stretches in which some of these topics were not covered, oldest
 *   first (at most `keep`), until `resolveGap(gap)` (after re-reading the state over REST)
 *   or `clearGaps()`;
 * - `stale`: the topics whose state is unknown since a gap, until a re-read of them lands
 *   (a `resync` event: `genesys-notify-web/reread`); a gap all of whose topics were re-read
 *   is resolved by itself;
 * - `error`: null, or what keeps these topics from being followed — `kind` 'rejected' (the
 *   service refused `topics`; `message` is its reason), 'subscribe' (the client refused
 *   them: an invalid topic, or more than it can carry), 'closed' or 'fatal'.
 * `onNotification(detail)`, `onGap(gap)` and `onResync(detail)` are called for each, with the
 * latest callbacks.
 */
export function useGenesysNotifications(topics, options = {}) {
  const { onNotification, onGap, onResync, keep = 50 } = options;
  const base = useGenesysStatus();
  const client = base.client;
  // A new array with the same topics is the same subscription.
  const key = JSON.stringify([...new Set(topics ?? [])].sort());
  const [state, setState] = useState(() => ({ events: [], gaps: [], stale: [], error: null }));
  const callbacks = useRef({ onNotification, onGap, onResync });
  useEffect(() => {
    callbacks.current = { onNotification, onGap, onResync };
  });

  useEffect(() => {
    if (!client) return undefined;
    const mine = new Set(JSON.parse(key));
    let held = false;
    try {
      hold(client, mine);
      held = true;
      setState((s) => (s.error === null ? s : { ...s, error: null }));
    } catch (e) {
      // A closed or failed client says so through `useGenesysStatus`'s error.
      const error = statusError(client.status) ? null : { kind: 'subscribe', message: messageOf(e), topics: [...mine] };
      setState((s) => ({ ...s, error }));
    }
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
      setState((s) => ({
        ...s,
        gaps: [...s.gaps, gap].slice(-keep),
        stale: [...new Set([...s.stale, ...topicsHit])],
      }));
    };
    const onResync = (e) => {
      const d = e.detail;
      if (!mine.has(d.topic)) return;
      callbacks.current.onResync?.(d);
      setState((s) => {
        if (!s.stale.includes(d.topic)) return s;
        const stale = s.stale.filter((t) => t !== d.topic);
        // A gap whose every topic was read again is over.
        return { ...s, stale, gaps: s.gaps.filter((g) => g.topics.some((t) => stale.includes(t))) };
      });
    };
    const onR = (e) => {
      const { topic, reason } = e.detail;
      if (!mine.has(topic)) return;
      setState((s) => {
        const earlier = s.error?.kind === 'rejected' ? s.error.topics : [];
        return { ...s, error: { kind: 'rejected', message: reason, topics: [...new Set([...earlier, topic])] } };
      });
    };
    const unlisten = listen(client, { notification: onN, gap: onG, topicrejected: onR, resync: onResync });
    return () => {
      unlisten();
      if (held) release(client, mine);
    };
  }, [client, key, keep]);

  const resolveGap = useCallback((gap) => {
    setState((s) => ({ ...s, gaps: s.gaps.filter((g) => g.id !== gap?.id) }));
  }, []);
  const clearGaps = useCallback(() => setState((s) => ({ ...s, gaps: [], stale: [] })), []);
  return {
    ...base,
    events: state.events,
    gaps: state.gaps,
    stale: state.stale,
    error: state.error ?? base.error,
    resolveGap,
    clearGaps,
  };
}
