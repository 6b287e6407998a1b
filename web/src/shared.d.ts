// Types of genesys-notify-web/shared.
import type { Client, ClientEventMap, ClientOptions, NotificationClient, Status } from './index.js';

export interface SharedClientOptions extends ClientOptions {
  /** Where worker.js is served (by default beside shared.js). */
  workerUrl?: string | URL;
  /** false: a session per tab even where SharedWorker exists. */
  shared?: boolean;
}

export declare class SharedClient extends EventTarget implements NotificationClient {
  readonly status: Status;
  readonly mode: 'shared';
  /** Resolves once the worker has taken the tab on. */
  readonly attached: Promise<void>;
  subscribe(topics: Iterable<string>): void;
  unsubscribe(topics: Iterable<string>): void;
  /** The application's own API call with `accessToken` was answered 401: if it is the
   * session's token, one new token is fetched (reports of older tokens are ignored). */
  reportUnauthorized(accessToken: string): void;
  login(accessToken: string, expiresIn: number): void;
  close(): void;
  addEventListener<K extends keyof ClientEventMap>(
    type: K,
    listener: (ev: ClientEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof ClientEventMap>(
    type: K,
    listener: (ev: ClientEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
}

/** One session for every tab of the origin (a SharedWorker); a `Client` of the tab's own,
 * with `mode` 'per-tab', `fallbackReason` and a `warning`, where SharedWorker does not exist
 * or its worker does not start within 10 s. */
export declare function createSharedClient(options: SharedClientOptions): Promise<SharedClient | Client>;
