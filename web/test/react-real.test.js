// The React hooks over a real client: the wasm session and the page driver of src/index.js,
// with the network replaced where a case needs an answer. What the fake client of
// react.test.js cannot show: that what the real client throws or emits on a close, a failed
// session and an invalid topic reaches the hook as state, never as an exception.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createElement as h } from 'react';
import { act, cleanup, renderHook, waitFor } from '@testing-library/react';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createClient } from '../src/index.js';
import { GenesysNotificationsProvider, useGenesysNotifications } from '../src/react.js';

// Vitest runs in web/.
const wasm = join(process.cwd(), 'pkg', 'genesys_notify_wasm_bg.wasm');

/** Lets the hooks' deferred releases and the client's timers run. */
const tick = () => act(() => new Promise((r) => setTimeout(r, 20)));

function wrapper(client) {
  return ({ children }) => h(GenesysNotificationsProvider, { client }, children);
}

/** A client whose getToken has no token (login required): it makes no request at all. */
function signedOut() {
  return createClient({
    apiBase: 'http://127.0.0.1:9',
    getToken: async () => null,
    wasmUrl: readFileSync(wasm),
  });
}

beforeAll(() => {
  if (!existsSync(wasm)) throw new Error(`${wasm} is missing: run bash web/build.sh first`);
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe('useGenesysNotifications over a real client', () => {
  it('reports an invalid topic as error state', async () => {
    const client = await signedOut();
    const { result, unmount } = renderHook(() => useGenesysNotifications(['has space']), { wrapper: wrapper(client) });
    expect(result.current.error?.kind).toBe('subscribe');
    expect(result.current.error?.message).toMatch(/has space/);
    unmount();
    await tick();
    client.close();
  });

  it('reports a close as error state and releases without throwing', async () => {
    const client = await signedOut();
    const { result, unmount } = renderHook(() => useGenesysNotifications(['v2.users.a.presence']), {
      wrapper: wrapper(client),
    });
    expect(result.current.error).toBe(null);
    act(() => client.close());
    await waitFor(() => expect(result.current.status).toBe('closed'));
    expect(result.current.error).toEqual({ kind: 'closed', message: 'the client was closed', topics: [] });
    unmount();
    await tick();
  });

  it('reports a failed session as error state', async () => {
    // The service answers the channel request with a socket address on another host: the
    // session refuses it, retries once, then stops for good.
    const asked = [];
    vi.stubGlobal('fetch', async (url, init) => {
      asked.push(`${init?.method ?? 'GET'} ${new URL(url).pathname}`);
      const body = JSON.stringify({ id: 'streaming-0-test', connectUri: 'wss://elsewhere.example/channels/x' });
      return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } });
    });
    const client = await createClient({
      apiBase: 'http://127.0.0.1:9',
      getToken: async () => ({ accessToken: 'token', expiresIn: 3600 }),
      backoffBaseMs: 10,
      wasmUrl: readFileSync(wasm),
    });
    const { result, unmount } = renderHook(() => useGenesysNotifications(['v2.users.a.presence']), {
      wrapper: wrapper(client),
    });
    await waitFor(() => expect(result.current.status).toBe('failed'), { timeout: 5000 });
    expect(result.current.error?.kind).toBe('fatal');
    expect(result.current.error?.message).toMatch(/elsewhere\.example/);
    expect(asked.filter((a) => a === 'POST /api/v2/notifications/channels')).toHaveLength(2);
    unmount();
    await tick();
  });
});
