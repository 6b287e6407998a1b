// The test pages' token source: the simulator's client credentials. (A real page uses PKCE
// and never holds a client secret.) `null` when the login is refused, as getToken says.
export function clientCredentials(base, id, secret) {
  return async () => {
    const r = await fetch(`${base}/oauth/token`, {
      method: 'POST',
      headers: {
        Authorization: 'Basic ' + btoa(`${id}:${secret}`),
        'Content-Type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials',
    });
    if (r.status === 400 || r.status === 401) return null;
    if (!r.ok) throw new Error(`token endpoint answered HTTP ${r.status}`);
    const t = await r.json();
    return { accessToken: t.access_token, expiresIn: t.expires_in };
  };
}
