//! The `Session` state machine.
//!
//! This file holds the session's state, its public API, the drive loop (`settle`) and the
//! dispatch of inputs and timers. Each concern lives in a sibling file: small types that own
//! their state and the methods that change it (`ledger`, `dedup`, `guards`, `budget`,
//! `links`, `link`, `liveness`), and the session's reactions to one kind of event each
//! (`setup`, `subscription`, `socket`, `handover`, `token`, `loss`, `schedule`). See
//! docs/architecture.md for which file owns what.

mod budget;
mod deadline;
mod dedup;
mod guards;
mod handover;
mod ledger;
mod link;
mod links;
mod liveness;
mod loss;
mod schedule;
mod setup;
mod socket;
mod subscription;
mod token;

use budget::Budgets;
pub use deadline::Deadline;
use deadline::SessionTimer;
use dedup::Dedup;
pub use dedup::MAX_DEDUP_KEYS;
pub use guards::MAX_RETRY_AFTER;
use guards::{AuthStreak, MalformedDigest, Refusals};
use ledger::Ledger;
use link::{Link, LinkTimer, Plan, Renewal, Step, Sub, Wait, Which, SLOTS};
use links::Links;
use loss::Ending;
use schedule::Pace;
use token::Tokens;

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use crate::config::Config;
use crate::error::{AuthError, Error, FatalError, RequestError, UsageError};
use crate::io::{Action, Event, GapReason, Input, Status};
use crate::rng::Rng;
use crate::sorted::SortedSet;
use crate::time::Instant;
use crate::types::{ConnId, ReqId, Secret, Topic, MAX_TOPICS};

const NORMAL_CLOSE: u16 = 1000;
/// The longest close reason a warning repeats, in characters.
const MAX_CLOSE_REASON: usize = 200;
/// Deadlines fired in one `settle` at most.
const SETTLE_BOUND: u32 = 64;
/// A connection that was live this long and received a frame after going live proved the
/// path: its loss retries at once, like a stable one's. One that dies sooner is a flapping
/// path, and its retries back off. (`stable_after`, if shorter, is enough too.)
const SERVED_FOR: Duration = Duration::from_secs(2);
/// While coverage is lost the token budget allows this many requests a minute (one a second
/// on average), whatever `max_token_requests_per_minute` says for calm times.
pub const URGENT_TOKEN_REQUESTS_PER_MINUTE: u32 = 60;
/// Channel requests allowed per minute, refused ones included (those that may have made a
/// channel are bounded by `max_channel_creations_per_minute`).
pub const CHANNEL_REQUESTS_PER_MINUTE: u32 = 30;
/// While coverage is lost, the average spacing of token requests.
const URGENT_TOKEN_SPACING: Duration = Duration::from_secs(1);

/// A timer of the session or of one of its links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Session(SessionTimer),
    Link(Which, LinkTimer),
}

impl Timer {
    fn reason(self) -> Deadline {
        match self {
            Timer::Session(t) => t.reason(),
            Timer::Link(_, t) => t.reason(),
        }
    }
}

/// Request kinds whose `Retry-After` holds back every request of the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Token,
    Channel,
}

/// Entry counts of the session's internal collections, from [`Session::footprint`](crate::Session::footprint).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Footprint {
    /// Topics the application wants.
    pub topics: usize,
    /// Topics the service refused, with their reasons.
    pub rejected: usize,
    /// Topics not covered now, waiting for their gap report.
    pub uncovered: usize,
    /// Actions not yet polled.
    pub queued_actions: usize,
    /// Events not yet polled.
    pub queued_events: usize,
    /// Keys of the duplicate suppression while two sockets overlap.
    pub overlap_dedup: usize,
    /// Keys of the duplicate suppression between two links (`redundancy: 2`).
    pub window_dedup: usize,
    /// Request times the per-minute budgets remember.
    pub budget_entries: usize,
    /// Channel links (at most three per shard).
    pub links: usize,
    /// Ping send times remembered to match pongs, over all open sockets.
    pub pings_remembered: usize,
    /// Shards: channels' worth of topics (see [`Session::shards`](crate::Session::shards)).
    pub shards: usize,
}

impl Footprint {
    /// Adds a shard's counts.
    pub(crate) fn add(&mut self, o: &Footprint) {
        self.topics += o.topics;
        self.rejected += o.rejected;
        self.uncovered += o.uncovered;
        self.queued_actions += o.queued_actions;
        self.queued_events += o.queued_events;
        self.overlap_dedup += o.overlap_dedup;
        self.window_dedup += o.window_dedup;
        self.budget_entries += o.budget_entries;
        self.links += o.links;
        self.pings_remembered += o.pings_remembered;
    }
}

/// Where the session is in its life.
#[derive(Debug)]
enum Life {
    /// Everything that only means something while the session runs lives in here, and goes
    /// with it when the session stops or waits for a login.
    Running(Box<Running>),
    /// Only `login` goes on; no IO meanwhile.
    LoginRequired,
    /// `close` was called.
    Closed,
    /// Stopped by a [`FatalError`].
    Failed,
}

/// What exists only while the session runs.
#[derive(Debug)]
struct Running {
    links: Links,
    /// The token request in flight, and when it went.
    token_req: Option<(ReqId, Instant)>,
    dedup: Dedup,
}

impl Running {
    fn new(links: Links) -> Box<Running> {
        let dedup = Dedup::new(links.two());
        Box::new(Running {
            links,
            token_req: None,
            dedup,
        })
    }
}

impl Life {
    /// Closed or failed: nothing more happens.
    fn is_over(&self) -> bool {
        matches!(self, Life::Closed | Life::Failed)
    }
}

/// One shard of a [`Session`](crate::Session): its topics (at most one channel's worth) kept
/// on one channel link, or two with `redundancy: 2`, for as long as the session wants them.
/// The session drives each shard the way an adapter drives the session: inputs in, then
/// actions, events and deadlines out. Ids come from the shard's own range, so the session
/// knows which shard an answer is for.
pub(crate) struct Shard {
    cfg: Config,
    rng: Rng,
    /// Hashed into every duplicate-suppression key (see `dedup::key`); drawn from the seed
    /// apart from `rng`, so jitter is the same with or without it.
    dedup_salt: u64,
    now: Instant,
    next_id: u64,
    topics: SortedSet<Topic>,
    tokens: Tokens,
    /// A `Retry-After` from the channel endpoint: no creation before this.
    create_not_before: Instant,
    life: Life,
    /// The service was seen to keep each topic on one channel: one lane only, whatever
    /// `redundancy` says.
    topics_exclusive: bool,
    /// [`Config::first_retry_spread`], or what the adapter set since.
    first_retry_spread: Duration,
    ever_live: bool,
    last_status: Option<Status>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    ledger: Ledger,
    budgets: Budgets,
    auth_streak: AuthStreak,
    refusals: Refusals,
    malformed: MalformedDigest,
    /// The service's pace as seen so far: its last `Retry-After`, its round trips.
    pace: Pace,
}

/// Shows the state, never a secret.
impl fmt::Debug for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shard")
            .field("now", &self.now)
            .field("status", &self.status())
            .field("topics", &self.topics.len())
            .field("active", &self.link(Which::Active).map(|l| &l.step))
            .field("standby", &self.link(Which::Standby).map(|l| &l.step))
            .field("twin", &self.link(Which::Twin).map(|l| &l.step))
            .field("token_gen", &self.tokens.current.as_ref().map(|t| t.gen))
            .finish_non_exhaustive()
    }
}

impl Shard {
    /// Starts a session at `now`. It asks for a token at once (`poll_action` gives
    /// `RequestToken`); topics can be added before or after with [`subscribe`](Self::subscribe).
    ///
    /// `seed` drives backoff and renewal jitter: the same seed and inputs give the same outputs.
    pub(crate) fn new(
        config: Config,
        now: Instant,
        seed: u64,
        first_id: u64,
        token: Option<(Secret, Duration)>,
    ) -> Shard {
        let first_retry_spread = config.first_retry_spread;
        let mut s = Shard {
            cfg: config,
            rng: Rng::new(seed),
            dedup_salt: Rng::new(!seed).next_u64(),
            now,
            next_id: first_id,
            topics: SortedSet::new(),
            tokens: Tokens::default(),
            create_not_before: Instant::ZERO,
            life: Life::LoginRequired,
            topics_exclusive: false,
            first_retry_spread,
            ever_live: false,
            last_status: None,
            actions: VecDeque::new(),
            events: VecDeque::new(),
            ledger: Ledger::default(),
            budgets: Budgets::default(),
            auth_streak: AuthStreak::default(),
            refusals: Refusals::default(),
            malformed: MalformedDigest::default(),
            pace: Pace::default(),
        };
        if let Some((value, expires_in)) = token {
            s.install_token(value, expires_in, false);
        }
        s.start_running();
        s.settle();
        s
    }

    /// Links that hold a channel or ask for one: this shard's share of the channel budget.
    pub(crate) fn channels_held(&self) -> usize {
        self.links().map_or(0, |l| {
            l.all()
                .filter(|(_, l)| l.chan.is_some() || matches!(l.step, Step::Creating { .. }))
                .count()
        })
    }

    /// True while the channel request `req` is unanswered.
    pub(crate) fn awaits_channel(&self, req: ReqId) -> bool {
        self.link_creating(req).is_some()
    }

    /// The current token and its remaining life, for a new shard to start with.
    pub(crate) fn token_to_share(&self) -> Option<(Secret, Duration)> {
        let t = self.tokens.current.as_ref()?;
        let left = t.expires_at.saturating_duration_since(self.now);
        (!t.stale && !left.is_zero()).then(|| (t.value.clone(), left))
    }

    // ----- getters -------------------------------------------------------------------------

    /// Where the session stands.
    pub(crate) fn status(&self) -> Status {
        match self.life {
            Life::Failed => return Status::Failed,
            Life::Closed => return Status::Closed,
            Life::LoginRequired => return Status::LoginRequired,
            Life::Running(_) => {}
        }
        let live = |l: &Link| {
            l.open()
                .is_some_and(|o| o.is_live() && o.alive.suspect_since.is_none())
        };
        if self.lanes().any(live) {
            Status::Live
        } else if self.ever_live {
            Status::Recovering
        } else {
            Status::Connecting
        }
    }

    /// The desired topic set, in stable order.
    pub(crate) fn topics(&self) -> impl Iterator<Item = &Topic> {
        self.topics.iter()
    }

    /// Topics a live, subscribed socket covers right now.
    pub(crate) fn covered_topics(&self) -> impl Iterator<Item = &Topic> {
        self.topics.iter().filter(move |t| {
            self.lanes()
                .any(|l| l.live_topics().is_some_and(|s| s.contains(*t)))
        })
    }

    /// How many entries each of the session's internal collections holds now: for soak tests
    /// and monitoring that every one of them stays within its bound however long the
    /// session runs.
    pub(crate) fn footprint(&self) -> Footprint {
        let links = self
            .links()
            .into_iter()
            .flat_map(|l| l.all().map(|(_, l)| l));
        let b = &self.budgets;
        let (overlap_dedup, window_dedup) = self.run().map_or((0, 0), |r| r.dedup.lens());
        Footprint {
            topics: self.topics.len(),
            rejected: self.ledger.rejected_len(),
            uncovered: self.ledger.uncovered_len(),
            queued_actions: self.actions.len(),
            queued_events: self.events.len(),
            overlap_dedup,
            window_dedup,
            budget_entries: b.channel.len()
                + b.channel_requests.len()
                + b.subscription.len()
                + b.connect.len()
                + self.tokens.budget.len(),
            links: links.clone().count(),
            pings_remembered: links
                .filter_map(Link::open)
                .map(|o| o.alive.pings.len())
                .sum(),
            shards: 1,
        }
    }

    /// Live, subscribed sockets that carry coverage now: 0 or 1, or up to 2 with
    /// `redundancy: 2` (a make-before-break replacement is not counted until it takes over).
    pub(crate) fn live_sockets(&self) -> usize {
        self.lanes().filter(|l| l.is_live()).count()
    }

    /// The current token, if it is neither expired at `now` nor rejected.
    pub(crate) fn access_token(&self, now: Instant) -> Option<&Secret> {
        self.tokens
            .current
            .as_ref()
            .filter(|t| !t.stale && t.expires_at > now)
            .map(|t| &t.value)
    }

    // ----- outputs -------------------------------------------------------------------------

    /// The next IO the adapter owes. Drain until `None` after every input or command.
    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event for the application. Drain until `None` after every input or command.
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) must be called,
    /// with the reason. `None`: nothing is scheduled (closed, or waiting for a login).
    pub(crate) fn poll_timeout(&self) -> Option<(Instant, Deadline)> {
        let mut best: Option<(Instant, Deadline)> = None;
        self.for_each_deadline(|at, timer| {
            if best.is_none_or(|(b, _)| at < b) {
                best = Some((at, timer.reason()));
            }
        });
        best
    }

    // ----- inputs --------------------------------------------------------------------------

    /// Feeds one thing that happened. Results naming an id the session no longer waits for
    /// are ignored.
    pub(crate) fn handle_input(&mut self, now: Instant, input: Input) {
        self.set_now(now);
        if self.life.is_over() {
            return;
        }
        let mut input = input;
        let capped = match &mut input {
            Input::TokenFailed { error, .. } => guards::cap_retry_after("token request", error),
            Input::ChannelFailed { error, .. } => {
                guards::cap_retry_after("channel creation", error)
            }
            Input::SubscribeFailed { error, .. } => guards::cap_retry_after("subscription", error),
            Input::ConnectFailed { error, .. } => guards::cap_retry_after("socket upgrade", error),
            Input::TokenIssued { .. }
            | Input::ChannelCreated { .. }
            | Input::Subscribed { .. }
            | Input::Opened { .. }
            | Input::Frame { .. }
            | Input::Closed { .. }
            | Input::Resumed { .. } => None,
        };
        if let Some(w) = capped {
            self.warn(w);
        }
        match input {
            Input::TokenIssued {
                req,
                token,
                expires_in,
                rotated_refresh_token,
            } => self.on_token_issued(req, token, expires_in, rotated_refresh_token),
            Input::TokenFailed { req, error } => {
                self.honour_retry_after(Kind::Token, &error);
                self.on_token_failed(req, error)
            }
            Input::ChannelCreated {
                req,
                id,
                connect_uri,
                expires_in,
            } => self.on_channel_created(req, id, connect_uri, expires_in),
            Input::ChannelFailed { req, error } => {
                self.honour_retry_after(Kind::Channel, &error);
                if let Some(w) = self.link_creating(req) {
                    self.on_create_failed(w, &error);
                }
            }
            Input::Subscribed { req, results } => self.on_subscribed(req, results),
            Input::SubscribeFailed { req, error } => {
                if let Some(w) = self.link_subscribing(req) {
                    self.on_subscribe_failed(w, &error);
                }
            }
            Input::Opened { conn } => self.on_opened(conn),
            Input::ConnectFailed { conn, error } => {
                if let Some(w) = self.link_connecting(conn) {
                    self.on_connect_failed(w, &error);
                }
            }
            Input::Frame { conn, text } => self.on_frame(conn, text),
            Input::Closed { conn, code, reason } => self.on_closed(conn, code, reason),
            Input::Resumed { slept } => self.on_resumed(slept),
        }
        self.settle();
    }

    /// Sets [`Config::first_retry_spread`] from now on. An adapter that runs many sessions in
    /// one process widens it with their number, so that sessions dropped together do not
    /// reconnect together.
    pub(crate) fn set_first_retry_spread(&mut self, spread: Duration) {
        self.first_retry_spread = spread;
    }

    /// Handles every deadline at or before `now`. Call it when `poll_timeout` says.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.set_now(now);
        if !self.life.is_over() {
            self.settle();
        }
    }

    // ----- commands ------------------------------------------------------------------------

    /// Adds topics to the desired set. While live, the whole set is PUT again.
    ///
    /// Fails without changing anything if the set would exceed 1000 topics or the session is
    /// closed.
    pub(crate) fn subscribe(
        &mut self,
        now: Instant,
        topics: impl IntoIterator<Item = Topic>,
    ) -> Result<(), UsageError> {
        self.set_now(now);
        if self.life.is_over() {
            return Err(UsageError::Closed);
        }
        let mut wanted = self.topics.clone();
        let mut added = Vec::new();
        for t in topics {
            if wanted.insert(t.clone()) {
                added.push(t);
            }
        }
        if wanted.len() > MAX_TOPICS {
            return Err(UsageError::TooManyTopics {
                requested: wanted.len(),
                fit: MAX_TOPICS,
            });
        }
        for t in &added {
            self.ledger.asked_again(t);
        }
        if !added.is_empty() {
            self.topics = wanted;
            self.topics_changed();
        }
        self.settle();
        Ok(())
    }

    /// Removes topics from the desired set. While live, the remaining set is PUT again.
    pub(crate) fn unsubscribe<'t>(
        &mut self,
        now: Instant,
        topics: impl IntoIterator<Item = &'t Topic>,
    ) -> Result<(), UsageError> {
        self.set_now(now);
        if self.life.is_over() {
            return Err(UsageError::Closed);
        }
        let mut changed = false;
        for t in topics {
            changed |= self.topics.remove(t);
            self.ledger.forget(t);
        }
        if changed {
            self.topics_changed();
        }
        self.settle();
        Ok(())
    }

    /// Supplies an access token from a new login (or from an application that owns its
    /// login). Leaves `LoginRequired` and resumes with the same topic set.
    pub(crate) fn login(
        &mut self,
        now: Instant,
        token: Secret,
        expires_in: Duration,
    ) -> Result<(), UsageError> {
        self.set_now(now);
        if self.life.is_over() {
            return Err(UsageError::Closed);
        }
        self.install_token(token, expires_in, false);
        self.auth_streak.end();
        match self.run_mut() {
            Some(r) => r.token_req = None,
            None => self.start_running(),
        }
        self.settle();
        Ok(())
    }

    /// The application's own API call with `token` was answered 401. If that is the current
    /// token, it is dropped and one shared refresh follows (with a new channel, since the
    /// channel is bound to the token). Reports about older tokens are ignored.
    pub(crate) fn report_unauthorized(&mut self, now: Instant, token: &str) {
        self.set_now(now);
        if !self.running() {
            return;
        }
        let Some(t) = self.tokens.current.as_mut() else {
            return;
        };
        if t.stale || t.value.expose() != token {
            return;
        }
        t.stale = true;
        let gen = t.gen;
        self.renew_links_on(gen);
        self.settle();
    }

    /// Closes every socket with 1000 and stops. Later inputs are ignored. A stretch that was
    /// still uncovered (the session was recovering) is reported as a `Gap` ending now, before
    /// the `Closed` status: nothing is lost without a report, even at exit.
    pub(crate) fn close(&mut self, now: Instant) {
        self.set_now(now);
        if self.life.is_over() {
            return;
        }
        self.stop();
        self.emit_status();
    }

    /// Closes every socket, reports what was still uncovered, and ends all IO.
    fn stop(&mut self) {
        let now = self.now;
        // Every live socket is closed now: a topic was covered up to now unless every socket
        // that carried it is unproven since a suspend.
        for (t, (since, suspended)) in self.coverage_ends(Ending::Closing) {
            if suspended {
                self.ledger.lose(&t, since, GapReason::Suspended);
            }
        }
        self.ledger.end_all(now, &mut self.events);
        self.flush_malformed();
        self.leave_running(Life::Closed);
    }

    /// Starts running with new links: one lane, or two with `redundancy: 2` unless the
    /// service keeps each topic on one channel.
    fn start_running(&mut self) {
        let active = self.new_link();
        let two = self.cfg.redundancy >= 2 && !self.topics_exclusive;
        let twin = two.then(|| self.new_link());
        self.life = Life::Running(Running::new(Links::new(active, twin)));
    }

    /// Ends what only exists while running: every socket is closed, and the links, the token
    /// request in flight and duplicate suppression go.
    fn leave_running(&mut self, next: Life) {
        if let Life::Running(r) = std::mem::replace(&mut self.life, next) {
            for (_, l) in r.links.all() {
                if let Some(conn) = l.conn() {
                    self.actions.push_back(Action::Close {
                        conn,
                        code: NORMAL_CLOSE,
                    });
                }
            }
        }
    }

    /// An answer that retrying cannot fix: retried once, then the session stops for good.
    /// Returns true if it stopped.
    fn refused(&mut self, what: &'static str, detail: &str) -> bool {
        if !self.refusals.refused(what) {
            return false;
        }
        let error = FatalError::Refused {
            what,
            detail: detail.to_owned(),
        };
        self.stop();
        self.life = Life::Failed;
        self.events.push_back(Event::Fatal(error));
        true
    }

    /// The one place a token or channel `Retry-After` is read: no request of that kind goes
    /// out before it, whether the session still waits for the answer or not.
    fn honour_retry_after(&mut self, kind: Kind, error: &RequestError) {
        let Some(ra) = error.retry_after() else {
            return;
        };
        self.pace.retry_after(ra, self.now);
        let at = self.now + ra;
        match kind {
            Kind::Token => {
                self.tokens.retry_at = Some(self.tokens.retry_at.map_or(at, |t| t.max(at)));
            }
            Kind::Channel => self.create_not_before = self.create_not_before.max(at),
        }
    }

    fn flush_malformed(&mut self) {
        if let Some(w) = self.malformed.flush() {
            self.warn(w);
        }
    }

    // ----- plumbing ------------------------------------------------------------------------

    fn running(&self) -> bool {
        matches!(self.life, Life::Running(_))
    }

    fn run(&self) -> Option<&Running> {
        match &self.life {
            Life::Running(r) => Some(r),
            Life::LoginRequired | Life::Closed | Life::Failed => None,
        }
    }

    fn run_mut(&mut self) -> Option<&mut Running> {
        match &mut self.life {
            Life::Running(r) => Some(r),
            Life::LoginRequired | Life::Closed | Life::Failed => None,
        }
    }

    /// The token request in flight, and when it went.
    fn token_req(&self) -> Option<(ReqId, Instant)> {
        self.run().and_then(|r| r.token_req)
    }

    fn set_token_req(&mut self, req: Option<(ReqId, Instant)>) {
        if let Some(r) = self.run_mut() {
            r.token_req = req;
        }
    }

    fn links(&self) -> Option<&Links> {
        self.run().map(|r| &r.links)
    }

    fn links_mut(&mut self) -> Option<&mut Links> {
        self.run_mut().map(|r| &mut r.links)
    }

    fn set_now(&mut self, now: Instant) {
        if now < self.now {
            let by_ms = (self.now - now).as_millis() as u64;
            self.warn(UsageError::TimeWentBackwards { by_ms });
        } else {
            self.now = now;
        }
    }

    fn warn(&mut self, e: impl Into<Error>) {
        self.events.push_back(Event::Warning(e.into()));
    }

    fn fresh_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn new_link(&mut self) -> Link {
        let tag = self.fresh_id();
        Link::new(tag)
    }

    fn link(&self, w: Which) -> Option<&Link> {
        self.links()?.get(w)
    }

    fn link_mut(&mut self, w: Which) -> Option<&mut Link> {
        self.links_mut()?.get_mut(w)
    }

    fn take_link(&mut self, w: Which) -> Option<Link> {
        self.links_mut()?.take(w)
    }

    fn put_link(&mut self, w: Which, link: Link) {
        if let Some(links) = self.links_mut() {
            links.put(w, link);
        }
    }

    /// True when a link other than `w` satisfies `pred`.
    fn other_link(&self, w: Which, pred: impl Fn(&Link) -> bool) -> bool {
        self.links().is_some_and(|l| l.any_other(w, pred))
    }

    fn find(&self, pred: impl Fn(&Link) -> bool) -> Option<Which> {
        self.links()?.find(pred)
    }

    /// Two lanes carry every topic.
    fn redundant(&self) -> bool {
        self.links().is_some_and(Links::two)
    }

    /// The links that carry coverage (a standby does once it takes over).
    fn lanes(&self) -> impl Iterator<Item = &Link> {
        self.links().into_iter().flat_map(Links::lanes)
    }

    /// The other link that carries coverage, with two lanes.
    fn other_lane(&self, w: Which) -> Option<Which> {
        self.links()?.other_lane(w)
    }

    /// The lane the standby replaces.
    fn standby_for(&self) -> Which {
        self.links().map_or(Which::Active, Links::standby_for)
    }

    fn has_standby(&self) -> bool {
        self.links().is_some_and(Links::has_standby)
    }

    /// True if a live socket other than `w`'s carries topic `t` now.
    fn covered_elsewhere(&self, w: Which, t: &Topic) -> bool {
        self.other_lane(w)
            .and_then(|x| self.link(x))
            .and_then(Link::live_topics)
            .is_some_and(|s| s.contains(t))
    }

    fn link_creating(&self, req: ReqId) -> Option<Which> {
        self.find(|l| matches!(l.step, Step::Creating { req: r, .. } if r == req))
    }

    fn link_connecting(&self, conn: ConnId) -> Option<Which> {
        self.find(|l| matches!(l.step, Step::Connecting { conn: c, .. } if c == conn))
    }

    fn link_open(&self, conn: ConnId) -> Option<Which> {
        self.find(|l| l.open().is_some_and(|o| o.conn == conn))
    }

    fn link_subscribing(&self, req: ReqId) -> Option<Which> {
        self.find(|l| {
            let request = match &l.step {
                Step::Open(o) => o.sub.request(),
                Step::Connecting { early, .. } => early.request(),
                Step::Waiting { .. } | Step::NeedToken | Step::Creating { .. } => None,
            };
            request.is_some_and(|s| s.req == req)
        })
    }

    /// Runs deadlines that are due, then moves every link as far as it can go without an
    /// answer, then asks for a token if someone waits for one. Ends with nothing due at `now`.
    fn settle(&mut self) {
        // Each firing clears or moves its own deadline, so a handful suffice; the bound only
        // turns a bug that would spin into one that shows.
        let mut fired = 0;
        loop {
            if !self.running() {
                break;
            }
            if fired == SETTLE_BOUND {
                debug_assert!(false, "deadlines still due after {SETTLE_BOUND} firings");
                break;
            }
            fired += 1;
            let mut due: Option<(Instant, Timer)> = None;
            let now = self.now;
            self.for_each_deadline(|at, timer| {
                if at <= now && due.is_none_or(|(b, _)| at < b) {
                    due = Some((at, timer));
                }
            });
            match due {
                Some((_, Timer::Session(t))) => self.fire_session(t),
                Some((_, Timer::Link(w, t))) => self.fire_link(w, t),
                None => break,
            }
        }
        if self.running() {
            self.drive(Which::Active);
            self.drive(Which::Standby);
            self.drive(Which::Twin);
            self.drive_token();
            // From the moment the new socket is asked for, not only once it is known open:
            // the service may send to it as soon as it is upgraded on its side, and the old
            // socket's copy of such a notification can be read before the session hears the
            // new one opened.
            let overlapping = self.link(Which::Active).is_some_and(Link::is_open)
                && self
                    .link(Which::Standby)
                    .is_some_and(|l| l.is_open() || matches!(l.step, Step::Connecting { .. }));
            let until = self.now + self.cfg.dedup_linger;
            if let Some(r) = self.run_mut().filter(|_| overlapping) {
                r.dedup.overlap_until(until);
            }
            self.close_gaps();
        }
        self.emit_status();
    }

    fn emit_status(&mut self) {
        let s = self.status();
        if s == Status::Live {
            self.ever_live = true;
        }
        if self.last_status != Some(s) {
            self.last_status = Some(s);
            self.events.push_back(Event::Status(s));
        }
    }

    /// Every pending deadline, with its reason and whom it concerns. `poll_timeout` and
    /// `settle` both read this one list, so they cannot disagree.
    fn for_each_deadline(&self, mut f: impl FnMut(Instant, Timer)) {
        if !self.running() {
            return;
        }
        let rt = self.cfg.request_timeout;
        if let Some((_, sent)) = self.token_req() {
            f(sent + rt, Timer::Session(SessionTimer::TokenRequest));
        }
        if let Some(at) = self.tokens.retry_at {
            f(at, Timer::Session(SessionTimer::TokenRetry));
        }
        if let Some(at) = self.run().and_then(|r| r.dedup.expires_at()) {
            f(at, Timer::Session(SessionTimer::DedupExpiry));
        }
        if let Some(at) = self.linger_ends() {
            f(at, Timer::Session(SessionTimer::HandoverLinger));
        }
        if let Some(at) = self.malformed.due() {
            f(at, Timer::Session(SessionTimer::WarningDigest));
        }
        for w in SLOTS {
            let Some(l) = self.link(w) else { continue };
            let t = |timer| Timer::Link(w, timer);
            match &l.step {
                Step::Waiting { until, why, .. } => f(*until, t(LinkTimer::Wait(*why))),
                Step::NeedToken => {}
                Step::Creating { sent, .. } | Step::Connecting { sent, .. } => {
                    f(*sent + rt, t(LinkTimer::RequestTimeout))
                }
                Step::Open(o) => {
                    match &o.sub {
                        Sub::InFlight { request, .. } => {
                            f(request.sent + rt, t(LinkTimer::RequestTimeout))
                        }
                        Sub::Wanted {
                            not_before: Some(at),
                        } => f(*at, t(LinkTimer::Wait(Wait::Backoff))),
                        Sub::Wanted { not_before: None } | Sub::Current => {}
                    }
                    if let Some(at) = o.closing_by {
                        f(at, t(LinkTimer::HandoverGrace));
                    }
                    match o.alive.deadline() {
                        (at, true) => f(at, t(LinkTimer::PingTimeout)),
                        (at, false) => f(at, t(LinkTimer::Idle)),
                    }
                    if let Some(c) = &l.chan {
                        f(c.dies_at(), t(LinkTimer::ChannelExpiry));
                        if w != Which::Standby && o.is_live() && !self.has_standby() {
                            let at = self.renewal_at(w, c, o);
                            f(at, t(LinkTimer::Renew(c.renewal())));
                        }
                    }
                }
            }
        }
    }

    fn fire_session(&mut self, timer: SessionTimer) {
        match timer {
            SessionTimer::TokenRequest => {
                if let Some((req, _)) = self.token_req() {
                    self.on_token_failed(req, RequestError::network("token request timed out"));
                }
            }
            SessionTimer::TokenRetry => self.tokens.retry_at = None,
            SessionTimer::DedupExpiry => {
                if let Some(r) = self.run_mut() {
                    r.dedup.end_overlap();
                }
            }
            SessionTimer::HandoverLinger => self.promote_after_linger(),
            SessionTimer::WarningDigest => {
                if let Some(w) = self.malformed.window_ended(self.now) {
                    self.warn(w);
                }
            }
        }
    }

    fn fire_link(&mut self, w: Which, timer: LinkTimer) {
        match timer {
            LinkTimer::Wait(_) => {
                let Some(l) = self.link_mut(w) else { return };
                match &mut l.step {
                    Step::Waiting { plan, .. } => {
                        let plan = *plan;
                        self.begin(w, plan)
                    }
                    Step::Open(o) => {
                        if let Sub::Wanted { not_before } = &mut o.sub {
                            *not_before = None;
                        }
                    }
                    Step::NeedToken | Step::Creating { .. } | Step::Connecting { .. } => {}
                }
            }
            LinkTimer::RequestTimeout => {
                let timed_out = RequestError::network("no answer within request_timeout");
                let Some(l) = self.link(w) else { return };
                match &l.step {
                    Step::Creating { .. } => self.on_create_failed(w, &timed_out),
                    &Step::Connecting { conn, .. } => {
                        self.actions.push_back(Action::Close {
                            conn,
                            code: NORMAL_CLOSE,
                        });
                        self.on_connect_failed(w, &timed_out);
                    }
                    Step::Open { .. } => self.on_subscribe_failed(w, &timed_out),
                    Step::Waiting { .. } | Step::NeedToken => {}
                }
            }
            LinkTimer::HandoverGrace => {
                self.lose(w, GapReason::Maintenance, Plan::NewChannel, Ending::GivenUp)
            }
            LinkTimer::ChannelExpiry => {
                // A socket already waiting on an unanswered ping fell silent before its
                // channel expired: that is the first cause, and the gap says so.
                let now = self.now;
                let silent = self
                    .link(w)
                    .and_then(Link::open)
                    .is_some_and(|o| o.alive.silent_before(now));
                let reason = if silent {
                    GapReason::SocketDead
                } else {
                    GapReason::ChannelExpired
                };
                self.give_up(w, reason)
            }
            LinkTimer::PingTimeout => self.give_up(w, GapReason::SocketDead),
            LinkTimer::Idle => {
                self.ping(w);
            }
            LinkTimer::Renew(_) => {
                let stale = self
                    .tokens
                    .current
                    .as_ref()
                    .filter(|t| t.stale)
                    .map(|t| t.gen);
                let redundant = self.redundant();
                let needs_token = self.link(w).and_then(|l| l.chan.as_ref()).map_or(0, |c| {
                    let token_first = c.renewal() == Renewal::Token;
                    if token_first || (redundant && stale == Some(c.token_gen)) {
                        c.token_gen + 1
                    } else {
                        0
                    }
                });
                // With two links, a fresh token is one newer than the other link's too: the
                // two channels then hang on tokens of different ages.
                let other_gen = self
                    .other_lane(w)
                    .and_then(|x| self.link(x))
                    .and_then(|l| l.chan.as_ref())
                    .map(|c| c.token_gen + 1)
                    .filter(|_| needs_token > 0)
                    .unwrap_or(0);
                self.start_handover(w, needs_token.max(other_gen));
            }
        }
    }

    // ----- token results -------------------------------------------------------------------

    // ----- channel and subscription results ------------------------------------------------

    /// Emits one `Gap` per (start, reason) for uncovered topics that a lane now covers.
    fn close_gaps(&mut self) {
        let Life::Running(r) = &self.life else {
            return;
        };
        let covered = |t: &Topic| {
            r.links
                .lanes()
                .any(|l| l.live_topics().is_some_and(|s| s.contains(t)))
        };
        self.ledger.recover(self.now, covered, &mut self.events);
    }

    // ----- socket events -------------------------------------------------------------------

    fn require_login(&mut self, reason: AuthError) {
        if matches!(self.life, Life::LoginRequired) {
            return;
        }
        // Coverage of a topic ended where it ended on the last socket that carried it.
        for (t, (from, _)) in self.coverage_ends(Ending::GivenUp) {
            self.ledger.lose(&t, from, GapReason::LoginRequired);
        }
        self.leave_running(Life::LoginRequired);
        self.tokens.current = None;
        self.tokens.retry_at = None;
        let since = self.ledger.oldest();
        self.events
            .push_back(Event::LoginRequired { reason, since });
    }
}
