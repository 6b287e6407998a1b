// Uses every entry point of genesys-notify-web the way an application would; compiled with
// `strict` against the packed package by check-package.sh. A type error here is a type the
// package gets wrong (or an API change the types did not follow).
import { createClient, type GapDetail, type GapReason, type NotificationClient, type Status } from 'genesys-notify-web';
import { createSharedClient } from 'genesys-notify-web/shared';
import { createPkceLogin } from 'genesys-notify-web/pkce';
import {
  GenesysNotificationsProvider,
  useGenesysNotifications,
  useGenesysStatus,
  type HookError,
} from 'genesys-notify-web/react';
import { attachRereaders, presence, queueObservations, type Rereader } from 'genesys-notify-web/reread';
import wasmUrl from 'genesys-notify-web/genesys_notify_wasm_bg.wasm';

export async function start(): Promise<NotificationClient> {
  const login = createPkceLogin({
    loginBase: 'https://login.mypurecloud.ie',
    clientId: 'client',
    redirectUri: 'https://app.example/',
  });
  if ((await login.completeRedirect()) === 'none') await login.start();
  const client = await createClient({ region: 'eu_west_1', getToken: login.getToken, wasmUrl });
  client.addEventListener('gap', (e) => {
    const reason: GapReason = e.detail.reason;
    const gap: GapDetail = e.detail;
    console.log(reason, gap.topics.join(','), gap.from.toISOString());
  });
  client.addEventListener('notification', (e) => console.log(e.detail.topic, e.detail.raw));
  const station: Rereader = {
    match: /^v2\.users\.([^.]+)\.station$/,
    read: ({ match, get }) => get(`/api/v2/users/${(match as RegExpMatchArray)[1]}/station`),
  };
  const detach = attachRereaders(client, {
    apiBase: 'https://api.mypurecloud.ie',
    getToken: async () => (await login.getToken())?.accessToken ?? '',
    readers: [presence, queueObservations, station],
  });
  client.addEventListener('resync', (e) => console.log(e.detail.topic, e.detail.data, e.detail.gap.reason));
  client.addEventListener('resyncfailed', (e) => {
    console.log(e.detail.message);
    detach();
  });
  const shared = await createSharedClient({ region: 'eu_west_1', getToken: login.getToken });
  shared.subscribe(['v2.users.me.presence']);
  const status: Status = shared.status;
  console.log(status);
  return client;
}

export function Header(): string {
  const { status, error, loginRequired } = useGenesysStatus();
  const e: HookError | null = error;
  return e ? e.message : loginRequired ? loginRequired.reason : status;
}

export function Presence(props: { userId: string }): number {
  const { events, gaps, resolveGap, error, stale } = useGenesysNotifications([`v2.users.${props.userId}.presence`], {
    onResync: (d) => console.log(d.topic, d.data),
  });
  if (stale.length) return 0;
  if (error?.kind === 'rejected') return -1;
  const first = gaps[0];
  if (first) resolveGap(first);
  return events.length;
}

export const provider = GenesysNotificationsProvider;
