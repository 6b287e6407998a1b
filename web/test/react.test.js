// The React hook's lifecycle against a client that records what it was asked: mount, topic
// change, unmount, Strict Mode's double effects, two components sharing a topic, routing of
// notifications and gaps to the components whose topics they are.
import { createElement as h, useEffect, useState } from 'react';
import { act, cleanup, render, renderHook, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { GenesysNotificationsProvider, useGenesysNotifications, useGenesysStatus } from '../src/react.js';

/** A client as the hooks see it, recording subscribe/unsubscribe calls. */
class RecordingClient extends EventTarget {
  status = 'live';
  mode = 'shared';
  calls = [];
  subscribe(topics) {
    this.calls.push(['subscribe', [...topics].sort()]);
  }
  unsubscribe(topics) {
    this.calls.push(['unsubscribe', [...topics].sort()]);
  }
  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
  notify(topic, seq) {
    const raw = JSON.stringify({ topicName: topic, eventBody: { seq } });
    this.emit('notification', { topic, raw });
  }
}

/** Lets the hooks' deferred releases run. */
const tick = () => act(() => new Promise((r) => setTimeout(r, 5)));

function wrapper(client) {
  return ({ children }) => h(GenesysNotificationsProvider, { client }, children);
}

afterEach(cleanup);

describe('useGenesysNotifications', () => {
  it('subscribes on mount and unsubscribes on unmount', async () => {
    const client = new RecordingClient();
    const { result, unmount } = renderHook(() => useGenesysNotifications(['a', 'b']), { wrapper: wrapper(client) });
    expect(client.calls).toEqual([['subscribe', ['a', 'b']]]);
    expect(result.current.status).toBe('live');
    expect(result.current.mode).toBe('shared');
    unmount();
    await tick();
    expect(client.calls).toEqual([
      ['subscribe', ['a', 'b']],
      ['unsubscribe', ['a', 'b']],
    ]);
  });

  it('sends nothing for Strict Mode double effects', async () => {
    const client = new RecordingClient();
    const strictRuns = [];
    const { unmount } = renderHook(() => {
      // Proof that this render runs effects twice, as Strict Mode does in development.
      useEffect(() => {
        strictRuns.push('mount');
        return () => strictRuns.push('cleanup');
      }, []);
      return useGenesysNotifications(['a']);
    }, {
      wrapper: wrapper(client),
      reactStrictMode: true,
    });
    await tick();
    // Strict Mode mounted, unmounted and mounted again: one subscription, no release.
    expect(strictRuns).toEqual(['mount', 'cleanup', 'mount']);
    expect(client.calls).toEqual([['subscribe', ['a']]]);
    unmount();
    await tick();
    expect(client.calls).toEqual([
      ['subscribe', ['a']],
      ['unsubscribe', ['a']],
    ]);
  });

  it('moves only the topics that changed, and ignores a new array of the same topics', async () => {
    const client = new RecordingClient();
    const { rerender } = renderHook(({ topics }) => useGenesysNotifications(topics), {
      wrapper: wrapper(client),
      initialProps: { topics: ['a', 'b'] },
    });
    rerender({ topics: ['b', 'a'] });
    await tick();
    expect(client.calls).toEqual([['subscribe', ['a', 'b']]]);
    rerender({ topics: ['b', 'c'] });
    await tick();
    expect(client.calls).toEqual([
      ['subscribe', ['a', 'b']],
      ['subscribe', ['c']],
      ['unsubscribe', ['a']],
    ]);
  });

  it('keeps a topic that another mounted component still holds', async () => {
    const client = new RecordingClient();
    const first = renderHook(() => useGenesysNotifications(['shared', 'x']), { wrapper: wrapper(client) });
    renderHook(() => useGenesysNotifications(['shared']), { wrapper: wrapper(client) });
    first.unmount();
    await tick();
    expect(client.calls).toEqual([
      ['subscribe', ['shared', 'x']],
      ['unsubscribe', ['x']],
    ]);
  });

  it('gives each component its own topics, newest first, bounded by keep', () => {
    const client = new RecordingClient();
    const seen = [];
    const a = renderHook(() => useGenesysNotifications(['a'], { keep: 2, onNotification: (d) => seen.push(d.topic) }), {
      wrapper: wrapper(client),
    });
    const b = renderHook(() => useGenesysNotifications(['b']), { wrapper: wrapper(client) });
    act(() => {
      client.notify('a', 1);
      client.notify('b', 1);
      client.notify('a', 2);
      client.notify('a', 3);
    });
    expect(a.result.current.events.map((e) => JSON.parse(e.raw).eventBody.seq)).toEqual([3, 2]);
    expect(a.result.current.events[0].topic).toBe('a');
    expect(b.result.current.events.map((e) => e.topic)).toEqual(['b']);
    expect(seen).toEqual(['a', 'a', 'a']);
  });

  it('holds a gap of its own topics until it is resolved', () => {
    const client = new RecordingClient();
    const { result } = renderHook(() => useGenesysNotifications(['a', 'b']), { wrapper: wrapper(client) });
    const from = new Date(1000);
    const to = new Date(2000);
    act(() => {
      client.emit('gap', { topics: ['a', 'z'], from, to, reason: 'socket_lost' });
      client.emit('gap', { topics: ['z'], from, to, reason: 'socket_lost' });
    });
    expect(result.current.gaps).toHaveLength(1);
    expect(result.current.gaps[0].topics).toEqual(['a']);
    act(() => result.current.resolveGap(result.current.gaps[0]));
    expect(result.current.gaps).toEqual([]);
  });

  it('marks its gapped topics stale until each is read again, then the gap is over', () => {
    const client = new RecordingClient();
    const resynced = [];
    const { result } = renderHook(() => useGenesysNotifications(['a', 'b', 'c'], { onResync: (d) => resynced.push(d.topic) }), {
      wrapper: wrapper(client),
    });
    const from = new Date(1000);
    const to = new Date(2000);
    act(() => client.emit('gap', { topics: ['a', 'b', 'z'], from, to, reason: 'socket_lost' }));
    expect(result.current.stale.sort()).toEqual(['a', 'b']);
    const gapOf = { from, to, reason: 'socket_lost' };
    act(() => {
      client.emit('resync', { topic: 'a', data: {}, gap: gapOf });
      client.emit('resync', { topic: 'z', data: {}, gap: gapOf });
    });
    expect(result.current.stale).toEqual(['b']);
    expect(result.current.gaps).toHaveLength(1);
    act(() => client.emit('resync', { topic: 'b', data: {}, gap: gapOf }));
    expect(result.current.stale).toEqual([]);
    expect(result.current.gaps).toEqual([]);
    expect(resynced).toEqual(['a', 'b']);
  });

  it('follows the status and the login-required prompt', () => {
    const client = new RecordingClient();
    const { result } = renderHook(() => useGenesysNotifications(['a']), { wrapper: wrapper(client) });
    act(() => {
      client.emit('status', { status: 'login_required' });
      client.emit('loginrequired', { reason: 'refresh token revoked', sinceMs: 5 });
    });
    expect(result.current.status).toBe('login_required');
    expect(result.current.loginRequired.reason).toBe('refresh token revoked');
    act(() => client.emit('status', { status: 'live' }));
    expect(result.current.loginRequired).toBe(null);
  });

  it('waits for a client that is still loading, then subscribes', async () => {
    const client = new RecordingClient();
    function App() {
      const [c, setC] = useState(null);
      return h(
        GenesysNotificationsProvider,
        { client: c },
        h('button', { onClick: () => setC(client) }, 'load'),
        h(Status),
      );
    }
    function Status() {
      const { status } = useGenesysNotifications(['a']);
      return h('p', { 'data-testid': 'status' }, status);
    }
    render(h(App));
    expect(screen.getByTestId('status').textContent).toBe('connecting');
    expect(client.calls).toEqual([]);
    act(() => screen.getByText('load').click());
    expect(client.calls).toEqual([['subscribe', ['a']]]);
    expect(screen.getByTestId('status').textContent).toBe('live');
  });

  it('turns a refused subscribe into error state, and releases nothing it did not hold', async () => {
    const client = new RecordingClient();
    client.subscribe = (topics) => {
      throw new Error(`invalid topic ${[...topics][0]}`);
    };
    const { result, unmount } = renderHook(() => useGenesysNotifications(['has space']), { wrapper: wrapper(client) });
    expect(result.current.error).toEqual({ kind: 'subscribe', message: 'invalid topic has space', topics: ['has space'] });
    unmount();
    await tick();
    expect(client.calls).toEqual([]);
  });

  it('reports a rejected topic of its own, and a fatal error, as error state', () => {
    const client = new RecordingClient();
    const mine = renderHook(() => useGenesysNotifications(['a', 'b']), { wrapper: wrapper(client) });
    const other = renderHook(() => useGenesysNotifications(['c']), { wrapper: wrapper(client) });
    act(() => client.emit('topicrejected', { topic: 'b', reason: 'forbidden' }));
    expect(mine.result.current.error).toEqual({ kind: 'rejected', message: 'forbidden', topics: ['b'] });
    expect(other.result.current.error).toBe(null);
    act(() => {
      client.status = 'failed';
      client.emit('fatal', { message: 'connectUri refused' });
      client.emit('status', { status: 'failed' });
    });
    expect(other.result.current.error).toEqual({ kind: 'fatal', message: 'connectUri refused', topics: [] });
    expect(other.result.current.status).toBe('failed');
  });

  it('survives a client closed under it: error state, and no throw from the delayed release', async () => {
    const client = new RecordingClient();
    const { result, unmount } = renderHook(() => useGenesysNotifications(['a']), { wrapper: wrapper(client) });
    act(() => {
      client.status = 'closed';
      client.unsubscribe = () => {
        throw new Error('the client is closed');
      };
      client.emit('status', { status: 'closed' });
    });
    expect(result.current.error).toEqual({ kind: 'closed', message: 'the client was closed', topics: [] });
    unmount();
    await tick();
    expect(client.calls).toEqual([['subscribe', ['a']]]);
  });

  it('follows the status alone without subscribing anything', () => {
    const client = new RecordingClient();
    const { result } = renderHook(() => useGenesysStatus(), { wrapper: wrapper(client) });
    expect(result.current.status).toBe('live');
    act(() => client.emit('status', { status: 'recovering' }));
    expect(result.current.status).toBe('recovering');
    expect(result.current.error).toBe(null);
    expect(client.calls).toEqual([]);
  });

  it('forgets the failed client when the provider gets a new one', () => {
    const failed = new RecordingClient();
    const fresh = new RecordingClient();
    let current = failed;
    const { result, rerender } = renderHook(() => useGenesysStatus(), {
      wrapper: ({ children }) => h(GenesysNotificationsProvider, { client: current }, children),
    });
    act(() => failed.emit('fatal', { message: 'connectUri refused' }));
    expect(result.current.error?.kind).toBe('fatal');
    current = fresh;
    rerender();
    expect(result.current.error).toBe(null);
    expect(result.current.client).toBe(fresh);
  });
});
