// Types of genesys-notify-web.

/** What `getToken` returns: a token and its remaining life in seconds. `null`: no token
 * without a new login (the client then emits `loginrequired` and waits for `login`). */
export type Token = { accessToken: string; expiresIn: number } | null;

export interface ClientOptions {
  /** A Genesys Cloud region name (`eu_west_1`, `us_east_1`, …) or its domain. */
  region?: string;
  /** Explicit base URLs instead (`http://` only on loopback, e.g. `genesys-notify sim`). */
  apiBase?: string;
  loginBase?: string;
  /** Called single-flight whenever the session needs a token. Throw for a failure worth
   * retrying (network); return `null` when only a new login can help. */
  getToken: () => Promise<Token>;
  /** Called with the `loginrequired` detail. */
  onLoginRequired?: (detail: LoginRequiredDetail) => void;
  topics?: string[];
  /** 1 (default) or 2: two channels on two sockets, each notification delivered once. */
  redundancy?: 1 | 2;
  /** Channels this user and OAuth client may hold (20). Topics are spread over as many
   * channels as they need, keeping one free for renewals; more than fit is refused. */
  maxChannels?: number;
  /** Topics one channel carries (1000, the service's limit). */
  maxTopicsPerChannel?: number;
  /** Session tuning, in milliseconds / per minute. */
  idleTimeoutMs?: number;
  pingTimeoutMs?: number;
  backoffBaseMs?: number;
  backoffCapMs?: number;
  stableAfterMs?: number;
  maintenanceGraceMs?: number;
  requestTimeoutMs?: number;
  handoverLingerMs?: number;
  maxChannelCreationsPerMinute?: number;
  maxTokenRequestsPerMinute?: number;
  maxSubscriptionRequestsPerMinute?: number;
  maxConnectsPerMinute?: number;
  /** Seed of the backoff jitter (random by default). */
  seed?: number;
  /** Where the `.wasm` file is, if not beside the glue. */
  wasmUrl?: string | URL;
  /** A visible page that ran nothing for this long past a timer's wake-up was asleep: a
   * suspend (5000). */
  lateMs?: number;
  /** The same for a hidden page, whose timers Chromium throttles to once a minute (75000).
   * A `freeze`/`resume` pair from the browser is a suspend of exactly its length. */
  hiddenLateMs?: number;
}

export type Status = 'connecting' | 'live' | 'recovering' | 'login_required' | 'closed' | 'failed';

export interface NotificationDetail {
  topic: string;
  /** The notification exactly as received. */
  raw: string;
  /** `raw`, parsed. */
  readonly data: unknown;
}

/** Why topics were not covered for a while: the session's fixed set. */
export type GapReason =
  | 'socket_lost'
  | 'socket_dead'
  | 'channel_expired'
  | 'maintenance'
  | 'subscription_dropped'
  | 'rejected'
  | 'login_required'
  | 'suspended'
  | 'overflow';

export interface GapDetail {
  topics: string[];
  from: Date;
  to: Date;
  fromMs: number;
  toMs: number;
  reason: GapReason;
}

export interface LoginRequiredDetail {
  /** Why, in words (what the token source or the service said): for people, not for
   * matching. */
  reason: string;
  sinceMs: number | null;
}

export interface ClientEventMap {
  notification: CustomEvent<NotificationDetail>;
  gap: CustomEvent<GapDetail>;
  status: CustomEvent<{ status: Status }>;
  /** The service refused a topic; `reason` is its own text (free-form). */
  topicrejected: CustomEvent<{ topic: string; reason: string }>;
  /** getToken() had no new token while the current one still works: a `login()` within
   * `expiresInMs` moves the session to the new token with nothing lost. */
  loginsoon: CustomEvent<{ reason: string; expiresInMs: number }>;
  loginrequired: CustomEvent<LoginRequiredDetail>;
  warning: CustomEvent<{ message: string }>;
  tokenrotated: CustomEvent<Record<string, never>>;
  fatal: CustomEvent<{ message: string }>;
  /** The page was frozen (or its timers throttled) this long; the session treated it as a
   * suspend. */
  resumed: CustomEvent<{ sleptMs: number }>;
  /** `login()` was called (in the shared session: by any tab): a sign-in prompt can go. */
  signedin: CustomEvent<Record<string, never>>;
  /** A topic's state read again after a gap (`genesys-notify-web/reread`). */
  resync: CustomEvent<ResyncDetail>;
  /** A re-read kept failing; the topic's state is still unknown since the gap. */
  resyncfailed: CustomEvent<{ topic: string; message: string; gap: ResyncGap }>;
}

/** The gap a re-read answers. */
export interface ResyncGap {
  from: Date;
  to: Date;
  reason: GapReason;
}

export interface ResyncDetail {
  topic: string;
  /** What the re-reader read: the topic's current state (e.g. a `UserPresence`). */
  data: unknown;
  gap: ResyncGap;
}

/** The part of a client that both a page's own session and the shared one offer. */
export interface NotificationClient extends EventTarget {
  readonly status: Status;
  /** 'shared': the browser's one session in a SharedWorker; 'per-tab': this page's own. */
  readonly mode: 'shared' | 'per-tab';
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

export declare class Client extends EventTarget implements NotificationClient {
  readonly status: Status;
  readonly mode: 'per-tab';
  /** Set when a shared session was asked for and this page's own runs instead. */
  readonly fallbackReason: string | null;
  toDate(ms: number): Date;
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

export declare function createClient(options: ClientOptions): Promise<Client>;
