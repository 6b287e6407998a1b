// The desktop: a status indicator, live presence and queue-conversation lists, a banner for
// every stretch the session could not cover (until the state is read again), and a prompt
// when a new login is needed.
import { useEffect, useState } from 'react';
import type { NotificationClient, NotificationDetail } from 'genesys-notify-web';
import { GenesysNotificationsProvider, useGenesysNotifications, type HookGap } from 'genesys-notify-web/react';

export interface Settings {
  apiBase: string;
  loginBase: string;
  clientId: string;
  users: string[];
  queues: string[];
}

type Token = { accessToken: string; expiresIn: number };

interface Props {
  client: NotificationClient;
  settings: Settings;
  signIn: () => Promise<Token>;
}

export function App({ client, settings, signIn }: Props) {
  return (
    <GenesysNotificationsProvider client={client}>
      <main>
        <header>
          <h1>Agent desktop</h1>
          <Status />
        </header>
        <LoginPrompt signIn={signIn} client={client} />
        <div className="panels">
          <Panel
            title="Presence"
            topics={settings.users.map((u) => `v2.users.${u}.presence`)}
            settings={settings}
          />
          <Panel
            title="Queue conversations"
            topics={settings.queues.map((q) => `v2.routing.queues.${q}.conversations`)}
            settings={settings}
          />
        </div>
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
  const { status, mode } = useGenesysNotifications([]);
  return (
    <p className={`status status-${status}`} data-status={status} role="status">
      <span className="dot" /> {LABEL[status] ?? status}
      <small>{mode === 'shared' ? 'one channel for every tab' : 'this tab has its own channel'}</small>
    </p>
  );
}

/** Two prompts: ahead of the end (`loginsoon`: signing in now loses nothing) and after it
 * (`loginrequired`: notifications are paused until the agent signs in). Browsers open the
 * sign-in popup only from a click, so both are buttons. */
function LoginPrompt({ signIn, client }: { signIn: () => Promise<Token>; client: NotificationClient }) {
  const { loginRequired } = useGenesysNotifications([]);
  const [soon, setSoon] = useState<{ endsAt: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const onSoon = (e: CustomEvent<{ expiresInMs: number }>) =>
      setSoon({ endsAt: Date.now() + e.detail.expiresInMs });
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
        : `Your sign-in ends at ${new Date(soon!.endsAt).toLocaleTimeString([], { hour12: false })}. Sign in again now and nothing is missed.`}
      <button onClick={again}>Sign in again</button>
      {error && <span className="error">{error}</span>}
    </div>
  );
}

interface Row {
  seq: number;
  topic: string;
  at: string;
}

/** `agent-1` of `v2.users.agent-1.presence`, `queue-1` of `v2.routing.queues.queue-1.conversations`. */
function who(topic: string): string {
  const parts = topic.split('.');
  return parts[1] === 'routing' ? parts[3] ?? topic : parts[2] ?? topic;
}

const time = (d: Date) => d.toLocaleTimeString([], { hour12: false });

function row(d: NotificationDetail): Row {
  const body = (d.data as { eventBody?: { seq?: number; publishedAt?: string } }).eventBody ?? {};
  return { seq: body.seq ?? 0, topic: d.topic, at: body.publishedAt ?? '' };
}

/** What the state of `topics` is now, read over REST after a gap. Against the simulator:
 * its published counts; against Genesys Cloud this is where the desktop would call, e.g.,
 * GET /api/v2/users/{id}/presences/purecloud. */
async function reread(settings: Settings, topics: string[]): Promise<Record<string, number>> {
  const r = await fetch(`${settings.apiBase}/__sim/stats`, { cache: 'no-store' });
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  const stats = (await r.json()) as { published?: Record<string, number> };
  return Object.fromEntries(topics.map((t) => [t, stats.published?.[t] ?? 0]));
}

function Panel({ title, topics, settings }: { title: string; topics: string[]; settings: Settings }) {
  const { events, gaps, resolveGap } = useGenesysNotifications(topics, { keep: 8 });
  const [state, setState] = useState<Record<string, number>>({});
  const [reading, setReading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const reRead = async (gap: HookGap) => {
    setReading(true);
    setError(null);
    try {
      const now = await reread(settings, gap.topics);
      setState((s) => ({ ...s, ...now }));
      resolveGap(gap);
    } catch (e) {
      setError(`re-reading failed: ${String(e)}`);
    } finally {
      setReading(false);
    }
  };
  return (
    <section className="panel">
      <h2>{title}</h2>
      {gaps.map((g) => (
        <div className="gap-banner" role="alert" key={g.id}>
          Missed events while disconnected, {time(g.from)}–{time(g.to)} ({g.reason.replace(/_/g, ' ')}).
          <button disabled={reading} onClick={() => reRead(g)}>
            {reading ? 'Re-reading…' : 'Re-read now'}
          </button>
          {error && <span className="error">{error}</span>}
        </div>
      ))}
      {Object.keys(state).length > 0 && (
        <p className="reread">
          Read again: {Object.entries(state).map(([t, n]) => `${who(t)} at event ${n}`).join(', ')}
        </p>
      )}
      <ul className="events">
        {events.map(row).map((r) => (
          <li key={`${r.topic}-${r.seq}`}>
            <code>{who(r.topic)}</code> event {r.seq} <time>{r.at ? time(new Date(r.at)) : ''}</time>
          </li>
        ))}
        {events.length === 0 && <li className="empty">No events yet</li>}
      </ul>
    </section>
  );
}
