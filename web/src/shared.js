// One session for every tab: `await createSharedClient({ apiBase | region, getToken, topics })`
// attaches this tab to the origin's SharedWorker (worker.js), which holds the only channel.
// Where a browser has no SharedWorker, or the worker does not start within 10 s, the tab runs
// its own session instead and says so: `client.mode` is 'per-tab', `client.fallbackReason`
// and a `warning` event name the reason.

import { createClient } from './index.js';

/** The worker's name: every tab of the origin that uses it shares one session. */
const WORKER_NAME = 'genesys-notify';

function newId() {
  return globalThis.crypto?.randomUUID?.() ?? `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

/**
 * Attaches this tab to the shared session (or, without SharedWorker, starts one of its
 * own). Options as for `createClient`, plus `workerUrl` (where worker.js is served, by
 * default beside this file) and `shared: false` to force a session per tab. Only plain data
 * reaches the worker; `getToken` and `onLoginRequired` stay in the tab.
 */
export async function createSharedClient(options) {
  const { getToken, workerUrl, shared = true } = options ?? {};
  if (typeof getToken !== 'function') {
    throw new TypeError('createSharedClient needs getToken: async () => ({ accessToken, expiresIn })');
  }
  let why = !shared
    ? 'shared: false was asked for'
    : typeof SharedWorker === 'undefined'
      ? 'this browser has no SharedWorker'
      : null;
  if (why === null) {
    try {
      return await attachShared(options, workerUrl);
    } catch (e) {
      why = `the shared worker did not start (${e?.message ?? e})`;
    }
  }
  const { workerUrl: _url, shared: _shared, ...own } = options;
  const c = await createClient(own);
  c.fallbackReason = why;
  // After the caller's `await` has returned and its listeners are on.
  setTimeout(() =>
    c.dispatchEvent(new CustomEvent('warning', { detail: { message: `one session per tab: ${why}; each tab opens its own channel` } })),
  );
  return c;
}

/** How long a tab waits for the worker to take it on before it runs a session of its own. */
const ATTACH_TIMEOUT_MS = 10000;

async function attachShared(options, workerUrl) {
  // Written out in full so that bundlers (Vite, webpack) see the worker and bundle it.
  // `extendedLifetime` (Chromium 148 and later) keeps the worker, and so the channel, through
  // a reload of the last tab; the worker closes the session itself 5 s after its last tab.
  const worker = workerUrl
    ? new SharedWorker(workerUrl, { type: 'module', name: WORKER_NAME, extendedLifetime: true })
    : // The name is WORKER_NAME, spelled out: a bundler reads these options as they are written.
      new SharedWorker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'genesys-notify', extendedLifetime: true });
  const client = new SharedClient(worker.port, options);
  let timer;
  const failed = new Promise((_, reject) => {
    // A worker script that cannot be fetched or does not run (a 404, a CSP refusal).
    worker.onerror = (e) => reject(new Error(e?.message || 'its script did not load'));
    timer = setTimeout(() => reject(new Error(`no answer within ${ATTACH_TIMEOUT_MS / 1000} s`)), ATTACH_TIMEOUT_MS);
  });
  try {
    await Promise.race([client.attached, failed]);
  } catch (e) {
    client.close();
    throw e;
  } finally {
    clearTimeout(timer);
    worker.onerror = null;
  }
  return client;
}

/** Only what structured clone carries, and what the session reads. */
function sessionOptions(options) {
  const { getToken, onLoginRequired, workerUrl, shared, topics, ...rest } = options ?? {};
  return JSON.parse(JSON.stringify(rest));
}

export class SharedClient extends EventTarget {
  #port;
  #getToken;
  #onLoginRequired;
  #status = 'connecting';
  #release = null;
  #closed = false;
  /** Resolves once the worker has taken this tab on; rejects if it refused. */
  attached;

  constructor(port, options) {
    super();
    this.#port = port;
    this.#getToken = options.getToken;
    this.#onLoginRequired = options.onLoginRequired;
    const id = newId();
    const lock = `genesys-notify-tab:${id}`;
    let ok;
    let refused;
    this.attached = new Promise((resolve, reject) => {
      ok = resolve;
      refused = reject;
    });
    port.onmessage = (ev) => this.#message(ev.data, ok, refused);
    port.start();
    const attach = () =>
      port.postMessage({
        type: 'attach',
        id,
        lock,
        topics: [...(options.topics ?? [])],
        options: sessionOptions(options),
      });
    // The lock is held for as long as this tab lives; the worker asks for it too, and gets
    // it when the tab is closed, crashes or is discarded: then it drops this tab's topics.
    if (navigator.locks) {
      navigator.locks.request(lock, () => {
        attach();
        return new Promise((r) => {
          this.#release = r;
        });
      });
    } else {
      // Without Web Locks the worker learns of a closing tab only from the tab itself.
      addEventListener('pagehide', (e) => {
        if (!e.persisted) this.close();
      });
      attach();
    }
  }

  /** 'shared': this tab uses the browser's one session. */
  get mode() {
    return 'shared';
  }

  /** Where the session stands: connecting, live, recovering, login_required, closed, failed. */
  get status() {
    return this.#status;
  }

  /** Adds topics to this tab's set (the session subscribes the union of every tab's). */
  subscribe(topics) {
    this.#send({ type: 'subscribe', topics: [...topics] });
  }

  /** Removes topics from this tab's set. */
  unsubscribe(topics) {
    this.#send({ type: 'unsubscribe', topics: [...topics] });
  }

  /** This tab's own API call with `accessToken` was answered 401: as `Client`'s, for the
   * shared session (one refresh, however many tabs report it). */
  reportUnauthorized(accessToken) {
    this.#send({ type: 'unauthorized', accessToken: String(accessToken) });
  }

  /** A token from a new login, after `loginrequired` (it serves every tab). */
  login(accessToken, expiresIn) {
    this.#send({ type: 'login', accessToken: String(accessToken), expiresIn: Number(expiresIn) });
  }

  /** Leaves the shared session: this tab's topics are released. The session itself closes
   * when the last tab has left (after a few seconds, in case one comes back). */
  close() {
    if (this.#closed) return;
    this.#send({ type: 'detach' });
    this.#closed = true;
    this.#release?.();
    this.#port.close();
    this.#status = 'closed';
    this.dispatchEvent(new CustomEvent('status', { detail: { type: 'status', status: 'closed' } }));
  }

  #send(m) {
    if (!this.#closed) this.#port.postMessage(m);
  }

  #message(m, ok, refused) {
    switch (m?.type) {
      case 'attached':
        this.#status = m.status;
        ok();
        return;
      case 'refused':
        this.#closed = true;
        refused(new Error(m.reason));
        return;
      case 'token':
        this.#answerToken(m.ask);
        return;
      case 'event':
        this.#emit(m.event, m.detail);
        return;
      default:
    }
  }

  async #answerToken(ask) {
    try {
      const t = await this.#getToken();
      const token = t === null || t === undefined ? null : { accessToken: t.accessToken, expiresIn: t.expiresIn };
      this.#send({ type: 'token-answer', ask, ok: true, token });
    } catch (e) {
      this.#send({ type: 'token-answer', ask, ok: false, error: String(e?.message ?? e) });
    }
  }

  #emit(type, d) {
    let detail = d;
    if (type === 'notification') {
      const raw = d.raw;
      detail = {
        topic: d.topic,
        raw,
        get data() {
          return JSON.parse(raw);
        },
      };
    } else if (type === 'status') {
      this.#status = d.status;
    } else if (type === 'loginrequired') {
      this.#onLoginRequired?.(d);
    }
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
