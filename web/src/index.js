// genesys-notify-web: the genesys-notify session in the browser. The session itself is the
// Rust core compiled to wasm (../pkg); this file only moves bytes between it and the
// browser's fetch, WebSocket and timers. Every decision is the session's.

import init, { Driver } from '../pkg/genesys_notify_wasm.js';

/** In a visible page, nothing at all running for this long past a timer's wake-up means the
 * page (or the machine) was asleep: a suspend. */
const LATE_MS = 5000;
/** The same for a hidden page, whose timers Chromium throttles: to once a second, and after
 * five minutes hidden to once a minute. Later than that, it was frozen. */
const HIDDEN_LATE_MS = 75000;
/** The largest HTTP answer body read; a hostile server cannot make the page hold more. */
const MAX_BODY = 4 << 20;
/** An HTTP exchange is abandoned after this (the session has long timed it out by then). */
const FETCH_TIMEOUT_MS = 60000;

let loading = null;

/** Loads the wasm session once per page. */
function load(wasmUrl) {
  loading ??= init(wasmUrl === undefined ? undefined : { module_or_path: wasmUrl });
  return loading;
}

/**
 * Starts a session: `await createClient({ region | apiBase, getToken, topics })`.
 * Events: `notification`, `gap`, `status`, `topicrejected`, `loginsoon` (getToken() had
 * no new token while the current one still works: a login() before it ends loses nothing),
 * `loginrequired`, `signedin` (after `login()`), `warning`, `tokenrotated`, `fatal`, and `resumed` after the page was
 * frozen (each a CustomEvent with `detail`).
 */
export async function createClient(options) {
  await load(options?.wasmUrl);
  return new Client(options);
}

async function readCapped(response) {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > MAX_BODY) {
      await reader.cancel();
      throw new Error(`answer larger than ${MAX_BODY} bytes`);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return new TextDecoder().decode(all);
}

export class Client extends EventTarget {
  /** 'per-tab': this session is this page's own (see shared.js for one per browser). */
  mode = 'per-tab';
  /** Why a shared session was asked for and this one runs instead; null if none was. */
  fallbackReason = null;
  #driver;
  #sockets = new Map();
  #opened = new Set();
  #timer = null;
  /** performance.now() at which the timer is due. */
  #due = null;
  /** performance.now() of the last callback of any kind. */
  #lastEntry = performance.now();
  /** Time the page was frozen, which the session clock does not count. */
  #frozen = 0;
  #start;
  #getToken;
  #onLoginRequired;
  #tokenInFlight = null;
  #status = 'connecting';
  /** The frame being fed in: a notification that is exactly it comes back as `same`. */
  #lastFrame = null;
  #lateMs;
  #hiddenLateMs;
  /** performance.now() at the page's `freeze` event, until its `resume`. */
  #frozenAt = null;
  #onFreeze = () => {
    this.#frozenAt = performance.now();
  };
  /** Measured exactly (in `#enter`, as for anything that runs after a `freeze`): the
   * lateness of the timer that fires next is not counted again. */
  #onResume = () => {
    if (this.#frozenAt !== null) this.#pump();
  };

  constructor(options) {
    super();
    const {
      getToken,
      onLoginRequired,
      topics = [],
      seed,
      wasmUrl,
      lateMs = LATE_MS,
      hiddenLateMs = HIDDEN_LATE_MS,
      ...rest
    } = options ?? {};
    if (typeof getToken !== 'function') {
      throw new TypeError('createClient needs getToken: async () => ({ accessToken, expiresIn })');
    }
    this.#getToken = getToken;
    this.#onLoginRequired = onLoginRequired;
    this.#lateMs = Number(lateMs);
    this.#hiddenLateMs = Number(hiddenLateMs);
    // Chromium says when it freezes a page and when it lets it go on (Page Lifecycle).
    if (typeof document !== 'undefined') {
      document.addEventListener('freeze', this.#onFreeze);
      document.addEventListener('resume', this.#onResume);
    }
    this.#start = performance.now();
    const opts = { ...rest, topics };
    this.#driver = new Driver(
      JSON.stringify(opts),
      0,
      seed ?? Math.floor(Math.random() * 2 ** 31),
    );
    this.#pump();
  }

  /** Where the session stands: connecting, live, recovering, login_required, closed, failed. */
  get status() {
    return this.#status;
  }

  /** The wall-clock time of a session instant (milliseconds on the session clock): the
   * freezes that ended before it are added back. */
  toDate(ms) {
    return new Date(performance.timeOrigin + this.#start + this.#driver.slept_before_ms(ms) + ms);
  }

  /** Adds topics; the whole set is subscribed again. */
  subscribe(topics) {
    this.#driver.subscribe(this.#enter(), JSON.stringify([...topics]));
    this.#pump();
  }

  /** Removes topics. */
  unsubscribe(topics) {
    this.#driver.unsubscribe(this.#enter(), JSON.stringify([...topics]));
    this.#pump();
  }

  /**
   * The application's own API call with `accessToken` (an SDK call, a REST read) was answered
   * 401. If that is the session's token, the session drops it and fetches one new token
   * through getToken(), however many report it; a report about an older token is ignored.
   */
  reportUnauthorized(accessToken) {
    this.#driver.report_unauthorized(this.#enter(), String(accessToken));
    this.#pump();
  }

  /** A token from a new login, after `loginrequired`. */
  login(accessToken, expiresIn) {
    this.#driver.login(this.#enter(), String(accessToken), Number(expiresIn));
    this.#pump();
    // Prompts for a login (after `loginsoon` or `loginrequired`) can go.
    this.dispatchEvent(new CustomEvent('signedin', { detail: {} }));
  }

  /** Closes every socket with 1000 and stops; what was still uncovered is reported first. */
  close() {
    if (typeof document !== 'undefined') {
      document.removeEventListener('freeze', this.#onFreeze);
      document.removeEventListener('resume', this.#onResume);
    }
    this.#driver.close(this.#enter());
    this.#pump();
  }

  #now() {
    return performance.now() - this.#start - this.#frozen;
  }

  /**
   * Every callback enters here. A timer that should have fired long ago means the page was
   * frozen: that time is kept off the session clock and reported as a suspend, before
   * anything that happened meanwhile is fed in, so a healthy socket is never judged by a
   * timer that ran late.
   */
  #enter() {
    const t = performance.now();
    // Anything running after the page's `freeze` event means it runs again, whether or not
    // its `resume` event came first.
    if (this.#frozenAt !== null) {
      const slept = t - this.#frozenAt;
      this.#frozenAt = null;
      this.#lastEntry = t;
      this.#due = null;
      this.#suspended(slept);
    }
    // Frozen: nothing at all ran for this long past the wake-up. A hidden page's timers run
    // late by design, so only lateness beyond Chromium's throttling counts there; and a page
    // whose socket callbacks keep coming is running, however late its timers are.
    const hidden = typeof document !== 'undefined' && document.visibilityState === 'hidden';
    const limit = hidden ? this.#hiddenLateMs : this.#lateMs;
    const quietSince = this.#due === null ? null : Math.max(this.#due, this.#lastEntry);
    this.#lastEntry = t;
    if (quietSince !== null && t - quietSince > limit) {
      this.#due = null;
      this.#suspended(t - quietSince);
    }
    return this.#now();
  }

  /** `late` ms passed without the page running: kept off the session clock, a suspend. */
  #suspended(late) {
    this.#frozen += late;
    this.#driver.resumed(this.#now(), late);
    this.dispatchEvent(new CustomEvent('resumed', { detail: { sleptMs: late } }));
  }

  #pump() {
    // Also here: a freeze can fall between a callback's start and its pump (in the middle of
    // a promise chain); the lateness must be seen before the timer is set again.
    this.#enter();
    const out = JSON.parse(this.#driver.drain());
    for (const a of out.do) this.#perform(a);
    for (const e of out.events) this.#emit(e);
    this.#schedule(out.wakeMs);
  }

  #schedule(wakeMs) {
    if (wakeMs === null || wakeMs === undefined) {
      if (this.#timer !== null) clearTimeout(this.#timer);
      this.#timer = null;
      this.#due = null;
      return;
    }
    const delay = Math.max(0, wakeMs - this.#now());
    const due = performance.now() + delay;
    // A timer already set to fire no later is kept: the wake-up moves with every frame, and
    // an early one costs the session nothing (it wakes, finds nothing due, and says when).
    if (this.#timer !== null && this.#due !== null && this.#due <= due) return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#due = due;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      const now = this.#enter();
      this.#due = null;
      this.#driver.timeout(now);
      this.#pump();
    }, delay);
  }

  #perform(a) {
    switch (a.kind) {
      case 'http':
        this.#http(a);
        break;
      case 'token':
        this.#token(a.req);
        break;
      case 'connect':
        this.#connect(a.conn, a.url);
        break;
      case 'send':
        this.#sockets.get(a.conn)?.send(a.text);
        break;
      case 'close': {
        const ws = this.#sockets.get(a.conn);
        this.#sockets.delete(a.conn);
        this.#opened.delete(a.conn);
        if (ws) {
          ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
          ws.close(a.code);
        }
        break;
      }
      default:
        this.#emit({ type: 'warning', message: `unknown action ${a.kind}` });
    }
  }

  #http(a) {
    const headers = new Headers();
    for (const [name, value] of a.headers) headers.set(name, value);
    fetch(a.url, {
      method: a.method,
      headers,
      body: a.body ?? undefined,
      // Never follow a redirect, with credentials or not: it is refused by the session.
      redirect: 'manual',
      cache: 'no-store',
      credentials: 'omit',
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    })
      .then(async (r) => {
        if (r.type === 'opaqueredirect') {
          this.#driver.http_answer(this.#enter(), a.id, 302, undefined, undefined, undefined, '');
          return;
        }
        const body = await readCapped(r);
        const h = (n) => r.headers.get(n) ?? undefined;
        this.#driver.http_answer(
          this.#enter(),
          a.id,
          r.status,
          h('retry-after'),
          // A cross-origin answer's Date is readable only if the server exposes it; the
          // session measures a channel's life from it, so the page's own clock stands in.
          h('date') ?? new Date().toUTCString(),
          h('location'),
          body,
        );
      })
      .catch((e) => this.#driver.http_failed(this.#enter(), a.id, String(e?.message ?? e)))
      .finally(() => this.#pump());
  }

  /** Single flight: one getToken() at a time, whatever asks for it. */
  #token(req) {
    this.#tokenInFlight ??= Promise.resolve()
      .then(() => this.#getToken())
      .finally(() => {
        this.#tokenInFlight = null;
      });
    this.#tokenInFlight
      .then((t) => {
        const now = this.#enter();
        if (t === null || t === undefined) {
          this.#driver.token_failed(now, req, 'getToken() has no token without a new login', false);
        } else if (typeof t.accessToken !== 'string' || !(Number(t.expiresIn) > 0)) {
          this.#driver.token_failed(now, req, 'getToken() must return { accessToken, expiresIn }', false);
        } else {
          this.#driver.token_issued(now, req, t.accessToken, Number(t.expiresIn));
        }
      })
      .catch((e) => this.#driver.token_failed(this.#enter(), req, String(e?.message ?? e), true))
      .finally(() => this.#pump());
  }

  #connect(conn, url) {
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      this.#driver.connect_failed(this.#enter(), conn, String(e?.message ?? e));
      queueMicrotask(() => this.#pump());
      return;
    }
    this.#sockets.set(conn, ws);
    ws.onopen = () => {
      this.#opened.add(conn);
      this.#driver.opened(this.#enter(), conn);
      this.#pump();
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return;
      this.#lastFrame = ev.data;
      // Most frames only deliver themselves (or nothing): the driver says so, and there is
      // nothing to drain, no action, and no earlier wake-up.
      const topic = this.#driver.frame(this.#enter(), conn, ev.data);
      if (topic === undefined) {
        this.#pump();
      } else if (topic !== '') {
        this.#emit({ type: 'notification', topic, same: true });
      }
      this.#lastFrame = null;
    };
    ws.onclose = (ev) => {
      this.#sockets.delete(conn);
      const now = this.#enter();
      if (this.#opened.delete(conn)) {
        this.#driver.closed(now, conn, ev.code, ev.reason ?? '');
      } else {
        this.#driver.connect_failed(now, conn, `closed with ${ev.code} before opening`);
      }
      this.#pump();
    };
  }

  #emit(e) {
    let detail;
    switch (e.type) {
      case 'notification': {
        const raw = e.same ? this.#lastFrame : e.raw;
        detail = {
          topic: e.topic,
          raw,
          get data() {
            return JSON.parse(raw);
          },
        };
        break;
      }
      case 'gap':
        detail = { ...e, from: this.toDate(e.fromMs), to: this.toDate(e.toMs) };
        break;
      case 'status':
        this.#status = e.status;
        detail = e;
        break;
      case 'loginrequired':
        detail = e;
        this.#onLoginRequired?.(e);
        break;
      default:
        detail = e;
    }
    this.dispatchEvent(new CustomEvent(e.type, { detail }));
  }
}
