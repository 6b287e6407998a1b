// The official SDK (purecloud-platform-client-v2) in Node against the simulator's organisation,
// as an application that already uses it would point it there: `setGateway`. Reads and
// changes a presence, reads a routing status, the presence catalogue, the available topics
// and the queue observations, and receives a combined topic's notification under its part's
// own name on a channel it made itself. Prints one JSON line of what it saw; exits 1 on
// the first thing that is not as the service does it.
//   node --experimental-websocket sdk-org.mjs BASE_URL CLIENT_ID CLIENT_SECRET
import { createRequire } from 'node:module';

const [base, clientId, secret] = process.argv.slice(2);
const platformClient = createRequire(import.meta.url)('purecloud-platform-client-v2');
const fail = (what) => {
  console.error(`sdk-org: ${what}`);
  process.exit(1);
};
const expect = (ok, what) => ok || fail(what);
const deadline = setTimeout(() => fail('not done within 30 s'), 30000);

const sdk = platformClient.ApiClient.instance;
const url = new URL(base);
sdk.setGateway({ host: url.hostname, protocol: url.protocol.slice(0, -1), port: Number(url.port) });
await sdk.loginClientCredentialsGrant(clientId, secret);

const users = new platformClient.UsersApi();
const presence = new platformClient.PresenceApi();
const notifications = new platformClient.NotificationsApi();
const routing = new platformClient.RoutingApi();

const me = await users.getUsersMe();
expect(typeof me.id === 'string', `users/me has an id: ${JSON.stringify(me)}`);
const before = await presence.getUserPresencesPurecloud(me.id);
expect(before.presenceDefinition?.systemPresence, `a presence: ${JSON.stringify(before)}`);
const catalogue = await presence.getPresenceDefinitions0();
const busy = catalogue.entities.find((d) => d.systemPresence === 'Busy');
expect(busy, `the catalogue has Busy: ${JSON.stringify(catalogue)}`);
const routingStatus = await users.getUserRoutingstatus(me.id);
expect(routingStatus.userId === me.id && routingStatus.status, `a routing status: ${JSON.stringify(routingStatus)}`);
const topics = await notifications.getNotificationsAvailabletopics({ expand: ['requiresPermissions', 'publicApiTemplateUriPaths'] });
const presenceFamily = topics.entities.find((t) => t.id === 'v2.users.{id}.presence');
expect(presenceFamily?.requiresPermissions?.length && presenceFamily.publicApiTemplateUriPaths?.length, `available topics, expanded: ${JSON.stringify(topics)}`);
const observations = await routing.postAnalyticsQueuesObservationsQuery({
  filter: { type: 'or', predicates: [{ dimension: 'queueId', value: 'sim-queue-1' }] },
  metrics: ['oWaiting', 'oInteracting'],
});
expect(observations.results?.[0]?.data?.length === 2, `queue observations: ${JSON.stringify(observations)}`);

// A channel of its own, one combined topic, a socket.
const channel = await notifications.postNotificationsChannels();
const combined = `v2.users.${me.id}?presence&routingStatus`;
const answer = await notifications.putNotificationsChannelSubscriptions(channel.id, [{ id: combined }], { ignoreErrors: true });
expect(answer.entities?.some((e) => e.id === combined && e.state === 'Permitted'), `the subscription lists the combined id: ${JSON.stringify(answer)}`);
const socket = new WebSocket(channel.connectUri);
const received = [];
const arrived = new Promise((resolve) => {
  socket.onmessage = (m) => {
    const frame = JSON.parse(m.data);
    if (frame.topicName === 'channel.metadata') return;
    // The organisation's topics carry the service's bodies, never the generic publisher's.
    expect(!('seq' in (frame.eventBody ?? {})), `a body of the service's shape: ${m.data}`);
    received.push(frame.topicName);
    if (frame.topicName === `v2.users.${me.id}.presence` && frame.eventBody?.presenceDefinition?.systemPresence === 'Busy') resolve(frame);
  };
});
await new Promise((resolve, reject) => {
  socket.onopen = resolve;
  socket.onerror = () => reject(new Error('the socket did not open'));
});

const written = await presence.patchUserPresencesPurecloud(me.id, { presenceDefinition: { id: busy.id }, message: 'from the SDK' });
expect(written.presenceDefinition?.systemPresence === 'Busy', `the write answers the new presence: ${JSON.stringify(written)}`);
const frame = await arrived;
const after = await presence.getUserPresencesPurecloud(me.id);
expect(after.presenceDefinition?.id === busy.id && after.message === 'from the SDK', `the write reads back: ${JSON.stringify(after)}`);
socket.close(1000);
clearTimeout(deadline);
console.log(JSON.stringify({
  me: me.id,
  presenceBefore: before.presenceDefinition.systemPresence,
  presenceAfter: after.presenceDefinition.systemPresence,
  routingStatus: routingStatus.status,
  availableTopics: topics.entities.map((t) => t.id),
  combined,
  deliveredAs: frame.topicName,
  correlationId: frame.metadata?.CorrelationId ?? null,
  received,
}));
process.exit(0);
