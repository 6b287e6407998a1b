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
