//! The `Session` state machine. Every state change lives in this file; the sibling modules
//! hold the types it changes and their pure queries.

mod budget;
mod deadline;
mod dedup;
mod guards;
mod ledger;
mod link;
mod links;
mod liveness;
mod loss;
mod schedule;
mod token;

use budget::Budgets;
pub use deadline::Deadline;
use deadline::SessionTimer;
use dedup::Dedup;
pub use dedup::MAX_DEDUP_KEYS;
pub use guards::MAX_RETRY_AFTER;
use guards::{AuthStreak, MalformedDigest, Refusals};
use ledger::Ledger;
use link::{
    Chan, Early, Link, LinkTimer, OpenSocket, Plan, Proof, Renewal, Step, Sub, SubRequest, Wait,
    Which, SLOTS,
};
use links::Links;
use liveness::{Bounds, Cadence};
use loss::{Cause, Recovery};
use schedule::Pace;
use token::{Token, Tokens};

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::Duration;

use crate::config::Config;
use crate::error::{
    AuthError, Error, FatalError, ProtocolError, RequestError, ServerError, UsageError,
};
use crate::frame::{self, Frame, PING};
use crate::io::{Action, Event, GapReason, Input, Status, TopicResult};
use crate::rng::Rng;
use crate::time::Instant;
use crate::types::{ChannelId, ConnId, ReqId, Secret, Topic, MAX_TOPICS};

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

/// What the session knows about a socket it loses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The server closed it: everything it sent before the close arrived.
    ClosedByServer,
    /// The session gives up on it (and closes it): it is proven only up to its last frame,
    /// or up to the handover pong if one came.
    GivenUp,
    /// The server said on it that it no longer carries its topics (another channel took
    /// them): everything it sent before arrived; the session closes it.
    Superseded,
}

/// Entry counts of the session's internal collections, from [`Session::footprint`].
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
    /// Channel links (at most three).
    pub links: usize,
    /// Ping send times remembered to match pongs, over all open sockets.
    pub pings_remembered: usize,
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

/// The sans-IO session: one notification channel kept alive for as long as the application
/// wants it. See the [crate docs](crate) for the drive loop an adapter MUST follow.
///
/// Methods sort into:
/// - **inputs**: [`handle_input`](Self::handle_input), [`handle_timeout`](Self::handle_timeout);
/// - **commands**: [`subscribe`](Self::subscribe), [`unsubscribe`](Self::unsubscribe),
///   [`login`](Self::login), [`report_unauthorized`](Self::report_unauthorized),
///   [`close`](Self::close);
/// - **outputs**, drained after every input or command: [`poll_action`](Self::poll_action),
///   [`poll_event`](Self::poll_event), then [`poll_timeout`](Self::poll_timeout);
/// - **getters**: [`status`](Self::status), [`topics`](Self::topics),
///   [`covered_topics`](Self::covered_topics), [`access_token`](Self::access_token).
pub struct Session {
    cfg: Config,
    rng: Rng,
    now: Instant,
    next_id: u64,
    topics: BTreeSet<Topic>,
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
impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
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

impl Session {
    /// Starts a session at `now`. It asks for a token at once (`poll_action` gives
    /// `RequestToken`); topics can be added before or after with [`subscribe`](Self::subscribe).
    ///
    /// `seed` drives backoff and renewal jitter: the same seed and inputs give the same outputs.
    pub fn new(config: Config, now: Instant, seed: u64) -> Result<Session, UsageError> {
        config.validate()?;
        let first_retry_spread = config.first_retry_spread;
        let mut s = Session {
            cfg: config,
            rng: Rng::new(seed),
            now,
            next_id: 1,
            topics: BTreeSet::new(),
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
        s.start_running();
        s.settle();
        Ok(s)
    }

    // ----- getters -------------------------------------------------------------------------

    /// Where the session stands.
    pub fn status(&self) -> Status {
        match self.life {
            Life::Failed => return Status::Failed,
            Life::Closed => return Status::Closed,
            Life::LoginRequired => return Status::LoginRequired,
            Life::Running(_) => {}
        }
        let live = |l: &Link| {
            l.open()
                .is_some_and(|o| o.is_live() && o.suspect_since.is_none())
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
    pub fn topics(&self) -> impl Iterator<Item = &Topic> {
        self.topics.iter()
    }

    /// Topics a live, subscribed socket covers right now.
    pub fn covered_topics(&self) -> impl Iterator<Item = &Topic> {
        self.topics.iter().filter(move |t| {
            self.lanes()
                .any(|l| l.live_topics().is_some_and(|s| s.contains(*t)))
        })
    }

    /// How many entries each of the session's internal collections holds now: for soak tests
    /// and monitoring that every one of them stays within its bound however long the
    /// session runs.
    pub fn footprint(&self) -> Footprint {
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
            pings_remembered: links.filter_map(Link::open).map(|o| o.pings.len()).sum(),
        }
    }

    /// Live, subscribed sockets that carry coverage now: 0 or 1, or up to 2 with
    /// `redundancy: 2` (a make-before-break replacement is not counted until it takes over).
    pub fn live_sockets(&self) -> usize {
        self.lanes().filter(|l| l.is_live()).count()
    }

    /// The current access token, if it is neither expired nor rejected: for the
    /// application's own REST calls.
    pub fn access_token(&self) -> Option<&Secret> {
        self.tokens
            .current
            .as_ref()
            .filter(|t| !t.stale && t.expires_at > self.now)
            .map(|t| &t.value)
    }

    /// The latest `now` the session has seen.
    pub fn now(&self) -> Instant {
        self.now
    }

    // ----- outputs -------------------------------------------------------------------------

    /// The next IO the adapter owes. Drain until `None` after every input or command.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event for the application. Drain until `None` after every input or command.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) must be called,
    /// with the reason. `None`: nothing is scheduled (closed, or waiting for a login).
    pub fn poll_timeout(&self) -> Option<(Instant, Deadline)> {
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
    pub fn handle_input(&mut self, now: Instant, input: Input) {
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
    pub fn set_first_retry_spread(&mut self, spread: Duration) {
        self.first_retry_spread = spread;
    }

    /// The first-retry spread in force (see [`set_first_retry_spread`](Self::set_first_retry_spread)).
    pub fn first_retry_spread(&self) -> Duration {
        self.first_retry_spread
    }

    /// Handles every deadline at or before `now`. Call it when `poll_timeout` says.
    pub fn handle_timeout(&mut self, now: Instant) {
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
    pub fn subscribe(
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
    pub fn unsubscribe<'t>(
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
    pub fn login(
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
    pub fn report_unauthorized(&mut self, now: Instant, token: &str) {
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
    pub fn close(&mut self, now: Instant) {
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
        // A topic whose every covering socket is unproven since a suspend was not covered
        // since the latest of those suspends.
        let mut suspended: BTreeMap<Topic, Instant> = BTreeMap::new();
        let mut proven: BTreeSet<&Topic> = BTreeSet::new();
        for l in self.lanes() {
            let Some(o) = l.open().filter(|o| o.is_live()) else {
                continue;
            };
            for t in o.server_topics.intersection(&self.topics) {
                match o.suspect_since {
                    Some(since) => {
                        let e = suspended.entry(t.clone()).or_insert(since);
                        *e = (*e).max(since);
                    }
                    None => {
                        proven.insert(t);
                    }
                }
            }
        }
        suspended.retain(|t, _| !proven.contains(t));
        for (t, since) in suspended {
            self.ledger.lose(&t, since, GapReason::Suspended);
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

    /// Full jitter above a floor: `[base, min(cap, base·2^(n+1))]`, never below `floor`.
    /// The wait before the next attempt after `failures` failures. `floor`: a wait the
    /// server asked for. While coverage is lost that wait is the moment to retry (but never
    /// sooner than `backoff_base`); otherwise it is a floor under a backoff step.
    fn backoff(&mut self, failures: u32, floor: Option<Duration>) -> Duration {
        if let Some(f) = floor.filter(|_| self.coverage_lost()) {
            // A `Retry-After: 0` still waits the first step: no retry in the same instant.
            return f.max(self.cfg.backoff_base);
        }
        let ceil = self.backoff_ceiling(failures);
        let d = self.rng.between(self.cfg.backoff_base.min(ceil), ceil);
        d.max(floor.unwrap_or_default())
    }

    /// The longest backoff step after `failures` failures: short while coverage is lost.
    fn backoff_ceiling(&self, failures: u32) -> Duration {
        let calm = self.calm_ceiling(failures);
        if self.coverage_lost() {
            calm.min(self.cfg.urgent_backoff_cap)
        } else {
            calm
        }
    }

    /// The longest backoff step while nothing is lost.
    fn calm_ceiling(&self, failures: u32) -> Duration {
        self.cfg
            .backoff_base
            .saturating_mul(1u32 << failures.min(20).saturating_add(1))
            .min(self.cfg.backoff_cap)
    }

    /// True while some desired topic has no live socket: retries are urgent.
    fn coverage_lost(&self) -> bool {
        if self.topics.is_empty() {
            return false;
        }
        let live = self.lanes().any(Link::is_live);
        !live || !self.ledger.is_clear()
    }

    /// The token budget: while coverage is lost, up to one request a second; otherwise
    /// `max_token_requests_per_minute`.
    fn token_budget(&self) -> u32 {
        let calm = self.cfg.max_token_requests_per_minute;
        if self.coverage_lost() {
            calm.max(URGENT_TOKEN_REQUESTS_PER_MINUTE)
        } else {
            calm
        }
    }

    /// While coverage is lost, token requests keep at least a second apart on average.
    fn urgent_token_floor(&mut self) -> Duration {
        if self.coverage_lost() {
            self.rng
                .between(URGENT_TOKEN_SPACING / 2, URGENT_TOKEN_SPACING * 3 / 2)
        } else {
            Duration::ZERO
        }
    }

    /// For an answer that is the same useless thing every time (a dead token, an expired
    /// channel): the delay must grow with each one, so the jitter only spreads its upper half.
    /// Urgency does not shorten it: asking sooner would only get the same answer sooner.
    fn growing_backoff(&mut self, failures: u32) -> Duration {
        let ceil = self.calm_ceiling(failures);
        self.rng.between(ceil / 2, ceil)
    }

    fn token_usable_for(&self, w: Which) -> bool {
        let min_gen = self.link(w).map_or(0, |l| l.min_token_gen);
        self.tokens.current.as_ref().is_some_and(|t| {
            // A token that lives no longer than the lead is still used for what it is worth.
            let lead = self
                .cfg
                .renew_lead_min
                .min((t.expires_at - t.issued_at) / 2);
            !t.stale && t.gen >= min_gen && t.expires_at > self.now + lead
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
                    match o.ping_due {
                        Some(at) => f(at, t(LinkTimer::PingTimeout)),
                        None => f(o.last_rx + o.cadence.idle(), t(LinkTimer::Idle)),
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
                let silent = self.link(w).and_then(Link::open).is_some_and(|o| {
                    o.ping_due.is_some() && o.cadence.ping_sent_at().is_some_and(|t| t < now)
                });
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

    /// When link `w` (not a standby) starts its make-before-break renewal: at its renewal
    /// time, or at once after a maintenance notice. With two links, it waits while the other
    /// link is not live (renewing both at once would share their fate), until halfway from
    /// its renewal time to its channel's end.
    fn renewal_at(&self, w: Which, c: &Chan, o: &OpenSocket) -> Instant {
        let mut at = c.renew_at;
        if !self.redundant() {
            return at;
        }
        if let Some(by) = o.closing_by {
            at = at.min(by - self.cfg.maintenance_grace);
        }
        let other_live = self
            .other_lane(w)
            .and_then(|x| self.link(x))
            .is_some_and(Link::is_live);
        if other_live {
            at
        } else {
            let dies = c.dies_at();
            at.max(c.renew_at + (dies.saturating_duration_since(c.renew_at)) / 2)
                .min(dies)
        }
    }

    /// The token of generation `gen` was rejected: every link on a channel it made renews
    /// (one at a time, the first at once).
    fn renew_links_on(&mut self, gen: u64) {
        let now = self.now;
        if !self.redundant() {
            self.start_handover(Which::Active, gen + 1);
            return;
        }
        for w in [Which::Active, Which::Twin] {
            if let Some(c) = self.link_mut(w).and_then(|l| l.chan.as_mut()) {
                if c.token_gen == gen {
                    c.renew_at = c.renew_at.min(now);
                }
            }
        }
        for w in [Which::Active, Which::Twin] {
            let on_it = self
                .link(w)
                .and_then(|l| l.chan.as_ref())
                .is_some_and(|c| c.token_gen == gen);
            if on_it {
                self.start_handover(w, gen + 1);
                return;
            }
        }
    }

    /// Brings up a standby link on a new channel while link `of` stays live.
    fn start_handover(&mut self, of: Which, min_token_gen: u64) {
        if self.has_standby() || !self.link(of).is_some_and(Link::is_live) {
            return;
        }
        let mut l = self.new_link();
        l.min_token_gen = min_token_gen;
        let Some(links) = self.links_mut() else {
            return;
        };
        links.add_standby(l, of);
        self.reset_handover_proof();
        self.begin(Which::Standby, Plan::NewChannel);
    }

    /// A proof of life counts only for the standby it was asked for.
    fn reset_handover_proof(&mut self) {
        let of = self.standby_for();
        if let Some(a) = self.link_mut(of).and_then(Link::open_mut) {
            a.proof = Proof::NotAsked;
        }
    }

    /// Moves a link forward where it waits on nothing but local state.
    fn drive(&mut self, w: Which) {
        let usable = self.token_usable_for(w);
        let now = self.now;
        let held = self.other_link(w, Link::exposed);
        let Some(l) = self.link(w) else { return };
        let owed = |o: &OpenSocket| matches!(o.sub, Sub::Wanted { not_before } if not_before.is_none_or(|t| t <= now));
        match &l.step {
            Step::NeedToken if usable => self.begin(w, Plan::NewChannel),
            Step::Open(o) if owed(o) && !held => {
                if self.access_token().is_some() {
                    let max = self.cfg.max_subscription_requests_per_minute;
                    match self.budgets.subscription.take(now, max) {
                        Ok(()) => self.put_subscriptions(w),
                        Err(at) => {
                            if let Some(o) = self.link_mut(w).and_then(Link::open_mut) {
                                o.sub = Sub::Wanted {
                                    not_before: Some(at),
                                };
                            }
                        }
                    }
                }
            }
            Step::Waiting { .. }
            | Step::NeedToken
            | Step::Creating { .. }
            | Step::Connecting { .. }
            | Step::Open(_) => {}
        }
    }

    fn drive_token(&mut self) {
        if self.token_req().is_some() || self.tokens.retry_at.is_some() {
            return;
        }
        let has_token = self.access_token().is_some();
        let mut needed = false;
        for w in SLOTS {
            if let Some(l) = self.link(w) {
                needed |= matches!(l.step, Step::NeedToken) && !self.token_usable_for(w);
                needed |= l.open().is_some_and(|o| o.sub.is_dirty()) && !has_token;
            }
        }
        if needed {
            let max = self.token_budget();
            if let Err(at) = self.tokens.budget.take(self.now, max) {
                self.tokens.retry_at = Some(at);
                return;
            }
            let req = ReqId::from_u64(self.fresh_id());
            self.set_token_req(Some((req, self.now)));
            self.actions.push_back(Action::RequestToken { req });
        }
    }

    fn begin(&mut self, w: Which, plan: Plan) {
        let now = self.now;
        let plan = match plan {
            Plan::Reconnect if self.link(w).is_some_and(|l| l.has_channel_alive(now)) => {
                Plan::Reconnect
            }
            Plan::Reconnect | Plan::NewChannel => Plan::NewChannel,
        };
        match plan {
            Plan::Reconnect => self.connect(w),
            Plan::NewChannel => self.create_channel(w),
        }
    }

    fn create_channel(&mut self, w: Which) {
        let usable = self.token_usable_for(w);
        let now = self.now;
        let created_free_at = self
            .budgets
            .channel
            .free_at(now, self.cfg.channel_creations_per_minute());
        let requests_free_at = self
            .budgets
            .channel_requests
            .free_at(now, CHANNEL_REQUESTS_PER_MINUTE);
        let budget_free_at = created_free_at.max(requests_free_at);
        let req = ReqId::from_u64(self.fresh_id());
        let not_before = self.create_not_before;
        let Some(l) = self.link_mut(w) else { return };
        l.chan = None;
        if !usable {
            l.step = Step::NeedToken;
            return;
        }
        if let Some(until) = budget_free_at {
            l.step = Step::Waiting {
                until,
                plan: Plan::NewChannel,
                why: Wait::ChannelBudget,
            };
            return;
        }
        if not_before > now {
            l.step = Step::Waiting {
                until: not_before,
                plan: Plan::NewChannel,
                why: Wait::Backoff,
            };
            return;
        }
        let Some(t) = self.tokens.current.as_ref() else {
            return;
        };
        let (token, token_gen) = (t.value.clone(), t.gen);
        if let Some(l) = self.link_mut(w) {
            l.step = Step::Creating {
                req,
                sent: now,
                token_gen,
            };
        }
        self.budgets.channel.record(now);
        self.budgets.channel_requests.record(now);
        self.actions.push_back(Action::CreateChannel { req, token });
    }

    fn connect(&mut self, w: Which) {
        let now = self.now;
        if let Some(until) = self
            .budgets
            .connect
            .free_at(now, self.cfg.max_connects_per_minute)
        {
            if let Some(l) = self.link_mut(w) {
                l.step = Step::Waiting {
                    until,
                    plan: Plan::Reconnect,
                    why: Wait::RequestBudget,
                };
            }
            return;
        }
        let conn = ConnId::from_u64(self.fresh_id());
        let Some(l) = self.link_mut(w) else { return };
        let Some(c) = &l.chan else { return };
        let url = c.uri.clone();
        l.step = Step::Connecting {
            conn,
            sent: now,
            early: Early::None,
        };
        self.budgets.connect.record(now);
        self.actions.push_back(Action::Connect { conn, url });
        self.early_put(w);
    }

    /// Sends the subscription PUT beside the upgrade, if a token and the budget allow — on a
    /// first or second attempt only: while upgrades keep failing, a PUT beside each would be
    /// wasted, so it waits for the socket.
    fn early_put(&mut self, w: Which) {
        let now = self.now;
        let retrying = self.link(w).is_some_and(|l| l.failures > 1);
        if retrying || self.access_token().is_none() {
            return;
        }
        // Subscription PUTs are ordered so that none can land while another of this client's
        // channels holds topics without a socket: a service that keeps each topic on one channel
        // tells the channel it takes them from on that channel's socket, and a channel without
        // one would lose them unseen while its link claims them. A PUT beside the upgrade is
        // such a channel, so it goes out only while no other PUT is in flight, and other links'
        // PUTs wait until its socket opens (`drive`).
        if self.other_link(w, |l| l.exposed() || l.put_in_flight()) {
            return;
        }
        let max = self.cfg.max_subscription_requests_per_minute;
        if self.budgets.subscription.free_at(now, max).is_some() {
            return;
        }
        let Some(put) = self.subscription_put(w) else {
            return;
        };
        self.budgets.subscription.record(now);
        if w == Which::Standby {
            self.reset_handover_proof();
        }
        if let Some(Step::Connecting { early, .. }) = self.link_mut(w).map(|l| &mut l.step) {
            *early = Early::InFlight {
                request: put.1,
                again: false,
            };
        }
        self.actions.push_back(put.0);
    }

    /// A PUT of the whole desired set to this link's channel, and its record.
    fn subscription_put(&mut self, w: Which) -> Option<(Action, SubRequest)> {
        let req = ReqId::from_u64(self.fresh_id());
        let topics: Vec<Topic> = self.topics.iter().cloned().collect();
        let t = self.tokens.current.as_ref()?;
        let (token, token_gen) = (t.value.clone(), t.gen);
        let channel = self.link(w)?.chan.as_ref()?.id.clone();
        let request = SubRequest {
            req,
            sent: self.now,
            topics: topics.clone(),
            token_gen,
        };
        let action = Action::PutSubscriptions {
            req,
            channel,
            topics,
            token,
        };
        Some((action, request))
    }

    fn put_subscriptions(&mut self, w: Which) {
        if self.link(w).and_then(Link::open).is_none() {
            return;
        }
        let Some((action, request)) = self.subscription_put(w) else {
            return;
        };
        let Some(o) = self.link_mut(w).and_then(Link::open_mut) else {
            return;
        };
        // A topic left out of this PUT stops being covered when the server applies it.
        o.server_topics.retain(|t| request.topics.contains(t));
        o.sub = Sub::InFlight {
            request,
            again: false,
        };
        // A proof the old socket gave before this PUT says nothing about what it carries
        // until the PUT applies.
        if w == Which::Standby {
            self.reset_handover_proof();
        }
        self.actions.push_back(action);
    }

    fn topics_changed(&mut self) {
        for w in SLOTS {
            match self.link_mut(w).map(|l| &mut l.step) {
                Some(Step::Open(o)) => o.sub.mark_dirty(),
                Some(Step::Connecting { early, .. }) => early.mark_dirty(),
                Some(Step::Waiting { .. } | Step::NeedToken | Step::Creating { .. }) | None => {}
            }
        }
        self.ledger.keep_wanted(&self.topics);
    }

    fn install_token(&mut self, value: Secret, expires_in: Duration, after_rejection: bool) {
        self.tokens.gen += 1;
        self.tokens.current = Some(Token {
            value,
            gen: self.tokens.gen,
            issued_at: self.now,
            expires_at: self.now + expires_in,
            stale: false,
            after_rejection,
        });
        self.tokens.failures = 0;
        self.tokens.retry_at = None;
    }

    // ----- token results -------------------------------------------------------------------

    fn on_token_issued(&mut self, req: ReqId, token: Secret, expires_in: Duration, rotated: bool) {
        let Some((_, sent)) = self.token_req().filter(|(r, _)| *r == req) else {
            return;
        };
        self.pace
            .round_trip(self.now.saturating_duration_since(sent));
        self.set_token_req(None);
        self.refusals.answered();
        let after_rejection = self.tokens.current.as_ref().is_some_and(|t| t.stale);
        let failures = self.tokens.failures;
        self.install_token(token, expires_in, after_rejection);
        if rotated {
            self.events.push_back(Event::TokenRotated);
        }
        if expires_in <= self.cfg.renew_lead_min {
            // Asking again at once would loop: back off as after a failure.
            self.tokens.failures = failures.saturating_add(1);
            let delay = self.growing_backoff(failures);
            self.tokens.retry_at = Some(self.now + delay);
            self.warn(ServerError::ShortLivedToken {
                expires_in_ms: expires_in.as_millis() as u64,
                retry_ms: delay.as_millis() as u64,
            });
        }
    }

    fn on_token_failed(&mut self, req: ReqId, error: RequestError) {
        if self.token_req().is_none_or(|(r, _)| r != req) {
            return;
        }
        self.set_token_req(None);
        self.tokens.failures = self.tokens.failures.saturating_add(1);
        let now = self.now;
        match &error {
            RequestError::CannotRefresh(detail) => {
                let valid_until = self
                    .access_token()
                    .and(self.tokens.current.as_ref())
                    .map(|t| t.expires_at);
                match valid_until {
                    Some(at) => {
                        self.tokens.retry_at = Some(at);
                        self.events.push_back(Event::LoginSoon {
                            reason: AuthError::WillNotRenew {
                                detail: detail.clone(),
                            },
                            expires_in: at.saturating_duration_since(now),
                        });
                    }
                    None => self.require_login(AuthError::CannotRefresh {
                        detail: detail.clone(),
                    }),
                }
            }
            RequestError::Http {
                status: 400 | 401 | 403,
                code,
                ..
            } => {
                let code = code
                    .clone()
                    .unwrap_or_else(|| format!("HTTP {}", error.http_status().unwrap_or(0)));
                let reason = if code == "invalid_client" || code == "unauthorized_client" {
                    AuthError::ClientRejected { code }
                } else {
                    AuthError::GrantRejected { code }
                };
                self.require_login(reason);
            }
            RequestError::Refused(detail) if self.refused("token request", detail) => {}
            RequestError::Http { .. } | RequestError::Network(_) | RequestError::Refused(_) => {
                let failures = self.tokens.failures;
                if self
                    .cfg
                    .max_refresh_attempts
                    .is_some_and(|max| failures >= max)
                {
                    self.require_login(AuthError::RefreshGaveUp {
                        attempts: failures,
                        last: error.to_string(),
                    });
                    return;
                }
                // The Retry-After, if any, is already in `retry_at`; while coverage is lost
                // it is the moment to retry, not a floor under another step.
                let delay = if self.coverage_lost() && error.retry_after().is_some() {
                    self.cfg.backoff_base
                } else {
                    self.backoff(failures - 1, None)
                        .max(self.urgent_token_floor())
                };
                let at = self
                    .tokens
                    .retry_at
                    .map_or(now + delay, |t| t.max(now + delay));
                self.tokens.retry_at = Some(at);
                self.warn(error.to_server_error("token request", at - now));
            }
        }
    }

    // ----- channel and subscription results ------------------------------------------------

    fn on_channel_created(&mut self, req: ReqId, id: ChannelId, uri: Secret, expires_in: Duration) {
        let Some(w) = self.link_creating(req) else {
            return;
        };
        if uri.expose().is_empty() || id.as_str().is_empty() {
            self.warn(ProtocolError::BadChannel("empty id or connectUri".into()));
            self.on_create_failed(w, &RequestError::network("unusable channel answer"));
            return;
        }
        self.refusals.answered();
        if expires_in <= self.cfg.renew_lead_min {
            let failures = self.link(w).map_or(0, |l| l.failures);
            let floor = self.growing_backoff(failures);
            let delay = self.retry_later(w, Plan::NewChannel, Some(floor));
            self.warn(ServerError::ExpiredChannel {
                expires_in_ms: expires_in.as_millis() as u64,
                retry_ms: delay.as_millis() as u64,
            });
            return;
        }
        let now = self.now;
        let Some(Step::Creating { token_gen, .. }) = self.link(w).map(|l| &l.step) else {
            return;
        };
        let token_gen = *token_gen;
        if let Some(Step::Creating { sent, .. }) = self.link(w).map(|l| &l.step) {
            self.pace.round_trip(now.saturating_duration_since(*sent));
        }
        let token_expires_at = self
            .tokens
            .current
            .as_ref()
            .filter(|t| t.gen == token_gen)
            .map_or(now + expires_in, |t| t.expires_at);
        let expires_at = now + expires_in;
        let dies_at = expires_at.min(token_expires_at);
        let lifetime = dies_at - now;
        let two_steps = self.calm_ceiling(0) + self.calm_ceiling(1);
        let lead = self.pace.renewal_lead(&self.cfg, lifetime, two_steps, now);
        let jittered = self.rng.between(lead, lead * 3 / 2).min(lifetime / 2);
        let renew_at = self.apart_from_other_lane(w, dies_at - jittered, lifetime);
        let chan = Chan {
            id,
            uri,
            expires_at,
            token_gen,
            token_expires_at,
            renew_at,
        };
        if let Some(l) = self.link_mut(w) {
            l.chan = Some(chan);
        }
        self.connect(w);
    }

    /// With two links, a new channel renews well apart from the other link's channel: if
    /// both would renew within a quarter of this one's life of each other, this one renews
    /// halfway through its life instead (and so, when its token is what runs out, on a token
    /// of a different age). The two then never renew together, and one expiry that the
    /// session fails to renew in time takes down only one of them.
    fn apart_from_other_lane(&self, w: Which, renew_at: Instant, lifetime: Duration) -> Instant {
        let lane = if w == Which::Standby {
            self.standby_for()
        } else {
            w
        };
        let Some(theirs) = self
            .other_lane(lane)
            .and_then(|x| self.link(x))
            .and_then(|l| l.chan.as_ref())
            .map(|c| c.renew_at)
        else {
            return renew_at;
        };
        let spacing = lifetime / 4;
        let apart = |a: Instant, b: Instant| a.max(b) - a.min(b) >= spacing;
        let halfway = self.now + lifetime / 2;
        if apart(renew_at, theirs) || !apart(halfway, theirs) {
            renew_at
        } else {
            halfway
        }
    }

    fn on_create_failed(&mut self, w: Which, error: &RequestError) {
        let (token_gen, sent) = match self.link(w).map(|l| &l.step) {
            Some(Step::Creating {
                token_gen, sent, ..
            }) => (*token_gen, *sent),
            _ => return,
        };
        // An answer with an error status made no channel. A timeout or a reset might have.
        if matches!(error, RequestError::Http { .. }) {
            self.budgets.channel.refund(sent);
        }
        match error.http_status() {
            Some(status @ (401 | 403)) => {
                if self.rest_unauthorized(status, token_gen) {
                    if let Some(l) = self.link_mut(w) {
                        l.step = Step::NeedToken;
                    }
                }
            }
            _ => {
                if let RequestError::Refused(detail) = error {
                    if self.refused("channel creation", detail) {
                        return;
                    }
                }
                let wait = self.create_not_before.saturating_duration_since(self.now);
                let next =
                    self.retry_later(w, Plan::NewChannel, Some(wait).filter(|d| !d.is_zero()));
                self.warn(error.to_server_error("channel creation", next));
            }
        }
    }

    /// Waits a backoff step before `plan`; returns the delay.
    fn retry_later(&mut self, w: Which, plan: Plan, floor: Option<Duration>) -> Duration {
        let failures = self.link(w).map_or(0, |l| l.failures);
        let delay = self.backoff(failures, floor);
        let until = self.now + delay;
        if let Some(l) = self.link_mut(w) {
            l.failures = l.failures.saturating_add(1);
            l.step = Step::Waiting {
                until,
                plan,
                why: Wait::Backoff,
            };
        }
        delay
    }

    /// An API call answered 401/403. Returns true if the session should fetch a new token and
    /// retry, false if it stopped for a login instead.
    fn rest_unauthorized(&mut self, status: u16, token_gen: u64) -> bool {
        let now = self.now;
        let window = self.cfg.fresh_token_window;
        let Some(t) = self.tokens.current.as_mut() else {
            return true;
        };
        if t.gen != token_gen || t.stale {
            return true;
        }
        if t.after_rejection && now - t.issued_at < window {
            let reason = if status == 403 {
                AuthError::InsufficientScope
            } else {
                AuthError::TokenRejected { status }
            };
            self.require_login(reason);
            return false;
        }
        t.stale = true;
        true
    }

    fn on_subscribed(&mut self, req: ReqId, results: Vec<TopicResult>) {
        let Some(w) = self.link_subscribing(req) else {
            return;
        };
        if let Some(Step::Connecting { early, .. }) = self.link_mut(w).map(|l| &mut l.step) {
            // Answered before the upgrade finished: kept until the socket opens.
            if let Early::InFlight { request, again } = std::mem::replace(early, Early::None) {
                let refused = results
                    .into_iter()
                    .filter_map(|r| r.rejected.map(|why| (r.topic, why)))
                    .collect();
                *early = Early::Answered {
                    topics: request.topics,
                    refused,
                    again,
                };
            }
            self.refusals.answered();
            return;
        }
        let Some(sub) = self
            .link_mut(w)
            .and_then(Link::open_mut)
            .and_then(|o| o.sub.take_request())
        else {
            return;
        };
        self.refusals.answered();
        let refused: BTreeMap<String, String> = results
            .into_iter()
            .filter_map(|r| r.rejected.map(|why| (r.topic, why)))
            .collect();
        self.apply_subscription(w, sub.topics, &refused);
    }

    fn apply_subscription(
        &mut self,
        w: Which,
        sent: Vec<Topic>,
        refused: &BTreeMap<String, String>,
    ) {
        // Only topics this request sent: a server that lists others must not grow the map.
        let asked: BTreeSet<&str> = sent.iter().map(Topic::as_str).collect();
        for (topic, reason) in refused {
            if !asked.contains(topic.as_str()) {
                continue;
            }
            if self.ledger.reject(topic, reason) {
                self.events.push_back(Event::TopicRejected {
                    topic: topic.clone(),
                    reason: reason.clone(),
                });
            }
        }
        let now = self.now;
        let Some(o) = self.link_mut(w).and_then(Link::open_mut) else {
            return;
        };
        let accepted: BTreeSet<Topic> = sent
            .into_iter()
            .filter(|t| !refused.contains_key(t.as_str()))
            .collect();
        let dropped: Vec<Topic> = if w != Which::Standby && o.is_live() {
            o.server_topics.difference(&accepted).cloned().collect()
        } else {
            Vec::new()
        };
        o.server_topics = accepted;
        // A socket's first ping goes out as it goes live: its pong tells how long pongs take
        // on it, so a busy socket that later falls silent is judged by its own round trip.
        let probe = o.live_since.is_none() && o.pings_out == 0;
        o.live_since.get_or_insert(now);
        let owes_a_put = o.sub.is_dirty();
        let permitted = o.server_topics.clone();
        for t in dropped.into_iter().filter(|t| self.topics.contains(t)) {
            if !self.covered_elsewhere(w, &t) {
                self.ledger.lose(&t, now, GapReason::Rejected);
            }
        }
        self.ledger.accepted(&permitted);
        // The standby takes over only once it covers the whole current set; a change made
        // while its first PUT was in flight goes out first.
        if w == Which::Standby && !owes_a_put {
            self.standby_ready();
        }
        if probe {
            self.ping(w);
            // With two links, the other live sockets answer a ping too: their pong proves
            // that they delivered everything sent before this one went live, so that this
            // one may cover for them from then on.
            if self.redundant() {
                for x in SLOTS {
                    if x != w && self.link(x).is_some_and(Link::is_live) {
                        self.ping(x);
                    }
                }
            }
        }
    }

    /// The standby is subscribed. It takes over once the old socket answers a ping sent now:
    /// the server wrote that pong after everything it had sent on the old socket before the
    /// new subscription took effect, so nothing is left in flight behind it. A silent old
    /// socket dies at its ping timeout and the gap is reported from its last frame.
    fn standby_ready(&mut self) {
        let of = self.standby_for();
        let Some(a) = self.link(of) else {
            self.promote_standby();
            return;
        };
        match a.proof() {
            Proof::Proven { .. } => self.promote_after_linger(),
            Proof::AwaitingPongs(_) => {}
            Proof::NotAsked if !a.is_open() => self.promote_standby(),
            Proof::NotAsked => {
                self.ping(of);
                if let Some(a) = self.link_mut(of).and_then(Link::open_mut) {
                    a.proof = Proof::AwaitingPongs(a.pings_out);
                }
            }
        }
    }

    /// Sends a ping on an open socket; its pong (or any frame, outside a handover) is due
    /// within the ping timeout.
    fn ping(&mut self, w: Which) {
        let now = self.now;
        let Some(o) = self.link_mut(w).and_then(Link::open_mut) else {
            return;
        };
        o.cadence.ping_sent(now, o.pings_out == 0);
        o.pings.ping(now);
        o.ping_due.get_or_insert(now + o.cadence.pong_wait());
        o.pings_out = o.pings_out.saturating_add(1);
        let conn = o.conn;
        self.actions.push_back(Action::Send {
            conn,
            text: PING.to_owned(),
        });
    }

    /// When the ready standby may take over from a proven old socket.
    fn linger_ends(&self) -> Option<Instant> {
        match self.link(self.standby_for())?.proof() {
            Proof::Proven { at } if self.standby_is_ready() => Some(at + self.cfg.handover_linger),
            Proof::Proven { .. } | Proof::NotAsked | Proof::AwaitingPongs(_) => None,
        }
    }

    fn promote_after_linger(&mut self) {
        if self.linger_ends().is_some_and(|end| self.now >= end) {
            self.promote_standby();
        }
    }

    fn standby_is_ready(&self) -> bool {
        self.link(Which::Standby)
            .and_then(Link::open)
            .is_some_and(|o| o.is_live() && matches!(o.sub, Sub::Current))
    }

    /// The standby is live: it takes over and the old socket closes (make-before-break).
    fn promote_standby(&mut self) {
        let Some(standby) = self.take_link(Which::Standby) else {
            return;
        };
        let of = self.standby_for();
        if let Some(old) = self.take_link(of) {
            if let Some(conn) = old.conn() {
                self.actions.push_back(Action::Close {
                    conn,
                    code: NORMAL_CLOSE,
                });
            }
            // Topics the new channel was refused stop being covered now.
            let empty = BTreeSet::new();
            let taking_over = standby.live_topics().unwrap_or(&empty);
            if let Some(old_topics) = old.live_topics() {
                for t in old_topics.difference(taking_over) {
                    if self.topics.contains(t) && !self.covered_elsewhere(of, t) {
                        self.ledger.lose(t, self.now, GapReason::Rejected);
                    }
                }
            }
        }
        self.put_link(of, standby);
    }

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

    fn on_subscribe_failed(&mut self, w: Which, error: &RequestError) {
        if let Some(Step::Connecting { early, .. }) = self.link_mut(w).map(|l| &mut l.step) {
            // The PUT beside the upgrade failed: once open, the socket sends its own, and
            // whatever this failure means is met there.
            *early = Early::None;
            return;
        }
        let Some(sub) = self
            .link_mut(w)
            .and_then(Link::open_mut)
            .and_then(|o| o.sub.take_request())
        else {
            return;
        };
        match error.http_status() {
            Some(status @ (401 | 403)) => {
                if self.rest_unauthorized(status, sub.token_gen) {
                    if let Some(o) = self.link_mut(w).and_then(Link::open_mut) {
                        o.sub.mark_dirty();
                    }
                }
            }
            Some(404) => self.lose(w, GapReason::SocketLost, Plan::NewChannel, Ending::GivenUp),
            Some(400) => {
                let why = "the server refused the subscription request (HTTP 400)".to_owned();
                let refused = sub
                    .topics
                    .iter()
                    .map(|t| (t.as_str().to_owned(), why.clone()))
                    .collect();
                self.apply_subscription(w, sub.topics, &refused);
            }
            _ => {
                if let RequestError::Refused(detail) = error {
                    if self.refused("subscription", detail) {
                        return;
                    }
                }
                let failures = self.link(w).map_or(0, |l| l.failures);
                let delay = self.backoff(failures, error.retry_after());
                self.warn(error.to_server_error("subscription", delay));
                let until = self.now + delay;
                if let Some(l) = self.link_mut(w) {
                    l.failures = l.failures.saturating_add(1);
                    if let Some(o) = l.open_mut() {
                        o.sub = Sub::Wanted {
                            not_before: Some(until),
                        };
                    }
                }
            }
        }
    }

    // ----- socket events -------------------------------------------------------------------

    fn on_opened(&mut self, conn: ConnId) {
        let Some(w) = self.link_connecting(conn) else {
            return;
        };
        let now = self.now;
        if let Some(Step::Connecting { sent, .. }) = self.link(w).map(|l| &l.step) {
            self.pace.round_trip(now.saturating_duration_since(*sent));
        }
        let cadence = Cadence::new(Bounds::new(&self.cfg));
        let Some(l) = self.link_mut(w) else { return };
        let early = match std::mem::replace(&mut l.step, Step::NeedToken) {
            Step::Connecting { early, .. } => early,
            other @ (Step::Waiting { .. }
            | Step::NeedToken
            | Step::Creating { .. }
            | Step::Open(_)) => {
                l.step = other;
                return;
            }
        };
        let mut open = OpenSocket::new(conn, now, cadence);
        let answered = match early {
            Early::None => None,
            Early::InFlight { request, again } => {
                open.sub = Sub::InFlight { request, again };
                None
            }
            Early::Answered {
                topics,
                refused,
                again,
            } => {
                open.sub = if again {
                    Sub::Wanted { not_before: None }
                } else {
                    Sub::Current
                };
                Some((topics, refused))
            }
        };
        l.step = Step::Open(open);
        // The PUT that went out beside the upgrade was answered first: the socket is live now.
        if let Some((topics, refused)) = answered {
            self.apply_subscription(w, topics, &refused);
        }
    }

    fn on_connect_failed(&mut self, w: Which, error: &RequestError) {
        if let RequestError::Refused(detail) = error {
            if self.refused("socket upgrade", detail) {
                return;
            }
        }
        let cause = error
            .http_status()
            .map_or(Cause::Unanswered, Cause::Refused);
        let r = self.classify_loss(w, cause);
        if r.auth_failure
            .is_some_and(|code| self.count_auth_failure(w, code))
        {
            return;
        }
        if r.fresher_token {
            self.want_fresher_token(w);
        }
        let next = self.retry_later(w, r.plan, error.retry_after());
        self.warn(error.to_server_error("socket upgrade", next));
    }

    /// How to recover from losing `w`'s socket ([`loss::classify`] on the link's state).
    fn classify_loss(&self, w: Which, cause: Cause) -> Recovery {
        let l = self.link(w);
        let closing = l
            .and_then(Link::open)
            .is_some_and(|o| o.closing_by.is_some());
        let chan = l.and_then(|l| l.chan.as_ref());
        loss::classify(cause, chan, closing, self.now, &self.cfg.close_codes)
    }

    /// The session gave up on an open socket.
    fn give_up(&mut self, w: Which, reason: GapReason) {
        let r = self.classify_loss(w, Cause::GaveUp);
        if r.fresher_token {
            self.want_fresher_token(w);
        }
        self.lose(w, reason, r.plan, Ending::GivenUp);
    }

    /// Counts an auth-class close or upgrade refusal; true if the session stopped for a login.
    fn count_auth_failure(&mut self, w: Which, code: u16) -> bool {
        let link = self.link(w).map_or(u64::MAX, |l| l.tag);
        if self.auth_streak.failed(code, link, self.now) {
            self.require_login(AuthError::RepeatedAuthClose { code });
            return true;
        }
        false
    }

    /// The token that made this link's channel is suspect: the next channel needs a newer one.
    fn want_fresher_token(&mut self, w: Which) {
        let Some(l) = self.link_mut(w) else { return };
        if let Some(c) = &l.chan {
            l.min_token_gen = l.min_token_gen.max(c.token_gen + 1);
        }
    }

    fn on_frame(&mut self, conn: ConnId, text: String) {
        let Some(w) = self.link_open(conn) else {
            return;
        };
        let now = self.now;
        let bounds = Bounds::new(&self.cfg);
        let window = self.cfg.dedup_window;
        let Some(l) = self.link_mut(w) else { return };
        let tag = l.tag;
        let Some(o) = l.open_mut() else { return };
        o.last_rx = now;
        if o.resumed_at.is_none() {
            o.suspect_since = None;
        }
        let frame = frame::classify(&text);
        // After a resume with `suspend_gap`, only the pong to a ping sent after it proves
        // the socket drained; the stretch before is reported then.
        let mut suspended: Option<(Instant, BTreeSet<Topic>)> = None;
        if matches!(frame, Frame::Pong) {
            o.pings_out = o.pings_out.saturating_sub(1);
            o.pings.pong();
            o.cadence.pong(now, o.pings_out == 0, bounds);
            if let Proof::AwaitingPongs(n) = o.proof {
                o.proof = match n.saturating_sub(1) {
                    0 => Proof::Proven { at: now },
                    left => Proof::AwaitingPongs(left),
                };
            }
            if let Some(r) = o.resumed_at {
                if o.pings.drained_to.is_some_and(|d| d >= r) {
                    o.resumed_at = None;
                    if let Some(since) = o.suspect_since.take() {
                        if o.is_live() {
                            suspended = Some((since, o.server_topics.clone()));
                        }
                    }
                }
            }
        } else {
            o.cadence.frame(now, bounds);
        }
        // Any frame proves the socket alive, but while a handover or a resume waits for its
        // pong only that pong proves the socket drained: its deadline stays.
        if !matches!(o.proof, Proof::AwaitingPongs(_)) && o.resumed_at.is_none() {
            o.ping_due = None;
        }
        if let Some((since, topics)) = suspended {
            self.report_suspended(w, since, &topics);
        }
        match frame {
            Frame::Heartbeat | Frame::Pong | Frame::Metadata | Frame::SubscribeReply { .. } => {}
            Frame::SocketClosing => self.on_socket_closing(w),
            Frame::System { kind, reason, .. } => match kind.as_deref() {
                Some("token_revoked") => self.on_token_revoked(w),
                Some("no_longer_subscribed")
                    if reason.as_deref() == Some("another_channel_subscribed") =>
                {
                    self.on_taken_by_another_channel(w)
                }
                Some("no_longer_subscribed") => self.lose(
                    w,
                    GapReason::SubscriptionDropped,
                    Plan::NewChannel,
                    Ending::GivenUp,
                ),
                _ => {}
            },
            Frame::Notification {
                topic,
                body,
                metadata,
            } => {
                let dedup = self.run_mut().map(|r| &mut r.dedup).filter(|d| d.is_on());
                if let Some(dedup) = dedup {
                    let cid = frame::correlation_id(metadata);
                    let key = dedup::key(&topic, cid.as_deref(), body);
                    let verdict = dedup.admit(now, window, key, tag);
                    if verdict.bound_reached {
                        self.warn(ProtocolError::DedupBound {
                            keys: MAX_DEDUP_KEYS,
                            window_secs: window.as_secs(),
                        });
                    }
                    if !verdict.deliver {
                        return self.after_frame(w);
                    }
                }
                let topic = topic.into_owned();
                self.events
                    .push_back(Event::Notification { topic, raw: text });
            }
            Frame::Malformed(why) => {
                if let Some(w) = self.malformed.count(why, now) {
                    self.warn(w);
                }
            }
        }
        self.after_frame(w);
    }

    /// The handover pong on the replaced link is the proof its replacement waits for.
    fn after_frame(&mut self, w: Which) {
        if !self.has_standby() || w != self.standby_for() {
            return;
        }
        let proven = self
            .link(self.standby_for())
            .is_some_and(|a| a.proof().is_proven());
        if proven && self.standby_is_ready() {
            self.promote_after_linger();
        }
    }

    /// A maintenance notice: the link renews at once, alone (with two links, after the other
    /// link's renewal if one is under way: its renewal deadline says when).
    /// The service moved this socket's topics to another channel of this client, and said so
    /// on this socket, after everything it had sent here. With two links, the service keeps
    /// a topic on one channel only: two links would take the topics from each other forever,
    /// so the session goes on with one (and says so).
    fn on_taken_by_another_channel(&mut self, w: Which) {
        if !self.redundant() {
            self.lose(
                w,
                GapReason::SubscriptionDropped,
                Plan::NewChannel,
                Ending::Superseded,
            );
            return;
        }
        self.warn(ServerError::OneChannelPerTopic);
        self.topics_exclusive = true;
        let now = self.now;
        let Some(r) = self.run_mut() else { return };
        r.dedup = Dedup::new(false);
        let gone = r.links.fall_back_to_one(w, now);
        if self.link(Which::Active).is_none() {
            let l = self.new_link();
            self.put_link(Which::Active, l);
        }
        let keep = self
            .link(Which::Active)
            .and_then(Link::live_topics)
            .cloned();
        for (l, until) in gone {
            if let Some(conn) = l.conn() {
                self.actions.push_back(Action::Close {
                    conn,
                    code: NORMAL_CLOSE,
                });
            }
            if let Some(topics) = l.live_topics() {
                for t in topics.intersection(&self.topics) {
                    if !keep.as_ref().is_some_and(|k| k.contains(t)) {
                        self.ledger.lose(t, until, GapReason::SubscriptionDropped);
                    }
                }
            }
        }
    }

    fn on_socket_closing(&mut self, w: Which) {
        match w {
            Which::Active | Which::Twin => {
                let grace = self.now + self.cfg.maintenance_grace;
                if let Some(o) = self.link_mut(w).and_then(Link::open_mut) {
                    o.closing_by.get_or_insert(grace);
                }
                if self.link(w).is_some_and(Link::is_live) {
                    self.start_handover(w, 0);
                }
            }
            Which::Standby => {
                self.lose(w, GapReason::Maintenance, Plan::NewChannel, Ending::GivenUp)
            }
        }
    }

    /// The token of the channel `w` is on was revoked: that link renews on a newer token.
    fn on_token_revoked(&mut self, w: Which) {
        let Some(t) = self.tokens.current.as_ref() else {
            return;
        };
        let current = t.gen;
        let gen = match self.link(w).and_then(|l| l.chan.as_ref()) {
            Some(c) if self.redundant() => c.token_gen,
            _ => current,
        };
        if gen == current {
            if let Some(t) = self.tokens.current.as_mut() {
                t.stale = true;
            }
        }
        if self.redundant() && w != Which::Standby {
            let now = self.now;
            if let Some(c) = self.link_mut(w).and_then(|l| l.chan.as_mut()) {
                c.renew_at = c.renew_at.min(now);
            }
            self.start_handover(w, gen + 1);
        } else {
            self.renew_links_on(gen);
        }
        if !self.has_standby() {
            self.drive_token();
        }
    }

    fn on_closed(&mut self, conn: ConnId, code: Option<u16>, reason: String) {
        let mut reason = reason;
        if let Some((cut, _)) = reason.char_indices().nth(MAX_CLOSE_REASON) {
            reason.truncate(cut);
        }
        if let Some(w) = self.link_connecting(conn) {
            let error = match code {
                Some(c) => RequestError::network(format!("closed with {c} before opening")),
                None => RequestError::network("closed before opening"),
            };
            self.on_connect_failed(w, &error);
            return;
        }
        let Some(w) = self.link_open(conn) else {
            return;
        };
        self.warn(ServerError::SocketClosed { code, reason });
        let maintenance = self
            .link(w)
            .and_then(Link::open)
            .is_some_and(|o| o.closing_by.is_some());
        let r = self.classify_loss(w, Cause::Closed(code));
        if let Some(c) = r.auth_failure {
            let stable = self
                .link(w)
                .and_then(Link::open)
                .and_then(|o| o.live_since)
                .is_some_and(|s| self.now - s >= self.cfg.stable_after);
            if stable {
                self.auth_streak.end();
            }
            if self.count_auth_failure(w, c) {
                return;
            }
        } else {
            self.auth_streak.end();
        }
        if r.fresher_token {
            self.want_fresher_token(w);
        }
        let reason = if maintenance {
            GapReason::Maintenance
        } else {
            GapReason::SocketLost
        };
        self.lose(w, reason, r.plan, Ending::ClosedByServer);
    }

    /// A link lost its socket or channel. An active link's covered topics become uncovered;
    /// a standby takes over if there is one; otherwise the link retries after backoff.
    fn lose(&mut self, w: Which, reason: GapReason, plan: Plan, ending: Ending) {
        let close_socket = ending != Ending::ClosedByServer;
        // Proven only up to its last frame (not up to now) when the session gave up on it.
        let unproven = ending == Ending::GivenUp;
        let now = self.now;
        let Some(mut old) = self.take_link(w) else {
            return;
        };
        if close_socket {
            if let Some(conn) = old.conn() {
                self.actions.push_back(Action::Close {
                    conn,
                    code: NORMAL_CLOSE,
                });
            }
        }
        let lost = old.open().filter(|o| w != Which::Standby && o.is_live());
        if let (Some(o), Life::Running(r)) = (lost, &self.life) {
            let links = &r.links;
            // A close frame from the server proves everything sent before it arrived. A socket
            // the session gives up on itself is proven only up to its last frame.
            let (from, reason) = match (o.suspect_since, unproven) {
                (Some(since), _) => (since, GapReason::Suspended),
                (None, true) => (o.last_rx, reason),
                (None, false) => (now, reason),
            };
            // Nothing is published to a channel past its expiry, closed or not: its coverage
            // ended then at the latest.
            let from = old.chan.as_ref().map_or(from, |c| from.min(c.expires_at));
            // A standby subscribed before the coverage ended keeps covering what it has — if
            // the old socket was drained up to then: by the server's close frame, or by the
            // pong to the handover ping. Otherwise frames it sent before the standby took
            // over may never have arrived.
            let drained = !unproven || o.proof.is_proven();
            let still = links
                .get(Which::Standby)
                .filter(|_| links.standby_for() == w)
                .and_then(Link::open)
                .filter(|s| drained && s.live_since.is_some_and(|l| l <= from))
                .map(|s| &s.server_topics);
            // With two links, the other one keeps covering what it has — if it was live before
            // the coverage ended and this socket was drained up to when it went live: by the
            // server's close frame, or by a pong to a ping sent after then.
            let drained_to = o.pings.drained_to;
            let twin = links
                .other_lane(w)
                .and_then(|x| links.get(x))
                .and_then(Link::open)
                .filter(|s| {
                    s.live_since.is_some_and(|l| {
                        l <= from && (!unproven || drained_to.is_some_and(|d| d >= l))
                    })
                })
                .map(|s| &s.server_topics);
            for t in o.server_topics.intersection(&self.topics) {
                let kept =
                    still.is_some_and(|s| s.contains(t)) || twin.is_some_and(|s| s.contains(t));
                if !kept {
                    self.ledger.lose(t, from, reason);
                }
            }
        }
        if w != Which::Standby && self.standby_for() == w {
            if let Some(standby) = self.take_link(Which::Standby) {
                self.put_link(w, standby);
                return;
            }
        }
        let served = old.open().is_some_and(|o| {
            o.live_since.is_some_and(|s| {
                let lived = now - s;
                lived >= self.cfg.stable_after
                    || (lived >= SERVED_FOR.min(self.cfg.stable_after) && o.last_rx > s)
            })
        });
        if served {
            old.failures = 0;
        }
        // The first retry after a stable connection goes out at once, spread a little so a
        // crowd of clients dropped together does not arrive together; backoff grows from the
        // second failure on.
        let delay = if old.failures == 0 {
            // Never in the same instant as the loss: that stays a separate wake-up.
            let least = Duration::from_millis(1);
            self.rng.between(least, self.first_retry_spread.max(least))
        } else {
            self.backoff(old.failures, None)
        };
        let mut next = Link::new(old.tag);
        next.failures = old.failures.saturating_add(1);
        next.min_token_gen = old.min_token_gen;
        next.chan = old.chan.take();
        next.step = Step::Waiting {
            until: now + delay,
            plan,
            why: Wait::Backoff,
        };
        self.put_link(w, next);
        if w == Which::Standby {
            self.reset_handover_proof();
        }
    }

    /// A socket proved drained after a resume: the stretch since its last frame before the
    /// suspend is reported, for the topics no socket proven earlier already reported.
    fn report_suspended(&mut self, w: Which, since: Instant, topics: &BTreeSet<Topic>) {
        let others: Vec<&Link> = SLOTS
            .iter()
            .filter(|&&x| x != w)
            .filter_map(|&x| self.link(x))
            .collect();
        let proven_elsewhere = |t: &Topic| {
            others.iter().any(|l| {
                l.open().is_some_and(|o| {
                    o.is_live() && o.suspect_since.is_none() && o.server_topics.contains(t)
                })
            })
        };
        let report: Vec<Topic> = topics
            .iter()
            .filter(|t| self.topics.contains(*t) && !proven_elsewhere(t))
            .cloned()
            .collect();
        for t in report {
            self.ledger.lose(&t, since, GapReason::Suspended);
        }
    }

    fn on_resumed(&mut self, slept: Duration) {
        if slept.is_zero() {
            return;
        }
        let now = self.now;
        let suspend_gap = self.cfg.suspend_gap;
        if let Some(t) = self.tokens.current.as_mut() {
            t.expires_at = t.expires_at - slept;
        }
        for w in SLOTS {
            let Some(l) = self.link_mut(w) else { continue };
            if let Some(c) = l.chan.as_mut() {
                c.expires_at = c.expires_at - slept;
                c.token_expires_at = c.token_expires_at - slept;
                c.renew_at = c.renew_at - slept;
            }
            if let Some(o) = l.open_mut() {
                o.suspect_since.get_or_insert(o.last_rx);
                if suspend_gap {
                    // Proven again only by the pong to a ping sent now.
                    o.resumed_at = Some(now);
                    self.ping(w);
                } else if o.ping_due.is_none() {
                    self.ping(w);
                }
            }
        }
    }

    fn require_login(&mut self, reason: AuthError) {
        if matches!(self.life, Life::LoginRequired) {
            return;
        }
        let now = self.now;
        // Coverage of a topic ended with the last frame of the last socket that carried it.
        let mut ended: BTreeMap<Topic, Instant> = BTreeMap::new();
        for l in self.lanes() {
            let Some(o) = l.open().filter(|o| o.is_live()) else {
                continue;
            };
            let from = o.suspect_since.unwrap_or(o.last_rx).min(now);
            for t in o.server_topics.intersection(&self.topics) {
                let e = ended.entry(t.clone()).or_insert(from);
                *e = (*e).max(from);
            }
        }
        for (t, from) in ended {
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
