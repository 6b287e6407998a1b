//! A simulated organisation: users with a Genesys Cloud presence and a routing status, queues
//! whose conversations arrive, are answered and end, and the org's presence catalogue. Its
//! REST reads and writes and its notifications have the shapes of the official JavaScript
//! SDK's models (`purecloud-platform-client-v2`, `index.d.ts`): `UserPresence`,
//! `PresenceEventUserPresence`, `RoutingStatus`, `UserRoutingStatusUserRoutingStatus`,
//! `OrganizationPresence(Definition)`, `QueueObservationQueryResponse`,
//! `QueueConversationEventTopicConversation`, `AvailableTopic`, `User`.

use serde_json::{json, Value};

/// The organisation's presence catalogue: (id, name, `systemPresence`). The ids are the
/// simulator's own; a real org has GUIDs.
pub(crate) const PRESENCES: [(&str, &str, &str); 7] = [
    ("sim-presence-available", "Available", "Available"),
    ("sim-presence-away", "Away", "Away"),
    ("sim-presence-busy", "Busy", "Busy"),
    ("sim-presence-break", "Break", "Break"),
    ("sim-presence-meal", "Meal", "Meal"),
    ("sim-presence-on-queue", "On Queue", "On Queue"),
    ("sim-presence-offline", "Offline", "Offline"),
];

/// Routing statuses as the service names them.
const ROUTING: [&str; 5] = [
    "OFF_QUEUE",
    "IDLE",
    "INTERACTING",
    "NOT_RESPONDING",
    "COMMUNICATING",
];

/// Waiting conversations a queue holds at most (then callers give up: the oldest ends), and
/// answered ones (then the oldest ends).
const MAX_WAITING: usize = 50;
const MAX_INTERACTING: usize = 50;

/// Size of an organisation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrgConfig {
    /// Users (`sim-user-1` …; the first is the one `GET /api/v2/users/me` answers).
    pub users: usize,
    /// Queues (`sim-queue-1` …).
    pub queues: usize,
    /// Changes per second made by the organisation itself (a presence, a routing status, a
    /// conversation arriving, answered or ending), each published on its topic. Zero: the
    /// org changes only through the API (`PATCH` a presence) and `org_change` faults.
    pub change_rate: f64,
}

impl Default for OrgConfig {
    fn default() -> Self {
        OrgConfig {
            users: 5,
            queues: 2,
            change_rate: 0.0,
        }
    }
}

struct User {
    id: String,
    name: String,
    /// Index in [`PRESENCES`].
    presence: usize,
    message: String,
    modified: jiff::Timestamp,
    /// Index in [`ROUTING`].
    routing: usize,
    routing_since: jiff::Timestamp,
}

struct Conversation {
    id: String,
    /// The answering agent, once answered.
    agent: Option<String>,
    since: jiff::Timestamp,
}

struct Queue {
    id: String,
    name: String,
    waiting: Vec<Conversation>,
    interacting: Vec<Conversation>,
}

/// A change to publish: the topic and its event body.
pub(crate) type Published = (String, Value);

/// The organisation's state.
pub(crate) struct Org {
    users: Vec<User>,
    queues: Vec<Queue>,
    next_conversation: u64,
    rng: u64,
}

fn iso(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn presence_ref(i: usize) -> Value {
    let (id, _, system) = PRESENCES[i];
    json!({ "id": id, "systemPresence": system })
}

impl Default for Org {
    fn default() -> Org {
        Org::new(OrgConfig::default(), 1)
    }
}

impl Org {
    pub(crate) fn new(cfg: OrgConfig, seed: u64) -> Org {
        let now = jiff::Timestamp::now();
        let users = (1..=cfg.users.clamp(1, 10_000))
            .map(|i| User {
                id: format!("sim-user-{i}"),
                name: format!("Agent {i}"),
                presence: 0,
                message: String::new(),
                modified: now,
                routing: 1,
                routing_since: now,
            })
            .collect();
        let queues = (1..=cfg.queues.min(1_000))
            .map(|i| Queue {
                id: format!("sim-queue-{i}"),
                name: format!("Queue {i}"),
                waiting: Vec::new(),
                interacting: Vec::new(),
            })
            .collect();
        Org {
            users,
            queues,
            next_conversation: 0,
            rng: seed | 1,
        }
    }

    fn next(&mut self, below: usize) -> usize {
        // xorshift64*: reproducible for a seed, good enough for picking what changes.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (r % below.max(1) as u64) as usize
    }

    /// Whether `topic` is one the organisation publishes itself (a presence or routing status
    /// of its users, a queue's conversations): the generic publisher leaves those alone.
    pub(crate) fn owns(&self, topic: &str) -> bool {
        if let Some(rest) = topic.strip_prefix("v2.users.") {
            return rest
                .strip_suffix(".presence")
                .or_else(|| rest.strip_suffix(".routingStatus"))
                .is_some_and(|u| self.user(u).is_some());
        }
        topic
            .strip_prefix("v2.routing.queues.")
            .and_then(|r| r.strip_suffix(".conversations"))
            .is_some_and(|q| self.queues.iter().any(|x| x.id == q))
    }

    fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    /// `GET /api/v2/users/me`: the first user (`User`).
    pub(crate) fn me(&self) -> Value {
        // There is always a first user: `new` makes at least one.
        self.users.first().map_or(Value::Null, |u| {
            json!({
                "id": u.id, "name": u.name, "state": "active",
                "email": format!("{}@sim.invalid", u.id),
                "selfUri": format!("/api/v2/users/{}", u.id),
            })
        })
    }

    /// `GET /api/v2/users/{id}/presences/purecloud` (`UserPresence`).
    pub(crate) fn presence(&self, user: &str) -> Option<Value> {
        let u = self.user(user)?;
        let (id, _, system) = PRESENCES[u.presence];
        Some(json!({
            "source": "PURECLOUD",
            "primary": true,
            "presenceDefinition": {
                "id": id, "systemPresence": system,
                "selfUri": format!("/api/v2/presencedefinitions/{id}"),
            },
            "message": u.message,
            "modifiedDate": iso(u.modified),
            "selfUri": format!("/api/v2/users/{}/presences/purecloud", u.id),
        }))
    }

    /// `PATCH /api/v2/users/{id}/presences/purecloud` with a `UserPresence`: the new
    /// presence, and the notification it publishes. Err: (status, message).
    pub(crate) fn set_presence(
        &mut self,
        user: &str,
        body: &Value,
    ) -> Result<(Value, Published), (u16, String)> {
        let wanted = body["presenceDefinition"]["id"].as_str();
        let Some(p) = wanted.and_then(|w| PRESENCES.iter().position(|(id, ..)| *id == w)) else {
            return Err((
                400,
                "presenceDefinition.id names no presence of this org".into(),
            ));
        };
        let message = body["message"]
            .as_str()
            .map(|m| m.chars().take(250).collect());
        let Some(u) = self.users.iter_mut().find(|u| u.id == user) else {
            return Err((404, format!("User {user} not found")));
        };
        u.presence = p;
        if let Some(m) = message {
            u.message = m;
        }
        u.modified = jiff::Timestamp::now();
        match (self.presence(user), self.presence_event(user)) {
            (Some(read), Some(event)) => Ok((read, event)),
            _ => Err((404, format!("User {user} not found"))),
        }
    }

    /// The notification of a user's presence (`PresenceEventUserPresence`).
    fn presence_event(&self, user: &str) -> Option<Published> {
        let u = self.user(user)?;
        Some((
            format!("v2.users.{}.presence", u.id),
            json!({
                "source": "PURECLOUD",
                "presenceDefinition": presence_ref(u.presence),
                "primary": true,
                "message": u.message,
                "modifiedDate": iso(u.modified),
            }),
        ))
    }

    /// `GET /api/v2/users/{id}/queues` (`UserQueueEntityListing`): every user is a member of
    /// every queue, and has joined it.
    pub(crate) fn user_queues(&self, user: &str) -> Option<Value> {
        self.user(user)?;
        let entities: Vec<Value> = self
            .queues
            .iter()
            .map(|q| {
                json!({
                    "id": q.id, "name": q.name, "joined": true,
                    "memberCount": self.users.len(), "joinedMemberCount": self.users.len(),
                    "selfUri": format!("/api/v2/routing/queues/{}", q.id),
                })
            })
            .collect();
        Some(json!({
            "entities": entities, "pageSize": 25, "pageNumber": 1, "total": self.queues.len(),
        }))
    }

    /// The `systemPresence` of a user's Genesys Cloud presence now (the truth a test compares
    /// a desktop with).
    pub(crate) fn system_presence(&self, user: &str) -> Option<&'static str> {
        self.user(user).map(|u| PRESENCES[u.presence].2)
    }

    /// `GET /api/v2/users/{id}/routingstatus` (`RoutingStatus`).
    pub(crate) fn routing_status(&self, user: &str) -> Option<Value> {
        let u = self.user(user)?;
        Some(json!({
            "userId": u.id, "status": ROUTING[u.routing], "startTime": iso(u.routing_since),
        }))
    }

    /// The notification of a user's routing status (`UserRoutingStatusUserRoutingStatus`).
    fn routing_event(&self, i: usize) -> Published {
        let u = &self.users[i];
        (
            format!("v2.users.{}.routingStatus", u.id),
            json!({
                "id": u.id,
                "routingStatus": { "status": ROUTING[u.routing], "startTime": iso(u.routing_since) },
            }),
        )
    }

    /// The org's presence catalogue: `OrganizationPresenceDefinitionEntityListing` (`v2`:
    /// `/api/v2/presence/definitions`) or `OrganizationPresenceEntityListing` (the older
    /// `/api/v2/presencedefinitions`).
    pub(crate) fn presence_definitions(&self, older: bool) -> Value {
        let entities: Vec<Value> = PRESENCES
            .iter()
            .map(|(id, name, system)| {
                let mut e = json!({
                    "id": id, "name": name, "systemPresence": system, "deactivated": false,
                    "languageLabels": { "en_US": name },
                    "selfUri": format!("/api/v2/presence/definitions/{id}"),
                });
                if older {
                    e["primary"] = Value::Bool(true);
                } else {
                    e["type"] = Value::from("System");
                }
                e
            })
            .collect();
        json!({ "total": entities.len(), "entities": entities })
    }

    /// `POST /api/v2/analytics/queues/observations/query`: `oWaiting` and `oInteracting` for
    /// the queues the filter names (`queueId` predicates; every queue without one).
    pub(crate) fn observations(&self, query: &Value) -> Value {
        let mut named: Vec<&str> = Vec::new();
        let filter = &query["filter"];
        let clauses = filter["clauses"].as_array().into_iter().flatten();
        for p in filter["predicates"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(clauses.flat_map(|c| c["predicates"].as_array().into_iter().flatten()))
        {
            if p["dimension"] == "queueId" {
                if let Some(v) = p["value"].as_str() {
                    named.push(v);
                }
            }
        }
        let metrics: Vec<&str> = query["metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let results: Vec<Value> = self
            .queues
            .iter()
            .filter(|q| named.is_empty() || named.contains(&q.id.as_str()))
            .map(|q| {
                let data: Vec<Value> = metrics
                    .iter()
                    .filter_map(|m| {
                        let n = match *m {
                            "oWaiting" => q.waiting.len(),
                            "oInteracting" => q.interacting.len(),
                            _ => return None,
                        };
                        Some(json!({ "metric": m, "stats": { "count": n } }))
                    })
                    .collect();
                json!({ "group": { "queueId": q.id, "mediaType": "voice" }, "data": data })
            })
            .collect();
        json!({ "results": results })
    }

    /// The notification of a queue's conversation (`QueueConversationEventTopicConversation`,
    /// the parts a desktop reads): waiting while only the customer is there, answered once an
    /// agent participant is, over once the customer's `endTime` is set.
    fn conversation_event(q: &Queue, c: &Conversation, state: &str) -> Published {
        let mut participants = vec![json!({
            "id": format!("{}-customer", c.id), "purpose": "customer", "queueId": q.id,
            "connectedTime": iso(c.since),
            "endTime": if state == "disconnected" { Value::from(iso(jiff::Timestamp::now())) } else { Value::Null },
        })];
        if let Some(agent) = &c.agent {
            participants.push(json!({
                "id": format!("{}-agent", c.id), "purpose": "agent", "queueId": q.id,
                "userId": agent, "connectedTime": iso(jiff::Timestamp::now()),
            }));
        }
        (
            format!("v2.routing.queues.{}.conversations", q.id),
            json!({ "id": c.id, "participants": participants }),
        )
    }

    /// One change made by the organisation itself: a presence or routing status moves, or a
    /// conversation arrives, is answered or ends. Returns what to publish.
    pub(crate) fn step(&mut self) -> Vec<Published> {
        let now = jiff::Timestamp::now();
        let kind = self.next(if self.queues.is_empty() { 2 } else { 5 });
        match kind {
            0 => {
                let i = self.next(self.users.len());
                let p = self.next(PRESENCES.len());
                let u = &mut self.users[i];
                u.presence = p;
                u.modified = now;
                let id = u.id.clone();
                self.presence_event(&id).into_iter().collect()
            }
            1 => {
                let i = self.next(self.users.len());
                let r = self.next(ROUTING.len());
                let u = &mut self.users[i];
                u.routing = r;
                u.routing_since = now;
                vec![self.routing_event(i)]
            }
            2 | 3 => {
                // A call arrives, or the oldest waiting one is answered.
                let qi = self.next(self.queues.len());
                let agent = self.next(self.users.len());
                let agent = self.users[agent].id.clone();
                let q = &mut self.queues[qi];
                if kind == 3 && !q.waiting.is_empty() {
                    let mut c = q.waiting.remove(0);
                    c.agent = Some(agent);
                    let mut out = vec![Self::conversation_event(q, &c, "connected")];
                    q.interacting.push(c);
                    if q.interacting.len() > MAX_INTERACTING {
                        let gone = q.interacting.remove(0);
                        out.push(Self::conversation_event(q, &gone, "disconnected"));
                    }
                    return out;
                }
                self.next_conversation += 1;
                let c = Conversation {
                    id: format!("sim-conversation-{}", self.next_conversation),
                    agent: None,
                    since: now,
                };
                let q = &mut self.queues[qi];
                let mut out = vec![Self::conversation_event(q, &c, "alerting")];
                q.waiting.push(c);
                if q.waiting.len() > MAX_WAITING {
                    let gone = q.waiting.remove(0);
                    out.push(Self::conversation_event(q, &gone, "disconnected"));
                }
                out
            }
            _ => {
                // The oldest answered conversation ends.
                let qi = self.next(self.queues.len());
                let q = &mut self.queues[qi];
                if q.interacting.is_empty() {
                    return Vec::new();
                }
                let c = q.interacting.remove(0);
                vec![Self::conversation_event(q, &c, "disconnected")]
            }
        }
    }
}

/// The notification families the simulator knows, as `GET /api/v2/notifications/
/// availabletopics` lists them (`AvailableTopic`); `expand` adds what the service adds.
pub(crate) fn available_topics(expand: &[&str]) -> Value {
    let families = [
        (
            "v2.users.{id}.presence",
            "A user's Genesys Cloud presence",
            vec!["presence:userPresence:view"],
            vec!["/api/v2/users/{userId}/presences/purecloud"],
        ),
        (
            "v2.users.{id}.routingStatus",
            "A user's routing status",
            vec!["routing:agent:view"],
            vec!["/api/v2/users/{userId}/routingstatus"],
        ),
        (
            "v2.routing.queues.{id}.conversations",
            "The conversations of a queue",
            vec!["routing:queue:view"],
            vec!["/api/v2/analytics/queues/observations/query"],
        ),
    ];
    let entities: Vec<Value> = families
        .into_iter()
        .map(|(id, description, permissions, paths)| {
            let mut e = json!({ "id": id, "description": description });
            if expand.contains(&"requirespermissions") {
                e["requiresPermissions"] = json!(permissions);
            }
            if expand.contains(&"publicapitemplateuripaths") {
                e["publicApiTemplateUriPaths"] = json!(paths);
            }
            if expand.contains(&"transports") {
                e["transports"] = json!(["Websocket"]);
            }
            e["topicParameters"] = json!(["id"]);
            e
        })
        .collect();
    json!({ "entities": entities })
}

/// The topics a combined topic (`v2.users.{id}?presence&routingStatus`) stands for, each
/// delivered under its own name; a plain topic stands for itself.
pub(crate) fn parts(topic: &str) -> Vec<String> {
    match topic.split_once('?') {
        Some((prefix, rest)) => rest
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| format!("{prefix}.{p}"))
            .collect(),
        None => vec![topic.to_owned()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_combined_topic_stands_for_its_parts() {
        assert_eq!(
            parts("v2.users.u1?presence&routingStatus"),
            ["v2.users.u1.presence", "v2.users.u1.routingStatus"]
        );
        assert_eq!(parts("v2.users.u1.presence"), ["v2.users.u1.presence"]);
        assert_eq!(parts("v2.users.u1?"), Vec::<String>::new());
    }

    #[test]
    fn the_org_owns_its_users_and_queues_topics_only() {
        let org = Org::new(OrgConfig::default(), 1);
        assert!(org.owns("v2.users.sim-user-1.presence"));
        assert!(org.owns("v2.users.sim-user-5.routingStatus"));
        assert!(org.owns("v2.routing.queues.sim-queue-2.conversations"));
        assert!(!org.owns("v2.users.sim-user-6.presence"));
        assert!(!org.owns("v2.users.agent-1.presence"));
        assert!(!org.owns("v2.users.sim-user-1.conversations"));
    }

    #[test]
    fn a_presence_write_reads_back_and_publishes_its_event() {
        let mut org = Org::new(OrgConfig::default(), 7);
        let body =
            json!({ "presenceDefinition": { "id": "sim-presence-busy" }, "message": "lunch soon" });
        let (read, (topic, event)) = org.set_presence("sim-user-2", &body).unwrap();
        assert_eq!(topic, "v2.users.sim-user-2.presence");
        assert_eq!(read["presenceDefinition"]["systemPresence"], "Busy");
        assert_eq!(event["presenceDefinition"]["id"], "sim-presence-busy");
        assert_eq!(event["message"], "lunch soon");
        assert_eq!(org.presence("sim-user-2").unwrap(), read);
        let unknown = json!({ "presenceDefinition": { "id": "nope" } });
        assert_eq!(org.set_presence("sim-user-2", &unknown).unwrap_err().0, 400);
        assert_eq!(org.set_presence("nobody", &body).unwrap_err().0, 404);
    }

    #[test]
    fn queues_count_what_arrives_is_answered_and_ends() {
        let mut org = Org::new(OrgConfig::default(), 3);
        let mut events = 0;
        for _ in 0..500 {
            events += org.step().len();
        }
        assert!(events > 300, "most steps publish: {events}");
        let q = json!({ "filter": { "type": "or", "predicates": [{ "dimension": "queueId", "value": "sim-queue-1" }] },
                        "metrics": ["oWaiting", "oInteracting"] });
        let r = org.observations(&q);
        let results = r["results"].as_array().unwrap();
        assert_eq!(results.len(), 1);
        assert_eq!(results[0]["group"]["queueId"], "sim-queue-1");
        let waiting = results[0]["data"][0]["stats"]["count"].as_u64().unwrap();
        assert_eq!(waiting, org.queues[0].waiting.len() as u64);
        assert!(waiting <= MAX_WAITING as u64);
        assert!(org
            .queues
            .iter()
            .all(|q| q.interacting.len() <= MAX_INTERACTING));
    }
}
