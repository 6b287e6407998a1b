// The PKCE helper beside another sign-in on the same page (the official SDK's
// loginPKCEGrant, say): a code it did not ask for is left where it is, unredeemed.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createPkceLogin } from '../src/pkce.js';

function login() {
  return createPkceLogin({
    loginBase: 'https://login.example',
    clientId: 'client',
    redirectUri: `${location.origin}/`,
    storage: sessionStorage,
  });
}

afterEach(() => {
  vi.unstubAllGlobals();
  sessionStorage.clear();
  history.replaceState(null, '', '/');
});

describe('completeRedirect', () => {
  it('leaves a code it did not start alone', async () => {
    const fetched = [];
    vi.stubGlobal('fetch', async (url) => {
      fetched.push(String(url));
      return new Response('{}', { status: 500 });
    });
    history.replaceState(null, '', '/?code=the-sdks-code&state=the-sdks-state');
    expect(await login().completeRedirect()).toBe('none');
    expect(location.search).toBe('?code=the-sdks-code&state=the-sdks-state');
    expect(fetched).toEqual([]);
    expect(await login().getToken()).toBe(null);
  });

  it('says none on a page with no code', async () => {
    expect(await login().completeRedirect()).toBe('none');
  });
});
