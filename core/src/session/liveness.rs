//! How long an open socket may stay silent before it is pinged, and how long a ping may stay
//! unanswered, learned from what this socket has shown.
//!
//! A channel carrying several events a second that falls silent for a second is suspect; a
//! channel that only heartbeats every 30 s is not. So the silence after which the session
//! pings follows the gaps between the frames this socket delivered (a high percentile, times
//! a margin), between a floor and `idle_timeout`; and the wait for a pong follows the round
//! trips its pongs took (the slowest recent one, times a margin), between a floor and
//! `ping_timeout`. Until a socket has shown enough, the configured ceilings apply. Pure and
//! allocation-free: a heartbeat or a pong costs a few array writes.

use std::collections::VecDeque;
use std::time::Duration;

use crate::config::Config;
use crate::time::Instant;

/// Frame gaps remembered per socket.
const GAPS: usize = 32;
/// Gaps needed before the idle wait adapts.
const MIN_GAPS: usize = 8;
/// Pong round trips remembered per socket.
const RTTS: usize = 8;
/// The silence that makes a socket suspect: this many times the 90th percentile gap.
const GAP_MARGIN: u32 = 3;
/// The pong wait: this many times the slowest recent round trip.
const RTT_MARGIN: u32 = 4;

/// The configured floors and ceilings, copied out of the config so a socket can be updated
/// while the session is borrowed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    idle_floor: Duration,
    idle_ceiling: Duration,
    pong_floor: Duration,
    pong_ceiling: Duration,
}

impl Bounds {
    pub(super) fn new(cfg: &Config) -> Bounds {
        Bounds {
            idle_floor: cfg.min_idle_timeout.min(cfg.idle_timeout),
            idle_ceiling: cfg.idle_timeout,
            pong_floor: cfg.min_ping_timeout.min(cfg.ping_timeout),
            pong_ceiling: cfg.ping_timeout,
        }
    }
}

/// A fixed-size ring of the most recent durations, in milliseconds.
#[derive(Debug, Clone, Copy)]
struct Ring<const N: usize> {
    ms: [u32; N],
    len: usize,
    next: usize,
}

impl<const N: usize> Ring<N> {
    const EMPTY: Ring<N> = Ring {
        ms: [0; N],
        len: 0,
        next: 0,
    };

    fn push(&mut self, d: Duration) {
        self.ms[self.next] = u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        self.next = (self.next + 1) % N;
        self.len = (self.len + 1).min(N);
    }

    fn samples(&self) -> &[u32] {
        &self.ms[..self.len]
    }
}

/// What one open socket has shown of its traffic.
#[derive(Debug, Clone)]
pub(super) struct Cadence {
    gaps: Ring<GAPS>,
    rtts: Ring<RTTS>,
    /// When the last frame other than a pong arrived.
    last_frame: Option<Instant>,
    /// When the oldest unanswered ping went out.
    ping_sent: Option<Instant>,
    /// The silence after which to ping, recomputed when a gap is recorded.
    idle: Duration,
    /// The wait for a pong, recomputed when a round trip is recorded.
    pong_wait: Duration,
}

impl Cadence {
    /// A socket that has shown nothing yet: the configured ceilings apply.
    pub(super) fn new(b: Bounds) -> Cadence {
        Cadence {
            gaps: Ring::EMPTY,
            rtts: Ring::EMPTY,
            last_frame: None,
            ping_sent: None,
            idle: b.idle_ceiling,
            pong_wait: b.pong_ceiling,
        }
    }

    /// The silence after which the socket is pinged.
    pub(super) fn idle(&self) -> Duration {
        self.idle
    }

    /// How long a ping may stay unanswered.
    pub(super) fn pong_wait(&self) -> Duration {
        self.pong_wait
    }

    /// A frame other than a pong arrived.
    pub(super) fn frame(&mut self, now: Instant, b: Bounds) {
        if let Some(last) = self.last_frame {
            self.gaps.push(now.saturating_duration_since(last));
            if self.gaps.len >= MIN_GAPS {
                let mut sorted = [0u32; GAPS];
                let n = self.gaps.len;
                sorted[..n].copy_from_slice(self.gaps.samples());
                // Every frame lands here: a selection (linear) rather than a full sort.
                let k = (n * 9).div_ceil(10).saturating_sub(1);
                let (_, &mut p90, _) = sorted[..n].select_nth_unstable(k);
                let idle = Duration::from_millis(u64::from(p90)) * GAP_MARGIN;
                self.idle = idle.clamp(b.idle_floor, b.idle_ceiling);
            }
        }
        self.last_frame = Some(now);
    }

    /// When the oldest unanswered ping went out.
    pub(super) fn ping_sent_at(&self) -> Option<Instant> {
        self.ping_sent
    }

    /// A ping went out; `first` if no other ping was unanswered.
    pub(super) fn ping_sent(&mut self, now: Instant, first: bool) {
        if first || self.ping_sent.is_none() {
            self.ping_sent = Some(now);
        }
    }

    /// A pong arrived; `last` if no ping is unanswered now. Measured against the oldest
    /// unanswered ping, so overlapping pings can only overstate a round trip.
    pub(super) fn pong(&mut self, now: Instant, last: bool, b: Bounds) {
        if let Some(sent) = self.ping_sent {
            self.rtts.push(now.saturating_duration_since(sent));
            let slowest = self.rtts.samples().iter().copied().max().unwrap_or(0);
            let wait = Duration::from_millis(u64::from(slowest)) * RTT_MARGIN;
            self.pong_wait = wait.clamp(b.pong_floor, b.pong_ceiling);
        }
        self.ping_sent = if last { None } else { Some(now) };
    }
}

/// Ping send times kept to match pongs against, at most.
const PING_LOG: usize = 16;

/// Which pings a socket's pongs answered: a pong to a ping sent at `t` proves that the socket
/// delivered everything the server wrote on it before it read that ping.
#[derive(Debug, Default)]
pub(super) struct PingLog {
    sent: u64,
    answered: u64,
    /// (ping number, sent at) of the latest pings; the oldest is forgotten past [`PING_LOG`].
    times: VecDeque<(u64, Instant)>,
    /// The send time of the latest ping a pong answered.
    pub(super) drained_to: Option<Instant>,
}

impl PingLog {
    pub(super) fn ping(&mut self, now: Instant) {
        self.sent += 1;
        if self.times.len() == PING_LOG {
            self.times.pop_front();
        }
        self.times.push_back((self.sent, now));
    }

    /// Pongs answer pings in order. An unasked pong proves nothing (it is not counted past
    /// the pings sent); a forgotten ping's pong moves nothing.
    /// Pings remembered (at most [`PING_LOG`]).
    pub(super) fn len(&self) -> usize {
        self.times.len()
    }

    pub(super) fn pong(&mut self) {
        self.answered = (self.answered + 1).min(self.sent);
        while let Some(&(n, at)) = self.times.front() {
            if n > self.answered {
                break;
            }
            self.times.pop_front();
            if n == self.answered {
                self.drained_to = Some(at);
            }
        }
    }
}

/// One open socket's liveness: when it last spoke, the pings it owes a pong, the pace it has
/// shown, and a suspend it has not proven itself since. It owns every change to them; the
/// session tells it what arrived and what went out.
#[derive(Debug)]
pub(super) struct Alive {
    pub(super) last_rx: Instant,
    /// A pong (or, outside a handover or resume, any frame) is due by then.
    pub(super) ping_due: Option<Instant>,
    /// Pings sent on this socket that no pong has answered yet.
    pub(super) pings_out: u32,
    /// What the socket's traffic has shown: when to ping it, how long to wait for a pong.
    /// (Boxed: it holds the recent gaps and round trips, a few hundred bytes.)
    pub(super) cadence: Box<Cadence>,
    /// Which pings were answered, for the hand-off of coverage between two links.
    pub(super) pings: PingLog,
    /// Set by a suspend: coverage since then is unproven until a frame arrives (with
    /// `suspend_gap`: until the pong to the ping sent at the resume).
    pub(super) suspect_since: Option<Instant>,
    /// With `suspend_gap`: when the session resumed, until the pong to a ping sent then.
    pub(super) resumed_at: Option<Instant>,
}

impl Alive {
    pub(super) fn new(now: Instant, cadence: Cadence) -> Alive {
        Alive {
            last_rx: now,
            ping_due: None,
            pings_out: 0,
            cadence: Box::new(cadence),
            pings: PingLog::default(),
            suspect_since: None,
            resumed_at: None,
        }
    }

    /// A ping goes out now; its pong is due within the pong wait.
    pub(super) fn ping(&mut self, now: Instant) {
        self.cadence.ping_sent(now, self.pings_out == 0);
        self.pings.ping(now);
        self.ping_due.get_or_insert(now + self.cadence.pong_wait());
        self.pings_out = self.pings_out.saturating_add(1);
    }

    /// A frame arrived: outside a resume that waits for its pong, the socket is proven again.
    pub(super) fn heard(&mut self, now: Instant) {
        self.last_rx = now;
        if self.resumed_at.is_none() {
            self.suspect_since = None;
        }
    }

    /// A pong arrived. If it proves the socket drained past a resume, the start of the
    /// stretch the suspend left unproven.
    pub(super) fn pong(&mut self, now: Instant, bounds: Bounds) -> Option<Instant> {
        self.pings_out = self.pings_out.saturating_sub(1);
        self.pings.pong();
        self.cadence.pong(now, self.pings_out == 0, bounds);
        let r = self.resumed_at?;
        if self.pings.drained_to.is_none_or(|d| d < r) {
            return None;
        }
        self.resumed_at = None;
        self.suspect_since.take()
    }

    /// A frame other than a pong arrived.
    pub(super) fn frame(&mut self, now: Instant, bounds: Bounds) {
        self.cadence.frame(now, bounds);
    }

    /// Any frame proves the socket alive, but while a handover (`awaiting_proof`) or a resume
    /// waits for its pong only that pong proves the socket drained: its deadline stays.
    pub(super) fn settle(&mut self, awaiting_proof: bool) {
        if !awaiting_proof && self.resumed_at.is_none() {
            self.ping_due = None;
        }
    }

    /// The machine slept: the socket is unproven since its last frame. With `suspend_gap`
    /// only the pong to a ping sent now proves it again. True if a ping must go out now.
    pub(super) fn resumed(&mut self, now: Instant, suspend_gap: bool) -> bool {
        self.suspect_since.get_or_insert(self.last_rx);
        if suspend_gap {
            self.resumed_at = Some(now);
            true
        } else {
            self.ping_due.is_none()
        }
    }

    /// When the socket must be woken for: a pong overdue, or silence long enough to ping.
    pub(super) fn deadline(&self) -> (Instant, bool) {
        match self.ping_due {
            Some(at) => (at, true),
            None => (self.last_rx + self.cadence.idle(), false),
        }
    }

    /// A ping waits for its pong since before `now`: the socket fell silent.
    pub(super) fn silent_before(&self, now: Instant) -> bool {
        self.ping_due.is_some() && self.cadence.ping_sent_at().is_some_and(|t| t < now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_busy_socket_is_suspect_after_a_second_and_a_quiet_one_after_idle_timeout() {
        let cfg = Config::default();
        let b = Bounds::new(&cfg);
        let mut c = Cadence::new(b);
        assert_eq!(c.idle(), cfg.idle_timeout);
        let mut t = Instant::ZERO;
        for _ in 0..MIN_GAPS {
            t = t + ms(100);
            c.frame(t, b);
        }
        // Seven gaps are not enough to judge.
        assert_eq!(c.idle(), cfg.idle_timeout);
        t = t + ms(100);
        c.frame(t, b);
        assert_eq!(c.idle(), cfg.min_idle_timeout);
        // Heartbeats every 30 s push the wait back to the ceiling.
        for _ in 0..GAPS {
            t = t + Duration::from_secs(30);
            c.frame(t, b);
        }
        assert_eq!(c.idle(), cfg.idle_timeout);
    }

    #[test]
    fn one_long_pause_among_many_short_gaps_does_not_stretch_the_wait() {
        let cfg = Config::default();
        let b = Bounds::new(&cfg);
        let mut c = Cadence::new(b);
        let mut t = Instant::ZERO;
        for i in 0..GAPS {
            t = t + if i == 10 {
                Duration::from_secs(20)
            } else {
                ms(200)
            };
            c.frame(t, b);
        }
        assert_eq!(c.idle(), ms(600).max(cfg.min_idle_timeout));
    }

    #[test]
    fn the_pong_wait_follows_the_slowest_recent_round_trip() {
        let cfg = Config::default();
        let b = Bounds::new(&cfg);
        let mut c = Cadence::new(b);
        assert_eq!(c.pong_wait(), cfg.ping_timeout);
        let t = Instant::from_secs(10);
        c.ping_sent(t, true);
        c.pong(t + ms(50), true, b);
        assert_eq!(c.pong_wait(), cfg.min_ping_timeout);
        c.ping_sent(t + ms(1000), true);
        c.pong(t + ms(1800), true, b);
        assert_eq!(c.pong_wait(), ms(3200));
        // A round trip slower than the ceiling still leaves the ceiling.
        c.ping_sent(t + ms(5000), true);
        c.pong(t + ms(9000), true, b);
        assert_eq!(c.pong_wait(), cfg.ping_timeout);
    }

    #[test]
    fn time_going_backwards_records_no_negative_gap() {
        let cfg = Config::default();
        let b = Bounds::new(&cfg);
        let mut c = Cadence::new(b);
        c.frame(Instant::from_secs(10), b);
        c.frame(Instant::from_secs(5), b);
        c.ping_sent(Instant::from_secs(10), true);
        c.pong(Instant::from_secs(5), true, b);
        assert_eq!(c.pong_wait(), cfg.min_ping_timeout);
    }
}
