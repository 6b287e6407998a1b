// A page's login to Genesys Cloud: the authorization-code grant with PKCE (RFC 7636). A page
// holds no client secret and gets no refresh token, so when its token runs out the user signs
// in again; `popup()` does that without leaving the page, and the session keeps running.
//
//   const auth = createPkceLogin({ loginBase, clientId, redirectUri });
//   if (await auth.completeRedirect() === 'popup') return; // this window was the login popup
//   if (!(await auth.getToken())) return auth.start();     // first visit: go and sign in
//   const client = await createClient({ region, topics, getToken: auth.getToken });
//   signInButton.onclick = async () => { const t = await auth.popup(); client.login(t.accessToken, t.expiresIn); };

const KEY = 'genesys-notify-pkce';
const POPUP = 'popup.';
/** A sign-in popup left open this long is given up on (and closed). */
const POPUP_LIMIT_MS = 10 * 60 * 1000;

function randomText(bytes) {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return base64url(b);
}

function base64url(bytes) {
  let s = '';
  for (const x of bytes) s += String.fromCharCode(x);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function challengeOf(verifier) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/**
 * @param {object} o
 * @param {string} o.loginBase   `https://login.<region domain>` (the simulator's own address for tests)
 * @param {string} o.clientId    the OAuth client (grant type "Code Authorization" with PKCE)
 * @param {string} o.redirectUri registered for the client, exactly as sent
 * @param {Storage} [o.storage]  where the pending login and the token live (sessionStorage)
 * @param {number} [o.minLifeSeconds] a stored token with less life left is not handed out (60)
 */
export function createPkceLogin({ loginBase, clientId, redirectUri, storage = sessionStorage, minLifeSeconds = 60 }) {
  if (!loginBase || !clientId || !redirectUri) {
    throw new TypeError('createPkceLogin needs loginBase, clientId and redirectUri');
  }
  const base = loginBase.replace(/\/+$/, '');
  const read = () => {
    try {
      return JSON.parse(storage.getItem(KEY) ?? '{}');
    } catch {
      return {};
    }
  };
  const write = (v) => storage.setItem(KEY, JSON.stringify(v));

  async function authorizeUrl(state, verifier) {
    const q = new URLSearchParams({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: redirectUri,
      code_challenge: await challengeOf(verifier),
      code_challenge_method: 'S256',
      state,
    });
    return `${base}/oauth/authorize?${q}`;
  }

  async function exchange(code, verifier) {
    const r = await fetch(`${base}/oauth/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        code_verifier: verifier,
        client_id: clientId,
        redirect_uri: redirectUri,
      }),
      credentials: 'omit',
      redirect: 'error',
    });
    const body = await r.json().catch(() => ({}));
    if (!r.ok || typeof body.access_token !== 'string') {
      throw new Error(`sign-in refused: HTTP ${r.status} ${String(body.error ?? '').slice(0, 100)}`);
    }
    const token = { accessToken: body.access_token, expiresIn: Number(body.expires_in) };
    write({ ...read(), token: { ...token, expiresAt: Date.now() + token.expiresIn * 1000 } });
    return token;
  }

  return {
    /** Goes to the login page; the browser comes back to `redirectUri` with a code. */
    async start() {
      const state = randomText(16);
      const verifier = randomText(48);
      write({ ...read(), pending: { state, verifier } });
      location.assign(await authorizeUrl(state, verifier));
    },

    /**
     * Call first on every load. Back from the login page: redeems the code and takes it off
     * the address bar ('signed-in'). In the login popup: hands the code to the page that
     * opened it and closes ('popup'). Otherwise: 'none' — also for a `code` this module did
     * not ask for (another library's sign-in on the same page, the official SDK's say),
     * which it leaves where it is, untouched and unredeemed.
     */
    async completeRedirect() {
      const url = new URL(location.href);
      const code = url.searchParams.get('code');
      const state = url.searchParams.get('state');
      if (!code || !state) return 'none';
      if (state.startsWith(POPUP) && window.opener) {
        window.opener.postMessage({ genesysNotifyPkce: { code, state } }, location.origin);
        window.close();
        return 'popup';
      }
      const { pending } = read();
      if (!pending || pending.state !== state) return 'none';
      url.searchParams.delete('code');
      url.searchParams.delete('state');
      history.replaceState(null, '', url);
      write({ ...read(), pending: undefined });
      await exchange(code, pending.verifier);
      return 'signed-in';
    },

    /** For createClient: the stored token while it has life left, else null (sign in again). */
    getToken: async () => {
      const { token } = read();
      if (!token) return null;
      const left = (token.expiresAt - Date.now()) / 1000;
      if (left <= minLifeSeconds) return null;
      return { accessToken: token.accessToken, expiresIn: Math.floor(left) };
    },

    /**
     * Signs in again in a popup (call it from a click: browsers block popups otherwise) and
     * resolves with the new token, for `client.login(t.accessToken, t.expiresIn)`.
     */
    async popup() {
      const state = POPUP + randomText(16);
      const verifier = randomText(48);
      const win = window.open(await authorizeUrl(state, verifier), 'genesys-notify-login', 'popup,width=480,height=640');
      if (!win) throw new Error('the sign-in popup was blocked; call popup() from a click');
      const code = await new Promise((resolve, reject) => {
        // A popup closes itself right after posting the code: give that message a tick.
        let closedTicks = 0;
        const closed = setInterval(() => {
          if (win.closed && ++closedTicks > 1) {
            cleanup();
            reject(new Error('the sign-in popup was closed'));
          }
        }, 500);
        const limit = setTimeout(() => {
          cleanup();
          win.close();
          reject(new Error('the sign-in popup was not completed in 10 minutes'));
        }, POPUP_LIMIT_MS);
        const onMessage = (e) => {
          const m = e.data?.genesysNotifyPkce;
          if (e.origin !== location.origin || e.source !== win || m?.state !== state) return;
          cleanup();
          resolve(m.code);
        };
        const cleanup = () => {
          clearInterval(closed);
          clearTimeout(limit);
          window.removeEventListener('message', onMessage);
        };
        window.addEventListener('message', onMessage);
      });
      return exchange(code, verifier);
    },
  };
}
