// Types of genesys-notify-web/react.
import type { ReactNode } from 'react';
import type { GapDetail, LoginRequiredDetail, NotificationClient, NotificationDetail, Status } from './index.js';

export interface GenesysNotificationsProviderProps {
  /** The client (createSharedClient or createClient), or null while it loads. Create it
   * without topics: the mounted hooks decide what is subscribed. */
  client: NotificationClient | null;
  children?: ReactNode;
}

export declare function GenesysNotificationsProvider(props: GenesysNotificationsProviderProps): ReactNode;

export declare function useGenesysClient(): NotificationClient | null;

/** A gap as the hook keeps it: only this hook's topics, with an id for `resolveGap`. */
export interface HookGap extends GapDetail {
  id: number;
}

export interface UseGenesysNotificationsOptions {
  onNotification?: (detail: NotificationDetail) => void;
  onGap?: (gap: HookGap) => void;
  /** How many events (and gaps) are kept (50). */
  keep?: number;
}

export interface GenesysNotificationsState {
  status: Status;
  /** The latest notifications of the hook's topics, newest first. */
  events: NotificationDetail[];
  /** Reported gaps in the hook's topics, oldest first, until resolved. */
  gaps: HookGap[];
  /** Set while a new login is needed. */
  loginRequired: LoginRequiredDetail | null;
  /** Drops a gap once its topics' state was read again over REST. */
  resolveGap(gap: HookGap): void;
  clearGaps(): void;
  mode: 'shared' | 'per-tab' | null;
  client: NotificationClient | null;
}

export declare function useGenesysNotifications(
  topics: readonly string[],
  options?: UseGenesysNotificationsOptions,
): GenesysNotificationsState;
