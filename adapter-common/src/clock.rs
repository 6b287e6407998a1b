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
    /// Each suspend: the session instant it ended at and the time slept up to then (the last
    /// [`MAX_SUSPENDS`]); a session instant after it is that much later in wall time.
    suspends: std::collections::VecDeque<(Instant, Duration)>,
}

/// Suspends remembered for mapping instants to wall time.
const MAX_SUSPENDS: usize = 64;

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
            suspends: std::collections::VecDeque::new(),
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
        let slept = self
            .suspends
            .iter()
            .rev()
            .find(|(end, _)| *end <= at)
            .map_or(Duration::ZERO, |(_, total)| *total);
        self.wall_start + Duration::from_millis(at.as_millis()) + slept
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
        self.suspended(self.now(), slept);
        Some(slept)
    }

    /// Notes a suspend of `slept` that ended at session instant `at`.
    fn suspended(&mut self, at: Instant, slept: Duration) {
        let total = self.suspends.back().map_or(slept, |(_, t)| *t + slept);
        if self.suspends.len() == MAX_SUSPENDS {
            self.suspends.pop_front();
        }
        self.suspends.push_back((at, total));
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
        c.suspended(Instant::from_millis(5_000), Duration::from_secs(3600));
        c.suspended(Instant::from_millis(9_000), Duration::from_secs(60));
        // A gap from before the first sleep to after the second spans both.
        assert_eq!(wall(&c, 4_000), Duration::from_secs(4));
        assert_eq!(wall(&c, 6_000), Duration::from_secs(3606));
        assert_eq!(wall(&c, 10_000), Duration::from_secs(3670));
    }
}
