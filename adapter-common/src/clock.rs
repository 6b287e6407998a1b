//! The adapter's clocks: a monotonic clock turned into the core's [`Instant`], the wall clock
//! for mapping instants to timestamps, and suspend detection from the two drifting apart.

use std::time::{Duration, SystemTime};

use genesys_notify_core::Instant;

/// Wall-clock time that passes beyond monotonic time before a suspend is assumed.
const SUSPEND_THRESHOLD: Duration = Duration::from_secs(5);

/// One per session: its origin is the session's `Instant::ZERO`.
#[derive(Debug, Clone)]
pub struct Clock {
    mono_start: std::time::Instant,
    wall_start: SystemTime,
    last_mono: std::time::Instant,
    last_wall: SystemTime,
    suspends: Suspends,
}

/// Suspends remembered for mapping instants to wall time.
const MAX_SUSPENDS: usize = 64;

/// The suspends a session slept through, which its clock did not count: a session instant
/// after one is that much later in wall time. Pure, so every adapter shares it (the native
/// [`Clock`] and the browser's, which learns of a suspend from a frozen page).
#[derive(Debug, Clone, Default)]
pub struct Suspends {
    /// Each suspend: the session instant it ended at and the time slept up to then (the last
    /// [`MAX_SUSPENDS`]; an instant before all of them maps as if nothing was slept before it,
    /// which is off by what the forgotten ones slept).
    ended: std::collections::VecDeque<(Instant, Duration)>,
}

impl Suspends {
    /// Notes a suspend of `slept` that ended at session instant `at`.
    pub fn record(&mut self, at: Instant, slept: Duration) {
        let total = self.ended.back().map_or(slept, |(_, t)| *t + slept);
        if self.ended.len() == MAX_SUSPENDS {
            self.ended.pop_front();
        }
        self.ended.push_back((at, total));
    }

    /// The time slept before session instant `at`: add it to map `at` to wall time.
    pub fn slept_before(&self, at: Instant) -> Duration {
        self.ended
            .iter()
            .rev()
            .find(|(end, _)| *end <= at)
            .map_or(Duration::ZERO, |(_, total)| *total)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    /// Starts the clock now.
    #[allow(clippy::disallowed_methods)]
    pub fn new() -> Clock {
        let mono = std::time::Instant::now();
        let wall = SystemTime::now();
        Clock {
            mono_start: mono,
            wall_start: wall,
            last_mono: mono,
            last_wall: wall,
            suspends: Suspends::default(),
        }
    }

    /// The session's current time.
    pub fn now(&self) -> Instant {
        Instant::from_millis(
            u64::try_from(self.mono_start.elapsed().as_millis()).unwrap_or(u64::MAX),
        )
    }

    /// The monotonic instant of a session instant (for sleeping until a deadline).
    pub fn to_std(&self, at: Instant) -> std::time::Instant {
        self.mono_start + Duration::from_millis(at.as_millis())
    }

    /// The wall-clock time of a session instant: the suspends that ended before it are
    /// added back (the monotonic clock, and so the session, did not count them).
    pub fn to_system_time(&self, at: Instant) -> SystemTime {
        self.wall_start + Duration::from_millis(at.as_millis()) + self.suspends.slept_before(at)
    }

    /// How long the machine slept since the last call, if the wall clock ran ahead of the
    /// monotonic clock (which stops during suspend) by more than a few seconds.
    #[allow(clippy::disallowed_methods)]
    pub fn check_suspend(&mut self) -> Option<Duration> {
        let mono = std::time::Instant::now();
        let wall = SystemTime::now();
        let mono_d = mono - self.last_mono;
        let wall_d = wall.duration_since(self.last_wall).unwrap_or_default();
        self.last_mono = mono;
        self.last_wall = wall;
        let slept = (wall_d > mono_d + SUSPEND_THRESHOLD).then(|| wall_d - mono_d)?;
        let now = self.now();
        self.suspends.record(now, slept);
        Some(slept)
    }

    /// A seed for backoff jitter from the wall clock.
    pub fn seed(&self) -> u64 {
        self.wall_start
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(7, |d| d.as_nanos() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_after_a_suspend_map_to_wall_time_with_the_sleep_added_back() {
        let mut c = Clock::new();
        let wall = |c: &Clock, ms| {
            c.to_system_time(Instant::from_millis(ms))
                .duration_since(c.wall_start)
                .unwrap()
        };
        assert_eq!(wall(&c, 1_000), Duration::from_secs(1));
        c.suspends
            .record(Instant::from_millis(5_000), Duration::from_secs(3600));
        c.suspends
            .record(Instant::from_millis(9_000), Duration::from_secs(60));
        // A gap from before the first sleep to after the second spans both.
        assert_eq!(wall(&c, 4_000), Duration::from_secs(4));
        assert_eq!(wall(&c, 6_000), Duration::from_secs(3606));
        assert_eq!(wall(&c, 10_000), Duration::from_secs(3670));
    }

    #[test]
    fn only_the_last_suspends_are_kept() {
        let mut s = Suspends::default();
        for i in 1..=100 {
            s.record(Instant::from_millis(i * 1_000), Duration::from_secs(1));
        }
        assert_eq!(s.ended.len(), MAX_SUSPENDS);
        assert_eq!(
            s.slept_before(Instant::from_millis(100_000)),
            Duration::from_secs(100)
        );
        assert_eq!(s.slept_before(Instant::from_millis(1_000)), Duration::ZERO);
    }
}
