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

    /// The wall-clock time of a session instant.
    pub fn to_system_time(&self, at: Instant) -> SystemTime {
        self.wall_start + Duration::from_millis(at.as_millis())
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
        (wall_d > mono_d + SUSPEND_THRESHOLD).then(|| wall_d - mono_d)
    }

    /// A seed for backoff jitter from the wall clock.
    pub fn seed(&self) -> u64 {
        self.wall_start
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(7, |d| d.as_nanos() as u64)
    }
}
