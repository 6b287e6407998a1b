import type { Token } from './index.js';

export interface PkceLoginOptions {
  /** `https://login.<region domain>`. */
  loginBase: string;
  /** An OAuth client with the PKCE code grant. */
  clientId: string;
  /** Registered for the client, exactly as sent. */
  redirectUri: string;
  /** Where the pending login and the token live (sessionStorage). */
  storage?: Storage;
  /** A stored token with less life left than this is not handed out (60). */
  minLifeSeconds?: number;
}

export interface PkceLogin {
  /** Goes to the login page; the browser comes back to `redirectUri` with a code. */
  start(): Promise<void>;
  /** Call first on every load: `'signed-in'` back from the login page, `'popup'` in the
   * login popup (which hands its code to the opener and closes), else `'none'`. */
  completeRedirect(): Promise<'signed-in' | 'popup' | 'none'>;
  /** For `createClient`: the stored token while it has life left, else null. */
  getToken(): Promise<Token>;
  /** Signs in again in a popup (call it from a click) and resolves with the new token. */
  popup(): Promise<NonNullable<Token>>;
}

export declare function createPkceLogin(options: PkceLoginOptions): PkceLogin;
