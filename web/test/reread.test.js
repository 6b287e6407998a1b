// Re-reading after a gap (genesys-notify-web/reread) against a client that only emits events
// and a fetch that answers as the test says: which reads run, with what, how often, and what
// the client is told.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { attachRereaders, presence, queueObservations, routingStatus } from '../src/reread.js';

const API = 'https://api.example.test';
const gap = (topics) => ({ topics, from: new Date(1000), to: new Date(2000), fromMs: 1000, toMs: 2000, reason: 'socket_lost' });
const settle = () => new Promise((r) => setTimeout(r, 30));

/** A client that records the re-read events dispatched on it. */
function client() {
  const c = new EventTarget();
  c.seen = [];
  for (const type of ['resync', 'resyncfailed']) c.addEventListener(type, (e) => c.seen.push({ type, ...e.detail }));
  c.gap = (topics) => c.dispatchEvent(new CustomEvent('gap', { detail: gap(topics) }));
  return c;
}

/** A fetch whose answers come from `answer(url, init, n)`; records the calls. */
function stubFetch(answer) {
  const calls = [];
  vi.stubGlobal('fetch', async (url, init) => {
    calls.push({ url, init });
    const a = await answer(url, init, calls.length);
    return new Response(JSON.stringify(a.body ?? null), { status: a.status ?? 200 });
  });
  return calls;
}

const options = { apiBase: `${API}/`, getToken: async () => 'tok-1', readers: [presence, routingStatus, queueObservations], retryMs: 1 };

afterEach(() => vi.unstubAllGlobals());

describe('attachRereaders', () => {
  it('reads a gapped topic once with the token and reports what it read', async () => {
    const calls = stubFetch(() => ({ body: { presenceDefinition: { systemPresence: 'Busy' } } }));
    const c = client();
    attachRereaders(c, options);
    c.gap(['v2.users.u-1.presence', 'v2.users.u-1.routingStatus', 'v2.users.u-1.conversations']);
    await settle();
    expect(calls.map((x) => x.url).sort()).toEqual([`${API}/api/v2/users/u-1/presences/purecloud`, `${API}/api/v2/users/u-1/routingstatus`]);
    for (const { init } of calls) {
      expect(init.headers.authorization).toBe('Bearer tok-1');
      expect(init.redirect).toBe('error');
    }
    expect(c.seen.map((s) => [s.type, s.topic]).sort()).toEqual([
      ['resync', 'v2.users.u-1.presence'],
      ['resync', 'v2.users.u-1.routingStatus'],
    ]);
    const read = c.seen.find((s) => s.topic === 'v2.users.u-1.presence');
    expect(read.data.presenceDefinition.systemPresence).toBe('Busy');
    expect(read.gap).toEqual({ from: new Date(1000), to: new Date(2000), reason: 'socket_lost' });
  });

  it('retries a failing read a bounded number of times, then says so once', async () => {
    const calls = stubFetch((url, init, n) => (n < 3 ? { status: 503 } : { body: { status: 'IDLE' } }));
    const c = client();
    attachRereaders(c, options);
    c.gap(['v2.users.u-2.routingStatus']);
    await settle();
    expect(calls).toHaveLength(3);
    expect(c.seen).toMatchObject([{ type: 'resync', topic: 'v2.users.u-2.routingStatus', data: { status: 'IDLE' } }]);

    const always = stubFetch(() => ({ status: 500 }));
    const d = client();
    attachRereaders(d, { ...options, attempts: 3 });
    d.gap(['v2.users.u-3.presence']);
    await settle();
    expect(always).toHaveLength(3);
    expect(d.seen).toMatchObject([{ type: 'resyncfailed', topic: 'v2.users.u-3.presence', message: 'HTTP 500' }]);
  });

  it('reads once more after a read that a newer gap overtook, never twice at once', async () => {
    let release;
    let inFlight = 0;
    let most = 0;
    const calls = stubFetch(async () => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      await new Promise((r) => {
        release = r;
      });
      inFlight -= 1;
      return { body: { n: calls.length } };
    });
    const c = client();
    attachRereaders(c, options);
    c.gap(['v2.users.u-4.presence']);
    await settle();
    c.gap(['v2.users.u-4.presence']);
    c.gap(['v2.users.u-4.presence']);
    release();
    await settle();
    release();
    await settle();
    expect(calls).toHaveLength(2);
    expect(most).toBe(1);
    expect(c.seen.map((s) => s.data.n)).toEqual([1, 2]);
  });

  it('keeps at most `concurrency` reads in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const calls = stubFetch(async () => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight -= 1;
      return { body: {} };
    });
    const c = client();
    attachRereaders(c, { ...options, concurrency: 2 });
    c.gap(Array.from({ length: 10 }, (_, i) => `v2.users.u${i}.presence`));
    await new Promise((r) => setTimeout(r, 120));
    expect(calls).toHaveLength(10);
    expect(most).toBe(2);
    expect(c.seen.filter((s) => s.type === 'resync')).toHaveLength(10);
  });

  it('asks the queue observations of a queue topic and picks that queue', async () => {
    const calls = stubFetch(() => ({
      body: { results: [{ group: { queueId: 'q-9' }, data: [{ metric: 'oWaiting', stats: { count: 3 } }] }] },
    }));
    const c = client();
    attachRereaders(c, options);
    c.gap(['v2.routing.queues.q-9.conversations']);
    await settle();
    expect(calls[0].url).toBe(`${API}/api/v2/analytics/queues/observations/query`);
    expect(calls[0].init.method).toBe('POST');
    expect(JSON.parse(calls[0].init.body).filter.predicates).toEqual([{ dimension: 'queueId', value: 'q-9' }]);
    expect(c.seen[0].data.data[0].stats.count).toBe(3);
  });

  it('stops when detached: nothing more is read or said', async () => {
    let release;
    const calls = stubFetch(
      () =>
        new Promise((r) => {
          release = () => r({ body: {} });
        }),
    );
    const c = client();
    const detach = attachRereaders(c, options);
    c.gap(['v2.users.u-5.presence']);
    await settle();
    detach();
    release();
    c.gap(['v2.users.u-6.presence']);
    await settle();
    expect(calls).toHaveLength(1);
    expect(c.seen).toEqual([]);
  });

  it('refuses to start without what it needs', () => {
    expect(() => attachRereaders(client(), { readers: [] })).toThrow(/apiBase/);
  });
});
