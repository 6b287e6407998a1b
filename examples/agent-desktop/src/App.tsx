// The desktop: the signed-in agent's presence (with a selector that changes it) and routing
// status, the agent's queues with their waiting and interacting counts and live
// conversations, a status header, the gaps the session reported (re-read automatically), and
// sign-in prompts. Every shape is the service's (the official SDK's models).
import { useEffect, useRef, useState } from 'react';
import type { NotificationClient, NotificationDetail, ResyncDetail } from 'genesys-notify-web';
import {
  GenesysNotificationsProvider,
  useGenesysNotifications,
  useGenesysStatus,
  type HookGap,
} from 'genesys-notify-web/react';
import type { Api } from './api';

type Token = { accessToken: string; expiresIn: number };

interface User {
  id: string;
  name: string;
}
interface PresenceRef {
  id: string;
  systemPresence: string;
}
/** `UserPresence` (REST) and `PresenceEventUserPresence` (notification) share these. */
interface Presence {
  presenceDefinition: PresenceRef;
  message?: string;
  modifiedDate: string;
}
/** `RoutingStatus` (REST), `UserRoutingStatusRoutingStatus` (notification). */
interface Routing {
  status: string;
  startTime: string;
}
interface PresenceDefinition {
  id: string;
  name?: string;
  systemPresence: string;
  languageLabels?: Record<string, string>;
  deactivated?: boolean;
}
interface UserQueue {
  id: string;
  name: string;
}
/** `QueueObservationDataContainer`. */
interface Observation {
  data?: { metric: string; stats?: { count?: number } }[];
}
/** `QueueConversationEventTopicConversation`, the parts read here. */
interface ConversationEvent {
  id: string;
  participants?: { purpose?: string; userId?: string; connectedTime?: string; endTime?: string }[];
}

interface Props {
  client: NotificationClient;
  api: Api;
  signIn: () => Promise<Token>;
  /** Queues to show instead of the agent's own. */
  queues: string[] | null;
}

export function App({ client, api, signIn, queues }: Props) {
  const [me, setMe] = useState<User | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api.get<User>('/api/v2/users/me').then(setMe, (e: unknown) => setError(String(e)));
  }, [api]);
  return (
    <GenesysNotificationsProvider client={client}>
      <main>
        <header>
          <h1>Agent desktop{me ? ` — ${me.name}` : ''}</h1>
          <Status />
        </header>
        <LoginPrompt signIn={signIn} client={client} />
        {error && <p className="error">Cannot read who is signed in: {error}</p>}
        {me && (
          <div className="panels">
            <Agent me={me} api={api} />
            <Queues me={me} api={api} only={queues} />
          </div>
        )}
      </main>
    </GenesysNotificationsProvider>
  );
}

const LABEL: Record<string, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  recovering: 'Reconnecting…',
  login_required: 'Sign-in needed',
  closed: 'Closed',
  failed: 'Stopped',
};

function Status() {
  const { status, mode, error } = useGenesysStatus();
  return (
    <p className={`status status-${status}`} data-status={status} role="status">
      <span className="dot" /> {LABEL[status] ?? status}
      <small>{error ? error.message : mode === 'shared' ? 'one channel for every tab' : 'this tab has its own channel'}</small>
    </p>
  );
}

/** Two prompts: ahead of the end (`loginsoon`: signing in now loses nothing) and after it
 * (`loginrequired`: notifications are paused until the agent signs in). Browsers open the
 * sign-in popup only from a click, so both are buttons. */
function LoginPrompt({ signIn, client }: { signIn: () => Promise<Token>; client: NotificationClient }) {
  const { loginRequired } = useGenesysStatus();
  const [soon, setSoon] = useState<{ endsAt: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const onSoon = (e: CustomEvent<{ expiresInMs: number }>) => setSoon({ endsAt: Date.now() + e.detail.expiresInMs });
    // Another tab's sign-in serves this one too.
    const onSignedIn = () => setSoon(null);
    client.addEventListener('loginsoon', onSoon);
    client.addEventListener('signedin', onSignedIn);
    return () => {
      client.removeEventListener('loginsoon', onSoon);
      client.removeEventListener('signedin', onSignedIn);
    };
  }, [client]);
  if (!loginRequired && !soon) return null;
  const again = () =>
    signIn().then(
      (t) => {
        client.login(t.accessToken, t.expiresIn);
        setSoon(null);
        setError(null);
      },
      (e: unknown) => setError(String(e)),
    );
  return (
    <div className={loginRequired ? 'login-prompt' : 'login-prompt soon'} role="alert">
      {loginRequired
        ? `Your sign-in has ended (${loginRequired.reason}). Notifications are paused.`
        : `Your sign-in ends at ${time(new Date(soon!.endsAt))}. Sign in again now and nothing is missed.`}
      <button onClick={again}>Sign in again</button>
      {error && <span className="error">{error}</span>}
    </div>
  );
}

const time = (d: Date) => d.toLocaleTimeString([], { hour12: false });
const eventBody = (d: NotificationDetail) => (d.data as { eventBody?: unknown }).eventBody;

/** Keeps the newer of two states by their timestamps: a REST answer that was on its way while
 * a notification came must not undo it. */
function newer<T>(current: T | null, next: T, at: (t: T) => string): T {
  return current && at(current) > at(next) ? current : next;
}

/** The gaps of a panel's topics: a banner while their state is unknown (re-reading), and the
 * last few, with what came of them. */
function Gaps({ gaps, stale, failed }: { gaps: HookGap[]; stale: string[]; failed: string | null }) {
  const log = useRef<{ id: number; text: string }[]>([]);
  for (const g of gaps) {
    if (!log.current.some((e) => e.id === g.id)) {
      const text = `${time(g.from)}–${time(g.to)} (${g.reason.replace(/_/g, ' ')})`;
      log.current = [{ id: g.id, text }, ...log.current].slice(0, 5);
    }
  }
  const open = new Set(gaps.map((g) => g.id));
  return (
    <>
      {stale.length > 0 && (
        <div className="gap-banner" role="alert">
          Missed events while disconnected: {failed ? `re-reading failed (${failed}); shown may be out of date.` : 're-reading…'}
        </div>
      )}
      {log.current.length > 0 && (
        <ul className="gap-log">
          {log.current.map((e) => (
            <li key={e.id} className={open.has(e.id) ? 'gap-open' : 'gap-reread'}>
              Gap {e.text}: {open.has(e.id) ? 're-reading' : 'read again'}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

/** `resyncfailed` for any of `topics`: the last message, until a later re-read of them lands. */
function useResyncFailure(topics: string[]): string | null {
  const client = useGenesysStatus().client;
  const [failed, setFailed] = useState<string | null>(null);
  const key = topics.join(' ');
  useEffect(() => {
    if (!client) return undefined;
    const mine = new Set(key.split(' '));
    const onFail = (e: CustomEvent<{ topic: string; message: string }>) => {
      if (mine.has(e.detail.topic)) setFailed(e.detail.message);
    };
    const onResync = (e: CustomEvent<ResyncDetail>) => {
      if (mine.has(e.detail.topic)) setFailed(null);
    };
    client.addEventListener('resyncfailed', onFail);
    client.addEventListener('resync', onResync);
    return () => {
      client.removeEventListener('resyncfailed', onFail);
      client.removeEventListener('resync', onResync);
    };
  }, [client, key]);
  return failed;
}

function Agent({ me, api }: { me: User; api: Api }) {
  const presenceTopic = `v2.users.${me.id}.presence`;
  const routingTopic = `v2.users.${me.id}.routingStatus`;
  const [presence, setPresence] = useState<Presence | null>(null);
  const [routing, setRouting] = useState<Routing | null>(null);
  const [catalogue, setCatalogue] = useState<PresenceDefinition[]>([]);
  const [error, setError] = useState<string | null>(null);
  const takePresence = (p: Presence) => setPresence((c) => newer(c, p, (x) => x.modifiedDate));
  const takeRouting = (r: Routing) => setRouting((c) => newer(c, r, (x) => x.startTime));

  useEffect(() => {
    const fail = (e: unknown) => setError(String(e));
    api.get<Presence>(`/api/v2/users/${me.id}/presences/purecloud`).then(takePresence, fail);
    api.get<Routing>(`/api/v2/users/${me.id}/routingstatus`).then(takeRouting, fail);
    api
      .get<{ entities: PresenceDefinition[] }>('/api/v2/presence/definitions')
      .then((l) => setCatalogue(l.entities.filter((d) => !d.deactivated)), fail);
  }, [api, me.id]);

  const { gaps, stale } = useGenesysNotifications([presenceTopic, routingTopic], {
    onNotification: (d) => {
      const body = eventBody(d);
      if (d.topic === presenceTopic) takePresence(body as Presence);
      else takeRouting((body as { routingStatus: Routing }).routingStatus);
    },
    onResync: (d) => {
      if (d.topic === presenceTopic) takePresence(d.data as Presence);
      else takeRouting(d.data as Routing);
    },
  });
  const failed = useResyncFailure([presenceTopic, routingTopic]);

  const choose = (id: string) => {
    setError(null);
    api
      .send<Presence>('PATCH', `/api/v2/users/${me.id}/presences/purecloud`, { presenceDefinition: { id } })
      .then(takePresence, (e: unknown) => setError(String(e)));
  };
  const name = (d: PresenceDefinition) => d.languageLabels?.en_US ?? d.name ?? d.systemPresence;
  const label = (p: PresenceRef) => {
    const d = catalogue.find((x) => x.id === p.id);
    return d ? name(d) : p.systemPresence;
  };
  const unsure = stale.length > 0;
  return (
    <section className="panel agent">
      <h2>My status</h2>
      <Gaps gaps={gaps} stale={stale} failed={failed} />
      <p className={unsure ? 'unsure' : undefined}>
        Presence:{' '}
        <strong className="presence" data-presence={presence?.presenceDefinition.systemPresence ?? ''}>
          {presence ? label(presence.presenceDefinition) : '…'}
        </strong>
        <select
          aria-label="Change presence"
          value={presence?.presenceDefinition.id ?? ''}
          onChange={(e) => choose(e.target.value)}
          disabled={!presence || catalogue.length === 0}
        >
          {catalogue.map((d) => (
            <option key={d.id} value={d.id}>
              {name(d)}
            </option>
          ))}
        </select>
      </p>
      <p className={unsure ? 'unsure' : undefined}>
        Routing: <strong data-routing={routing?.status ?? ''}>{routing ? routing.status.replace(/_/g, ' ').toLowerCase() : '…'}</strong>
        {routing && <time> since {time(new Date(routing.startTime))}</time>}
      </p>
      {presence?.message && <p className="message">“{presence.message}”</p>}
      {error && <p className="error">{error}</p>}
    </section>
  );
}

interface QueueState {
  waiting: number;
  interacting: number;
  /** Live conversations seen since the desktop started (or the last re-read): id → answered
   * by. At most MAX_CONVERSATIONS, the oldest dropped first. */
  conversations: Map<string, string | null>;
}

const MAX_CONVERSATIONS = 100;

function Queues({ me, api, only }: { me: User; api: Api; only: string[] | null }) {
  const [queues, setQueues] = useState<UserQueue[] | null>(only ? only.map((id) => ({ id, name: id })) : null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (only) return;
    api
      .get<{ entities: UserQueue[] }>(`/api/v2/users/${me.id}/queues`)
      .then((l) => setQueues(l.entities), (e: unknown) => setError(String(e)));
  }, [api, me.id, only]);
  return (
    <section className="panel">
      <h2>My queues</h2>
      {error && <p className="error">{error}</p>}
      {queues?.length === 0 && <p className="empty">You are in no queue.</p>}
      {queues?.map((q) => <Queue key={q.id} queue={q} api={api} />)}
    </section>
  );
}

const count = (o: Observation | null, metric: string) => o?.data?.find((d) => d.metric === metric)?.stats?.count ?? 0;

function Queue({ queue, api }: { queue: UserQueue; api: Api }) {
  const topic = `v2.routing.queues.${queue.id}.conversations`;
  const [state, setState] = useState<QueueState>({ waiting: 0, interacting: 0, conversations: new Map() });
  const [reread, setReread] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const fromObservation = (o: Observation | null) =>
    setState((s) => ({ ...s, waiting: count(o, 'oWaiting'), interacting: count(o, 'oInteracting') }));

  useEffect(() => {
    api
      .send<{ results?: (Observation & { group?: { queueId?: string } })[] }>('POST', '/api/v2/analytics/queues/observations/query', {
        filter: { type: 'or', predicates: [{ dimension: 'queueId', value: queue.id }] },
        metrics: ['oWaiting', 'oInteracting'],
      })
      .then((a) => fromObservation(a.results?.find((r) => r.group?.queueId === queue.id) ?? null), (e: unknown) => setError(String(e)));
  }, [api, queue.id]);

  const { gaps, stale } = useGenesysNotifications([topic], {
    onNotification: (d) => {
      const c = eventBody(d) as ConversationEvent;
      const customer = c.participants?.find((p) => p.purpose === 'customer');
      const agent = c.participants?.find((p) => p.purpose === 'agent');
      setState((s) => {
        const conversations = new Map(s.conversations);
        const was = s.conversations.has(c.id) ? (s.conversations.get(c.id) ? 'answered' : 'waiting') : null;
        let { waiting, interacting } = s;
        if (customer?.endTime) {
          conversations.delete(c.id);
          if (was === 'waiting' || (was === null && !agent)) waiting = Math.max(0, waiting - 1);
          else interacting = Math.max(0, interacting - 1);
        } else if (agent) {
          conversations.set(c.id, agent.userId ?? null);
          if (was !== 'answered') {
            interacting += 1;
            if (was === 'waiting' || was === null) waiting = Math.max(0, waiting - 1);
          }
        } else if (was === null) {
          conversations.set(c.id, null);
          waiting += 1;
        }
        // One whose end was missed must not stay forever.
        for (const id of conversations.keys()) {
          if (conversations.size <= MAX_CONVERSATIONS) break;
          conversations.delete(id);
        }
        return { waiting, interacting, conversations };
      });
    },
    // The counts are the service's now; which conversations changed during the gap is not
    // known, so the list starts again from the next events.
    onResync: (d) => {
      fromObservation(d.data as Observation | null);
      setState((s) => ({ ...s, conversations: new Map() }));
      setReread(true);
    },
  });
  const failed = useResyncFailure([topic]);
  const live = [...state.conversations].slice(-6);
  return (
    <div className={stale.length ? 'queue unsure' : 'queue'} data-queue={queue.id}>
      <h3>{queue.name}</h3>
      <Gaps gaps={gaps} stale={stale} failed={failed} />
      <p>
        Waiting <strong data-waiting={state.waiting}>{state.waiting}</strong> · Interacting{' '}
        <strong data-interacting={state.interacting}>{state.interacting}</strong>
      </p>
      <ul className="events">
        {live.map(([id, agent]) => (
          <li key={id}>
            <code>{id}</code> {agent ? `answered by ${agent}` : 'waiting'}
          </li>
        ))}
        {live.length === 0 && (
          <li className="empty">{reread ? 'Counts read again after a gap; conversations show as their events come' : 'No conversations yet'}</li>
        )}
      </ul>
      {error && <p className="error">{error}</p>}
    </div>
  );
}
