// Types of genesys-notify-web/reread.
import type { NotificationClient } from './index.js';

/** What a re-reader's `read` is given. */
export interface RereadContext {
  topic: string;
  /** What `match` matched (a RegExp's groups: `match[1]` is the id of the stock readers). */
  match: RegExpMatchArray | unknown;
  /** `GET` (or `init`'s method) `apiBase + path` with the token: the answer's JSON; a non-2xx
   * answer throws an Error with `status`. Redirects are never followed. */
  get(path: string, init?: RequestInit): Promise<unknown>;
  token: string;
  apiBase: string;
  signal: AbortSignal;
}

export interface Rereader {
  /** The topics it reads: a RegExp, or a function that returns something truthy. */
  match: RegExp | ((topic: string) => unknown);
  /** The topic's current state; throw to have it retried. */
  read(context: RereadContext): Promise<unknown>;
}

/** `v2.users.{id}.presence`: the user's Genesys Cloud presence (`UserPresence`). */
export declare const presence: Rereader;
/** `v2.users.{id}.routingStatus`: the user's routing status (`RoutingStatus`). */
export declare const routingStatus: Rereader;
/** `v2.routing.queues.{id}.conversations`: the queue's `oWaiting` and `oInteracting`
 * (`QueueObservationDataContainer`, or null). */
export declare const queueObservations: Rereader;

export interface RereadOptions {
  /** The API's base URL, e.g. `https://api.mypurecloud.ie`. */
  apiBase: string;
  /** The access token to read with. */
  getToken: () => Promise<string> | string;
  readers: Rereader[];
  /** Tries per re-read (4, at most 10). */
  attempts?: number;
  /** The first wait between tries, doubled each time (1000 ms). */
  retryMs?: number;
  /** Reads at once at most (4). */
  concurrency?: number;
}

/** Re-reads the topics of every gap that a reader matches and emits `resync` (or, after the
 * last try, `resyncfailed`) on the client. Returns a function that stops it. */
export declare function attachRereaders(client: NotificationClient, options: RereadOptions): () => void;
