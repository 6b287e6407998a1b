// genesys-notify-web/reread: what a gap missed, read again. A gap says which topics were not
// covered and when; a re-reader knows how to read such a topic's current state over REST.
//
//   import { attachRereaders, presence, routingStatus, queueObservations } from 'genesys-notify-web/reread';
//   const detach = attachRereaders(client, {
//     apiBase: 'https://api.mypurecloud.ie',
//     getToken: async () => accessToken,        // the token the app holds (as for its own calls)
//     readers: [presence, routingStatus, queueObservations],
//   });
//   client.addEventListener('resync', (e) => show(e.detail.topic, e.detail.data));
//
// For every topic of every gap that a reader matches, the reader runs (one read per topic at
// a time; a gap that comes during a read runs it once more after), retried a bounded number
// of times, and its answer comes as a `resync` event on the client: `{ topic, data, gap }`.
// A read that keeps failing ends in one `resyncfailed` event: `{ topic, message, gap }`.

/** Reads the whole answer of a REST call as JSON: bounded, no redirects followed (a token
 * never goes to another host), a non-2xx answer is an error that names its status. */
async function getJson(url, token, init, signal) {
  const r = await fetch(url, {
    ...init,
    signal,
    redirect: 'error',
    headers: { ...(init?.headers ?? {}), authorization: `Bearer ${token}`, accept: 'application/json' },
  });
  const text = await r.text();
  if (text.length > MAX_ANSWER_CHARS) throw new Error(`the answer is over ${MAX_ANSWER_CHARS} characters`);
  if (!r.ok) {
    const e = new Error(`HTTP ${r.status}`);
    e.status = r.status;
    throw e;
  }
  return text ? JSON.parse(text) : null;
}

/** An answer read for a re-read is at most this long. */
const MAX_ANSWER_CHARS = 1 << 20;
/** Topics waiting for a re-read at most: past it, a gap's topics get `resyncfailed`. */
const MAX_PENDING = 5000;

/** `v2.users.{id}.presence` → `GET /api/v2/users/{id}/presences/purecloud` (a `UserPresence`). */
export const presence = {
  match: /^v2\.users\.([^.?&/]+)\.presence$/,
  read: ({ match, get }) => get(`/api/v2/users/${encodeURIComponent(match[1])}/presences/purecloud`),
};

/** `v2.users.{id}.routingStatus` → `GET /api/v2/users/{id}/routingstatus` (a `RoutingStatus`). */
export const routingStatus = {
  match: /^v2\.users\.([^.?&/]+)\.routingStatus$/,
  read: ({ match, get }) => get(`/api/v2/users/${encodeURIComponent(match[1])}/routingstatus`),
};

/** `v2.routing.queues.{id}.conversations` → the queue's waiting and interacting counts
 * (`POST /api/v2/analytics/queues/observations/query`; `data` is the queue's
 * `QueueObservationDataContainer`, or null if the service has none for it). */
export const queueObservations = {
  match: /^v2\.routing\.queues\.([^.?&/]+)\.conversations$/,
  read: async ({ match, get }) => {
    const answer = await get('/api/v2/analytics/queues/observations/query', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        filter: { type: 'or', predicates: [{ dimension: 'queueId', value: match[1] }] },
        metrics: ['oWaiting', 'oInteracting'],
      }),
    });
    return answer?.results?.find((r) => r?.group?.queueId === match[1]) ?? null;
  },
};

/**
 * Re-reads the topics of every gap on `client` that one of `readers` matches, and emits what
 * it read as `resync` events on the client. Returns a function that stops it (reads in flight
 * are abandoned).
 * @param {EventTarget} client a client of createClient or createSharedClient
 * @param {object} o
 * @param {string} o.apiBase the API's base URL (`https://api.mypurecloud.ie`)
 * @param {() => Promise<string> | string} o.getToken the access token to read with
 * @param {{ match: RegExp | ((topic: string) => unknown), read: Function }[]} o.readers
 * @param {number} [o.attempts] tries per re-read (4), waiting `retryMs`, doubled each time
 * @param {number} [o.retryMs] (1000)
 * @param {number} [o.concurrency] reads at once at most (4)
 */
export function attachRereaders(client, { apiBase, getToken, readers, attempts = 4, retryMs = 1000, concurrency = 4 }) {
  if (!apiBase || typeof getToken !== 'function' || !Array.isArray(readers)) {
    throw new TypeError('attachRereaders needs apiBase, getToken and readers');
  }
  const base = String(apiBase).replace(/\/+$/, '');
  const tries = Math.min(Math.max(1, Math.floor(attempts)), 10);
  const controller = new AbortController();
  /** topic → { reader, match, gap, again, running } */
  const pending = new Map();
  const queue = [];
  let running = 0;
  let stopped = false;

  const emit = (type, detail) => client.dispatchEvent(new CustomEvent(type, { detail }));
  // A wait between tries that a detach ends at once; its abort listener goes with it.
  const wait = (ms) =>
    new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        controller.signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      controller.signal.addEventListener('abort', done);
    });
  const find = (topic) => {
    for (const reader of readers) {
      const m = typeof reader.match === 'function' ? reader.match(topic) : topic.match(reader.match);
      if (m) return { reader, match: m };
    }
    return null;
  };

  async function run(topic) {
    const job = pending.get(topic);
    if (!job) return;
    running += 1;
    let failure = null;
    for (let i = 0; i < tries && !stopped; i += 1) {
      if (i > 0) await wait(Math.min(retryMs * 2 ** (i - 1), 60000));
      if (stopped) break;
      try {
        const token = await getToken();
        const get = (path, init) => getJson(base + path, token, init, controller.signal);
        const data = await job.reader.read({ topic, match: job.match, get, token, apiBase: base, signal: controller.signal });
        failure = null;
        if (!stopped) emit('resync', { topic, data, gap: job.gap });
        break;
      } catch (e) {
        failure = e;
      }
    }
    if (failure && !stopped) emit('resyncfailed', { topic, message: String(failure?.message ?? failure), gap: job.gap });
    running -= 1;
    if (job.again && !stopped) {
      job.again = false;
      queue.push(topic);
    } else {
      pending.delete(topic);
    }
    next();
  }

  function next() {
    while (!stopped && running < concurrency && queue.length) run(queue.shift());
  }

  const onGap = (e) => {
    const { topics, from, to, reason } = e.detail;
    const gap = { from, to, reason };
    for (const topic of topics) {
      const job = pending.get(topic);
      if (job) {
        // A read is queued or running: it runs once more with the newer gap.
        job.gap = gap;
        job.again ||= queue.indexOf(topic) < 0;
        continue;
      }
      const found = find(topic);
      if (!found) continue;
      if (pending.size >= MAX_PENDING) {
        emit('resyncfailed', { topic, message: `more than ${MAX_PENDING} topics wait for a re-read`, gap });
        continue;
      }
      pending.set(topic, { ...found, gap, again: false });
      queue.push(topic);
    }
    next();
  };
  client.addEventListener('gap', onGap);
  return () => {
    stopped = true;
    client.removeEventListener('gap', onGap);
    controller.abort();
    pending.clear();
    queue.length = 0;
  };
}
