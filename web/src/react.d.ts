// Types of genesys-notify-web/react.
import type { ReactNode } from 'react';
import type { GapDetail, LoginRequiredDetail, NotificationClient, NotificationDetail, ResyncDetail, Status } from './index.js';

export interface GenesysNotificationsProviderProps {
  /** The client (createSharedClient or createClient), or null while it loads. Create it
   * without topics: the mounted hooks decide what is subscribed. */
  client: NotificationClient | null;
  children?: ReactNode;
}

export declare function GenesysNotificationsProvider(props: GenesysNotificationsProviderProps): ReactNode;

export declare function useGenesysClient(): NotificationClient | null;

/** What keeps a hook's topics from being followed, as state (the hooks never throw). */
export interface HookError {
  /** 'rejected': the service refused `topics` (`message` is its reason); 'subscribe': the
   * client refused them (an invalid topic, too many); 'closed': the client was closed;
   * 'fatal': the session stopped for good (`message` says why). */
  kind: 'rejected' | 'subscribe' | 'closed' | 'fatal';
  message: string;
  /** The hook's topics it concerns ([] for 'closed' and 'fatal'). */
  topics: string[];
}

export interface GenesysStatusState {
  status: Status;
  /** Set while a new login is needed. */
  loginRequired: LoginRequiredDetail | null;
  /** 'closed' or 'fatal', else null. */
  error: HookError | null;
  mode: 'shared' | 'per-tab' | null;
  client: NotificationClient | null;
}

/** The client's status for a header or a banner, without subscribing anything. */
export declare function useGenesysStatus(): GenesysStatusState;

/** A gap as the hook keeps it: only this hook's topics, with an id for `resolveGap`. */
export interface HookGap extends GapDetail {
  id: number;
}

export interface UseGenesysNotificationsOptions {
  onNotification?: (detail: NotificationDetail) => void;
  onGap?: (gap: HookGap) => void;
  /** A topic of the hook's was read again after a gap (`genesys-notify-web/reread`). */
  onResync?: (detail: ResyncDetail) => void;
  /** How many events (and gaps) are kept (50). */
  keep?: number;
}

export interface GenesysNotificationsState extends GenesysStatusState {
  /** The latest notifications of the hook's topics, newest first. */
  events: NotificationDetail[];
  /** Reported gaps in the hook's topics, oldest first, until resolved (by `resolveGap`, or
   * once every topic of the gap was read again). */
  gaps: HookGap[];
  /** The hook's topics whose state is unknown since a gap, until a `resync` of each. */
  stale: string[];
  /** Drops a gap once its topics' state was read again over REST. */
  resolveGap(gap: HookGap): void;
  clearGaps(): void;
}

export declare function useGenesysNotifications(
  topics: readonly string[],
  options?: UseGenesysNotificationsOptions,
): GenesysNotificationsState;
