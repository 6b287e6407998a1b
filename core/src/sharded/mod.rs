//! The `Session`: the application's topics spread over as many shards as they need, each a
//! [`Shard`] that keeps one channel's worth of them alive.
//!
//! The session drives its shards the way an adapter drives the session, and adds what only
//! the whole knows: where each topic lives (`place`), one token request at a time for every
//! shard (`Broker`), the channel budget (a channel request that would pass it waits), one
//! status, and the application's own topic names when topics travel combined (`combine`).
//! With one shard, which is every session of up to `max_topics_per_channel` topics, it passes
//! everything through unchanged.

mod broker;
mod combine;
mod place;

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use broker::Broker;
use place::Placement;

use crate::config::Config;
use crate::error::{Error, FatalError, UsageError};
use crate::io::{Action, Event, Input, Status};
use crate::session::{Deadline, Footprint, Shard};
use crate::time::Instant;
use crate::types::{ReqId, Secret, Topic};

/// A shard's ids are `serial << ID_SHIFT` and up: an answer names its shard.
const ID_SHIFT: u32 = 40;
/// How long a channel whose socket the session closed still counts toward the channel
/// budget: the service counts it as connected (and so evicts a live one before it) until it
/// has seen the close.
const CLOSE_GRACE: Duration = Duration::from_millis(500);
/// Closes remembered for [`CLOSE_GRACE`] at most; the oldest is forgotten first.
const MAX_RECENT_CLOSES: usize = 64;

/// The sans-IO session: a set of topics kept covered for as long as the application wants
/// them, on one notification channel, or on as many as the topics need (each carries at most
/// [`Config::max_topics_per_channel`]) within the channel budget ([`Config::max_channels`]).
/// See the [crate docs](crate) for the drive loop an adapter MUST follow.
///
/// Each channel's share of the topics (a *shard*) lives on its own: its own socket (two with
/// `redundancy: 2`), renewal, liveness and gaps, which name only its topics. Shards share
/// one token (one request at a time answers all of them) and the channel budget: at most
/// `max_channels` channels are held at once, so that a renewal never evicts a live channel
/// of this session (the service removes the oldest channel at the 21st).
///
/// Methods sort into:
/// - **inputs**: [`handle_input`](Self::handle_input), [`handle_timeout`](Self::handle_timeout);
/// - **commands**: [`subscribe`](Self::subscribe), [`unsubscribe`](Self::unsubscribe),
///   [`login`](Self::login), [`report_unauthorized`](Self::report_unauthorized),
///   [`close`](Self::close);
/// - **outputs**, drained after every input or command: [`poll_action`](Self::poll_action),
///   [`poll_event`](Self::poll_event), then [`poll_timeout`](Self::poll_timeout);
/// - **getters**: [`status`](Self::status), [`topics`](Self::topics),
///   [`covered_topics`](Self::covered_topics), [`access_token`](Self::access_token),
///   [`shards`](Self::shards), [`channels_held`](Self::channels_held).
pub struct Session {
    cfg: Config,
    seed: u64,
    now: Instant,
    slots: Vec<Slot>,
    place: Placement,
    next_serial: u64,
    broker: Broker,
    /// Channel requests that wait for room in the channel budget, oldest first.
    held: VecDeque<(u64, Action)>,
    /// When the session last closed sockets, within [`CLOSE_GRACE`].
    closed_at: VecDeque<Instant>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    status: Option<Status>,
    ever_live: bool,
    /// A `LoginSoon` was told and no token came since.
    login_soon_told: bool,
    failed: bool,
    first_retry_spread: Duration,
    /// Shards to give their topics again: a combined id of theirs was refused.
    resplit: Vec<u64>,
}

/// Shows the state, never a secret.
impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("now", &self.now)
            .field("status", &self.status())
            .field("topics", &self.place.len())
            .field(
                "shards",
                &self.slots.iter().map(|s| &s.shard).collect::<Vec<_>>(),
            )
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
        let mut s = Session {
            first_retry_spread: config.first_retry_spread,
            place: Placement::new(&config),
            cfg: config,
            seed,
            now,
            slots: Vec::new(),
            next_serial: 0,
            broker: Broker::default(),
            held: VecDeque::new(),
            closed_at: VecDeque::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            status: None,
            ever_live: false,
            login_soon_told: false,
            failed: false,
            resplit: Vec::new(),
        };
        s.open_shard();
        s.pump();
        Ok(s)
    }

    // ----- getters -------------------------------------------------------------------------

    /// Where the session stands: `Live` once every shard is live (a shard added while live
    /// keeps it `Live` while it connects), `Recovering` while one recovers.
    pub fn status(&self) -> Status {
        self.status.unwrap_or(Status::Connecting)
    }

    /// The desired topic set, in stable order.
    pub fn topics(&self) -> impl Iterator<Item = &Topic> {
        self.place.topics()
    }

    /// Topics a live, subscribed socket covers right now.
    pub fn covered_topics(&self) -> impl Iterator<Item = &Topic> {
        self.place.topics().filter(move |t| {
            self.place.home(t).is_some_and(|(serial, wire)| {
                self.slot(serial)
                    .is_some_and(|s| s.shard.covered_topics().any(|c| c == wire))
            })
        })
    }

    /// How many entries each of the session's internal collections holds now, summed over
    /// its shards: for soak tests and monitoring that every one stays within its bound.
    pub fn footprint(&self) -> Footprint {
        let mut f = Footprint {
            queued_actions: self.actions.len() + self.held.len(),
            queued_events: self.events.len(),
            shards: self.slots.len(),
            ..Footprint::default()
        };
        for s in &self.slots {
            f.add(&s.shard.footprint());
        }
        f.topics = self.place.len();
        f
    }

    /// Live, subscribed sockets that carry coverage now, over all shards (per shard 0 or 1,
    /// or up to 2 with `redundancy: 2`; a make-before-break replacement is not counted until
    /// it takes over).
    pub fn live_sockets(&self) -> usize {
        self.slots.iter().map(|s| s.shard.live_sockets()).sum()
    }

    /// Shards: channels' worth of topics, each kept on its own channel (two with
    /// `redundancy: 2`).
    pub fn shards(&self) -> usize {
        self.slots.len()
    }

    /// Channels the session holds or is asking for now, at most [`Config::max_channels`].
    pub fn channels_held(&self) -> usize {
        let all: usize = self.slots.iter().map(|s| s.shard.channels_held()).sum();
        all.saturating_sub(self.held.len())
    }

    /// Channels held, and those whose socket closed so recently that the service may not
    /// have seen it yet.
    fn channels_counted(&self) -> usize {
        let grace_from = self.now.saturating_sub(CLOSE_GRACE);
        let recent = self.closed_at.iter().filter(|&&t| t > grace_from).count();
        self.channels_held() + recent
    }

    /// The current access token, if it is neither expired nor rejected: for the
    /// application's own REST calls.
    pub fn access_token(&self) -> Option<&Secret> {
        self.slots
            .iter()
            .find_map(|s| s.shard.access_token(self.now))
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
        // A channel request held for the budget goes once a recent close counts no more.
        let budget = self
            .closed_at
            .front()
            .filter(|_| !self.held.is_empty())
            .map(|&t| (t + CLOSE_GRACE, Deadline::ChannelBudget));
        self.slots
            .iter()
            .filter_map(|s| s.shard.poll_timeout())
            .chain(budget)
            .min_by_key(|(at, _)| *at)
    }

    // ----- inputs --------------------------------------------------------------------------

    /// Feeds one thing that happened. Results naming an id the session no longer waits for
    /// are ignored.
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        let now = self.set_now(now);
        match input {
            Input::TokenIssued {
                req,
                token,
                expires_in,
                rotated_refresh_token,
            } => {
                for (to, rotated) in self.broker.answered(req, rotated_refresh_token) {
                    let input = Input::TokenIssued {
                        req: to,
                        token: token.clone(),
                        expires_in,
                        rotated_refresh_token: rotated,
                    };
                    self.feed(to, now, input);
                }
                self.login_soon_told = false;
            }
            Input::TokenFailed { req, error } => {
                for (to, _) in self.broker.answered(req, false) {
                    let input = Input::TokenFailed {
                        req: to,
                        error: error.clone(),
                    };
                    self.feed(to, now, input);
                }
            }
            Input::Resumed { slept } => {
                for s in &mut self.slots {
                    s.shard.handle_input(now, Input::Resumed { slept });
                }
            }
            Input::ChannelCreated { req, .. }
            | Input::ChannelFailed { req, .. }
            | Input::Subscribed { req, .. }
            | Input::SubscribeFailed { req, .. } => {
                let input = self.place.in_service_terms(serial_of(req.as_u64()), input);
                self.feed(req, now, input)
            }
            Input::Opened { conn }
            | Input::ConnectFailed { conn, .. }
            | Input::Frame { conn, .. }
            | Input::Closed { conn, .. } => {
                if let Some(s) = self.slot_mut(serial_of(conn.as_u64())) {
                    s.shard.handle_input(now, input);
                }
            }
        }
        self.pump();
    }

    /// Sets [`Config::first_retry_spread`] from now on. An adapter that runs many sessions in
    /// one process widens it with their number, so that sessions dropped together do not
    /// reconnect together.
    pub fn set_first_retry_spread(&mut self, spread: Duration) {
        self.first_retry_spread = spread;
        for s in &mut self.slots {
            s.shard.set_first_retry_spread(spread);
        }
    }

    /// The first-retry spread in force (see [`set_first_retry_spread`](Self::set_first_retry_spread)).
    pub fn first_retry_spread(&self) -> Duration {
        self.first_retry_spread
    }

    /// Handles every deadline at or before `now`. Call it when `poll_timeout` says.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.set_now(now);
        self.settle_all(now);
        self.pump();
    }

    // ----- commands ------------------------------------------------------------------------

    /// Adds topics to the desired set. While live, the whole set of each shard that changed
    /// is PUT again; topics go to shards with room first, and a new shard (a new channel)
    /// opens only for what does not fit.
    ///
    /// Fails without changing anything if the set would not fit in the channel budget
    /// ([`UsageError::TooManyTopics`] says how many fit) or the session is closed.
    pub fn subscribe(
        &mut self,
        now: Instant,
        topics: impl IntoIterator<Item = Topic>,
    ) -> Result<(), UsageError> {
        let now = self.set_now(now);
        if self.is_over() {
            return Err(UsageError::Closed);
        }
        let serials: Vec<u64> = self.slots.iter().map(|s| s.serial).collect();
        let plan = self.place.plan(&serials, topics)?;
        for _ in 0..plan.new_shards {
            self.open_shard();
        }
        let serials: Vec<u64> = self.slots.iter().map(|s| s.serial).collect();
        let changed = self.place.commit(plan, &serials);
        self.apply(now, &changed);
        self.settle_all(now);
        self.pump();
        Ok(())
    }

    /// Removes topics from the desired set. While live, the remaining set of each shard that
    /// changed is PUT again; a shard left with no topic closes its channel (unless it is the
    /// last one).
    pub fn unsubscribe<'t>(
        &mut self,
        now: Instant,
        topics: impl IntoIterator<Item = &'t Topic>,
    ) -> Result<(), UsageError> {
        let now = self.set_now(now);
        if self.is_over() {
            return Err(UsageError::Closed);
        }
        let changed = self.place.remove(topics);
        self.apply(now, &changed);
        // Shards left empty go, but one always stays.
        let empty: Vec<u64> = self
            .slots
            .iter()
            .filter(|s| self.place.count(s.serial) == 0)
            .map(|s| s.serial)
            .collect();
        for serial in empty {
            if self.slots.len() > 1 {
                self.drop_shard(now, serial);
            }
        }
        self.settle_all(now);
        self.pump();
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
        let now = self.set_now(now);
        if self.is_over() {
            return Err(UsageError::Closed);
        }
        self.broker.forget();
        for s in &mut self.slots {
            s.shard.login(now, token.clone(), expires_in)?;
        }
        self.login_soon_told = false;
        self.pump();
        Ok(())
    }

    /// The application's own API call with `token` was answered 401. If that is the current
    /// token, it is dropped and one shared refresh follows (with new channels, since a
    /// channel is bound to the token). Reports about older tokens are ignored.
    pub fn report_unauthorized(&mut self, now: Instant, token: &str) {
        let now = self.set_now(now);
        for s in &mut self.slots {
            s.shard.report_unauthorized(now, token);
        }
        self.pump();
    }

    /// Closes every socket with 1000 and stops. Later inputs are ignored. A stretch that was
    /// still uncovered (the session was recovering) is reported as a `Gap` ending now, before
    /// the `Closed` status: nothing is lost without a report, even at exit.
    pub fn close(&mut self, now: Instant) {
        let now = self.set_now(now);
        for s in &mut self.slots {
            s.shard.close(now);
        }
        self.held.clear();
        self.pump();
    }

    // ----- plumbing ------------------------------------------------------------------------

    fn is_over(&self) -> bool {
        self.status.is_some_and(Status::is_terminal)
    }

    /// Time never goes back for the shards: an earlier `now` is warned about once, here.
    fn set_now(&mut self, now: Instant) -> Instant {
        if now < self.now {
            let by_ms = (self.now - now).as_millis() as u64;
            self.events
                .push_back(Event::Warning(Error::from(UsageError::TimeWentBackwards {
                    by_ms,
                })));
        } else {
            self.now = now;
        }
        self.now
    }

    /// Every shard sees `now` and runs what is due by then, as a command does whether or not
    /// it changed the shard.
    fn settle_all(&mut self, now: Instant) {
        for s in &mut self.slots {
            s.shard.handle_timeout(now);
        }
    }

    fn slot(&self, serial: u64) -> Option<&Slot> {
        self.slots.iter().find(|s| s.serial == serial)
    }

    fn slot_mut(&mut self, serial: u64) -> Option<&mut Slot> {
        self.slots.iter_mut().find(|s| s.serial == serial)
    }

    fn feed(&mut self, req: ReqId, now: Instant, input: Input) {
        if let Some(s) = self.slot_mut(serial_of(req.as_u64())) {
            s.shard.handle_input(now, input);
        }
    }

    /// A new shard, starting with the token the others hold (if any is still good).
    fn open_shard(&mut self) {
        let serial = self.next_serial;
        self.next_serial += 1;
        let token = self.slots.iter().find_map(|s| s.shard.token_to_share());
        // Shard 0 draws from the session's seed itself; the others from seeds of their own,
        // so that their jitter (and so their renewals) differ.
        let seed = self.seed ^ serial.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut shard = Shard::new(
            self.cfg.clone(),
            self.now,
            seed,
            (serial << ID_SHIFT) + 1,
            token,
        );
        shard.set_first_retry_spread(self.first_retry_spread);
        let late = self.ever_live;
        self.slots.push(Slot::new(serial, shard, late));
    }

    /// Closes a shard that has no topic left and forgets it. What it does on the way out goes
    /// the way of every shard's (its closes count toward the channel budget for a moment);
    /// its `Closed` leaves the folded status to the others.
    fn drop_shard(&mut self, now: Instant, serial: u64) {
        let Some(i) = self.slots.iter().position(|s| s.serial == serial) else {
            return;
        };
        self.slots[i].shard.close(now);
        self.drain(i);
        self.slots.remove(i);
        self.held.retain(|(s, _)| *s != serial);
        self.place.forget_shard(serial);
    }

    /// Gives each changed shard its new set of topics as the service sees them.
    fn apply(&mut self, now: Instant, changed: &[u64]) {
        for &serial in changed {
            let Some(current) = self
                .slot(serial)
                .map(|s| s.shard.topics().cloned().collect::<Vec<_>>())
            else {
                continue;
            };
            let (add, remove) = self.place.diff(serial, current.iter());
            let Some(s) = self.slot_mut(serial) else {
                continue;
            };
            let _ = s.shard.unsubscribe(now, remove.iter());
            // Within one channel's limit by construction, unless combined ids counted as one
            // were refused and their parts go alone: the service counts parts.
            if let Err(UsageError::TooManyTopics { requested, .. }) = s.shard.subscribe(now, add) {
                self.fail(
                    FatalError::CombinedTopicsCountParts { parts: requested },
                    None,
                );
                return;
            }
        }
    }

    /// Stops every shard (but `stopped`, which stopped itself) for an error that retrying
    /// cannot fix, told once; what they leave uncovered is reported before the status.
    fn fail(&mut self, error: FatalError, stopped: Option<usize>) {
        if std::mem::replace(&mut self.failed, true) {
            return;
        }
        self.events.push_back(Event::Fatal(error));
        self.held.clear();
        let now = self.now;
        for i in (0..self.slots.len()).filter(|&i| Some(i) != stopped) {
            self.slots[i].shard.close(now);
            self.drain(i);
        }
        self.fold_status();
    }

    /// Moves what every shard produced into the session's queues, in order: actions through
    /// the token broker and the channel budget, events in the application's terms, statuses
    /// folded into one.
    fn pump(&mut self) {
        for i in 0..self.slots.len() {
            self.drain(i);
        }
        // Combined ids the service refused: their parts go alone, once each, so this ends.
        while let Some(serial) = self.resplit.pop() {
            let now = self.now;
            self.apply(now, &[serial]);
            if let Some(i) = self.slots.iter().position(|s| s.serial == serial) {
                self.drain(i);
            }
        }
        self.release_held();
    }

    fn drain(&mut self, i: usize) {
        while let Some(a) = self.slots[i].shard.poll_action() {
            let serial = self.slots[i].serial;
            self.route_action(serial, a);
        }
        while let Some(e) = self.slots[i].shard.poll_event() {
            self.route_event(i, e);
        }
    }

    fn route_action(&mut self, serial: u64, a: Action) {
        match a {
            Action::RequestToken { req } => {
                if self
                    .broker
                    .ask(serial, req, self.now, self.cfg.request_timeout)
                {
                    self.actions.push_back(a);
                }
            }
            Action::CreateChannel { .. } => {
                self.held.push_back((serial, a));
                self.release_held();
            }
            Action::Close { .. } => {
                if self.closed_at.len() == MAX_RECENT_CLOSES {
                    self.closed_at.pop_front();
                }
                self.closed_at.push_back(self.now);
                self.actions.push_back(a);
            }
            Action::PutSubscriptions { .. } | Action::Connect { .. } | Action::Send { .. } => {
                self.actions.push_back(a)
            }
        }
    }

    /// Sends held channel requests, oldest first, while the budget has room; drops those
    /// their shard no longer waits for.
    fn release_held(&mut self) {
        let grace_from = self.now.saturating_sub(CLOSE_GRACE);
        while self.closed_at.front().is_some_and(|&t| t <= grace_from) {
            self.closed_at.pop_front();
        }
        while let Some((serial, Action::CreateChannel { req, .. })) = self.held.front() {
            let (serial, req) = (*serial, *req);
            let waits = self
                .slot(serial)
                .is_some_and(|s| s.shard.awaits_channel(req));
            if waits && self.channels_counted() >= self.cfg.max_channels as usize {
                return;
            }
            if let Some((_, a)) = self.held.pop_front() {
                if waits {
                    self.actions.push_back(a);
                }
            }
        }
    }

    fn route_event(&mut self, i: usize, e: Event) {
        match e {
            Event::Status(st) => {
                self.slots[i].reported = st;
                self.fold_status();
            }
            Event::LoginRequired { .. } => {
                // Told once for all shards: the first shard to need a login tells it, and
                // its status follows; the others find the session waiting for one already.
                if self.status != Some(Status::LoginRequired) {
                    self.events.push_back(e);
                }
            }
            Event::LoginSoon { .. } => {
                if !std::mem::replace(&mut self.login_soon_told, true) {
                    self.events.push_back(e);
                }
            }
            // One shard's fatal answer holds for all (it stopped itself; its status follows).
            Event::Fatal(error) => self.fail(error, Some(i)),
            Event::Gap {
                topics,
                from,
                to,
                reason,
            } => {
                let topics = self.place.in_app_terms(self.slots[i].serial, topics);
                self.events.push_back(Event::Gap {
                    topics,
                    from,
                    to,
                    reason,
                });
            }
            Event::TopicRejected { ref topic, .. } => {
                let serial = self.slots[i].serial;
                if !self.place.refused(serial, topic) {
                    self.events.push_back(e);
                } else if !self.resplit.contains(&serial) {
                    self.resplit.push(serial);
                }
            }
            Event::Notification { .. } | Event::TokenRotated | Event::Warning(_) => {
                self.events.push_back(e)
            }
        }
    }

    /// One status from the shards' own, told when it changes.
    fn fold_status(&mut self) {
        let all = || self.slots.iter().map(|s| s.reported);
        let open = || self.slots.iter().filter(|s| s.reported != Status::Closed);
        let st = if self.failed || all().any(|s| s == Status::Failed) {
            Status::Failed
        } else if open().next().is_none() {
            Status::Closed
        } else if open().any(|s| s.reported == Status::LoginRequired) {
            Status::LoginRequired
        } else if open().any(|s| s.reported == Status::Live)
            && open()
                .all(|s| s.reported == Status::Live || (s.late && s.reported == Status::Connecting))
        {
            Status::Live
        } else if self.ever_live {
            Status::Recovering
        } else {
            Status::Connecting
        };
        if st == Status::Live {
            self.ever_live = true;
        }
        if self.status != Some(st) {
            self.status = Some(st);
            self.events.push_back(Event::Status(st));
        }
    }
}

/// A shard and what the session knows of it.
#[derive(Debug)]
struct Slot {
    serial: u64,
    shard: Shard,
    /// The status the shard told last.
    reported: Status,
    /// Opened while the session was live: while it connects, the session stays `Live`.
    late: bool,
}

impl Slot {
    fn new(serial: u64, shard: Shard, late: bool) -> Slot {
        Slot {
            serial,
            shard,
            reported: Status::Connecting,
            late,
        }
    }
}

/// The shard an id belongs to.
fn serial_of(id: u64) -> u64 {
    id >> ID_SHIFT
}
