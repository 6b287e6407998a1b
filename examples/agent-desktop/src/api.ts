// The desktop's own REST calls, with the token the session also uses. A 401 is told to the
// session (`reportUnauthorized`: it fetches one new token), and every failure is an Error
// that says what answered.
import type { NotificationClient } from 'genesys-notify-web';

type Token = { accessToken: string; expiresIn: number } | null;

export interface Api {
  get<T>(path: string): Promise<T>;
  send<T>(method: 'PATCH' | 'POST', path: string, body: unknown): Promise<T>;
}

export function makeApi(apiBase: string, getToken: () => Promise<Token>, client: NotificationClient): Api {
  const call = async <T,>(method: string, path: string, body?: unknown): Promise<T> => {
    const token = (await getToken())?.accessToken;
    if (!token) throw new Error('signed out: sign in again');
    const r = await fetch(`${apiBase}${path}`, {
      method,
      redirect: 'error',
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (r.status === 401) client.reportUnauthorized(token);
    if (!r.ok) throw new Error(`${method} ${path}: HTTP ${r.status}`);
    return (await r.json()) as T;
  };
  return {
    get: (path) => call('GET', path),
    send: (method, path, body) => call(method, path, body),
  };
}
