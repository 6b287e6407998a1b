// genesys-notify-web's SharedWorker: one session for every tab of an origin and browser
// profile. Tabs attach over a MessagePort (see shared.js) with their own topic sets; the
// session subscribes the union, and each tab receives the notifications and gaps of its own
// topics. The token is asked of one attached tab at a time (single flight, as the session
// asks); a tab that closes, crashes or is discarded is noticed through the Web Lock it holds.

import { createClient } from './index.js';

/** Tabs one worker serves; one more is refused with an error it can show. */
const MAX_TABS = 64;
/** Topics one tab may hold: as many as one session's channel budget carries (19,000 with the
 * defaults); the session refuses past its budget, and the tab is told. */
const MAX_TOPICS_PER_TAB = 20000;
/** After the last tab leaves, the session waits this long for another (a reload) before it
 * closes its channel. */
const LINGER_MS = 5000;
/** A token request a tab leaves unanswered this long goes to the next tab, or fails. */
const TOKEN_ASK_MS = 30000;

const EVENTS = ['notification', 'gap', 'status', 'topicrejected', 'loginsoon', 'loginrequired', 'signedin', 'warning', 'tokenrotated', 'fatal', 'resumed'];

/** id → { port, topics: Set, options } in the order they attached. */
const tabs = new Map();
/** topic → how many tabs want it. */
const wanted = new Map();
let client = null;
let starting = null;
let lingerTimer = null;
let lastStatus = 'connecting';
/** The options the session was started with, to tell a tab whose own options differ. */
let sessionOptions = null;
let nextAsk = 1;
/** ask id → { resolve, reject, tab, timer } */
const asks = new Map();

function post(tab, message) {
  try {
    tab.port.postMessage(message);
  } catch {
    // A port whose tab is gone: its lock tells us soon.
  }
}

function toAll(message) {
  for (const tab of tabs.values()) post(tab, message);
}

/** Topics from a tab: strings only, bounded. */
function cleanTopics(list) {
  if (!Array.isArray(list)) return [];
  return list.filter((t) => typeof t === 'string' && t.length > 0 && t.length <= 1024).slice(0, MAX_TOPICS_PER_TAB);
}

/** Adds or removes one tab's topics from the union; the session hears only what changed.
 * Returns the session's refusal of an addition (more topics than its channel budget carries,
 * an invalid name), if any. */
function want(topics, delta) {
  const added = [];
  const removed = [];
  for (const t of topics) {
    const n = (wanted.get(t) ?? 0) + delta;
    if (n <= 0) {
      if (wanted.delete(t)) removed.push(t);
    } else {
      if (!wanted.has(t)) added.push(t);
      wanted.set(t, n);
    }
  }
  if (client) {
    if (added.length) {
      try {
        client.subscribe(added);
      } catch (e) {
        return e;
      }
    }
    if (removed.length) client.unsubscribe(removed);
  }
  return null;
}

/** The session's getToken: one attached tab is asked; if it leaves or does not answer, the
 * next one is. */
function getToken() {
  return new Promise((resolve, reject) => {
    const tried = new Set();
    const ask = () => {
      const tab = [...tabs.entries()].find(([id]) => !tried.has(id));
      if (!tab) {
        reject(new Error(tried.size ? 'no attached tab answered the token request' : 'no tab is attached to ask for a token'));
        return;
      }
      const [id, t] = tab;
      tried.add(id);
      const askId = nextAsk++;
      const timer = setTimeout(() => {
        asks.delete(askId);
        ask();
      }, TOKEN_ASK_MS);
      asks.set(askId, { resolve, reject, tab: id, retry: ask, timer });
      post(t, { type: 'token', ask: askId });
    };
    ask();
  });
}

function answer(tabId, m) {
  const a = asks.get(m.ask);
  if (!a || a.tab !== tabId) return;
  asks.delete(m.ask);
  clearTimeout(a.timer);
  if (m.ok) {
    a.resolve(m.token ?? null);
  } else {
    a.reject(new Error(typeof m.error === 'string' ? m.error : 'getToken() failed in a tab'));
  }
}

function route(type, d) {
  switch (type) {
    case 'notification':
      for (const tab of tabs.values()) {
        if (tab.topics.has(d.topic)) post(tab, { type: 'event', event: type, detail: { topic: d.topic, raw: d.raw } });
      }
      return;
    case 'gap':
      for (const tab of tabs.values()) {
        const mine = d.topics.filter((t) => tab.topics.has(t));
        if (mine.length) post(tab, { type: 'event', event: type, detail: { ...d, topics: mine } });
      }
      return;
    case 'topicrejected':
      for (const tab of tabs.values()) {
        if (tab.topics.has(d.topic)) post(tab, { type: 'event', event: type, detail: d });
      }
      return;
    case 'status':
      lastStatus = d.status;
      toAll({ type: 'event', event: type, detail: d });
      return;
    default:
      toAll({ type: 'event', event: type, detail: d });
  }
}

async function start(options) {
  sessionOptions = JSON.stringify(options ?? {});
  // Read when the session is built, after the wasm has loaded: topics that tabs added or
  // removed meanwhile are in it.
  const c = await createClient({
    ...(options ?? {}),
    getToken,
    get topics() {
      return [...wanted.keys()];
    },
  });
  for (const type of EVENTS) c.addEventListener(type, (e) => route(type, e.detail));
  client = c;
  return c;
}

function attach(port, m) {
  const id = String(m.id ?? '');
  if (!id || tabs.has(id)) {
    port.postMessage({ type: 'refused', reason: 'a tab must attach once, with a fresh id' });
    return;
  }
  if (tabs.size >= MAX_TABS) {
    port.postMessage({ type: 'refused', reason: `this browser already has ${MAX_TABS} tabs on the shared session` });
    return;
  }
  if (lingerTimer !== null) {
    clearTimeout(lingerTimer);
    lingerTimer = null;
  }
  const topics = cleanTopics(m.topics);
  const tab = { port, topics: new Set(topics) };
  tabs.set(id, tab);
  want(tab.topics, +1);
  post(tab, { type: 'attached', status: lastStatus });
  if (client === null && starting === null) {
    starting = start(m.options).catch((e) => {
      toAll({ type: 'event', event: 'fatal', detail: { message: `the shared session did not start: ${e?.message ?? e}` } });
      client = null;
    }).finally(() => {
      starting = null;
    });
  } else if (sessionOptions !== JSON.stringify(m.options ?? {})) {
    post(tab, { type: 'event', event: 'warning', detail: { message: 'the shared session was started by another tab with other options; this tab uses that session' } });
  }
  // The tab holds a lock named for it until it goes away; asking for it here is granted then.
  if (typeof m.lock === 'string' && navigator.locks) {
    navigator.locks.request(m.lock, () => detach(id));
  }
}

function detach(id) {
  const tab = tabs.get(id);
  if (!tab) return;
  tabs.delete(id);
  want(tab.topics, -1);
  try {
    tab.port.close();
  } catch {
    // Already closed.
  }
  // Its unanswered token request goes to another tab.
  for (const [askId, a] of asks) {
    if (a.tab === id) {
      asks.delete(askId);
      clearTimeout(a.timer);
      a.retry();
    }
  }
  if (tabs.size === 0 && lingerTimer === null) {
    lingerTimer = setTimeout(() => {
      lingerTimer = null;
      closeIfIdle();
    }, LINGER_MS);
  }
}

/** Closes the session if no tab is attached; one still starting is closed once it has. */
function closeIfIdle() {
  if (tabs.size > 0) return;
  if (client) {
    client.close();
    client = null;
    lastStatus = 'connecting';
  } else if (starting) {
    starting.then(closeIfIdle);
  }
}

function onMessage(port, id, m) {
  if (typeof m !== 'object' || m === null) return;
  const tab = tabs.get(id);
  switch (m.type) {
    case 'subscribe': {
      if (!tab) return;
      const fresh = [...new Set(cleanTopics(m.topics))].filter((t) => !tab.topics.has(t));
      const room = MAX_TOPICS_PER_TAB - tab.topics.size;
      const take = fresh.slice(0, Math.max(0, room));
      for (const t of take) tab.topics.add(t);
      const refused = want(take, +1);
      if (refused) {
        // Nothing of this request stays: the other tabs' topics are untouched.
        for (const t of take) tab.topics.delete(t);
        want(take, -1);
        post(tab, { type: 'event', event: 'warning', detail: { message: `topics not added: ${refused?.message ?? refused}` } });
        return;
      }
      if (take.length < fresh.length) post(tab, { type: 'event', event: 'warning', detail: { message: `a tab holds at most ${MAX_TOPICS_PER_TAB} topics; ${fresh.length - take.length} not added` } });
      return;
    }
    case 'unsubscribe': {
      if (!tab) return;
      const gone = cleanTopics(m.topics).filter((t) => tab.topics.delete(t));
      want(gone, -1);
      return;
    }
    case 'token-answer':
      answer(id, m);
      return;
    case 'login': {
      if (typeof m.accessToken !== 'string') return;
      // One tab's sign-in serves every tab (each is told `signedin`); a session still
      // starting takes it once it has.
      const login = () => client?.login(m.accessToken, Number(m.expiresIn));
      if (client) login();
      else starting?.then(login);
      return;
    }
    case 'unauthorized':
      // A tab's own API call got a 401 with this token: the session checks it is its own.
      if (typeof m.accessToken === 'string') client?.reportUnauthorized(m.accessToken);
      return;
    case 'detach':
      detach(id);
      return;
    default:
  }
}

function onConnect(e) {
  const port = e.ports[0];
  let id = null;
  port.onmessage = (ev) => {
    const m = ev.data;
    if (id === null) {
      if (m?.type === 'attach') {
        attach(port, m);
        if (tabs.get(String(m.id))?.port === port) id = String(m.id);
      }
      return;
    }
    onMessage(port, id, m);
  };
  port.start();
}

// Only where this runs as a SharedWorker: imported anywhere else (a server render, a test in
// Node) it does nothing.
if (typeof SharedWorkerGlobalScope !== 'undefined' && globalThis instanceof SharedWorkerGlobalScope) {
  globalThis.onconnect = onConnect;
}
