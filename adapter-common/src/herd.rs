//! Sessions that share a process share a fate: a network blip drops them all at once, and
//! they all reconnect at once. Each session spreads its first reconnect over
//! `first_retry_spread`; this module widens that spread with the number of sessions running
//! in the process, so a thousand of them do not crowd the service's first 100 ms.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Sessions running in this process.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// The spread each running session adds: 1,000 sessions spread over half a second, ten
/// 50 ms slots of about a hundred reconnects each.
pub const SPREAD_PER_SESSION: Duration = Duration::from_micros(500);

/// The widest spread, however many sessions run.
pub const MAX_SPREAD: Duration = Duration::from_secs(2);

/// One running session's membership; leaving is dropping it.
#[derive(Debug)]
pub struct Member(());

impl Member {
    /// Counts a session in.
    pub fn join() -> Member {
        RUNNING.fetch_add(1, Ordering::Relaxed);
        Member(())
    }

    /// The first-retry spread for a session whose own setting is `base`: at least `base`,
    /// wider by [`SPREAD_PER_SESSION`] for each session running, at most [`MAX_SPREAD`]
    /// (or `base`, if that is wider still).
    pub fn spread(&self, base: Duration) -> Duration {
        let n = u32::try_from(RUNNING.load(Ordering::Relaxed)).unwrap_or(u32::MAX);
        let herd = SPREAD_PER_SESSION.saturating_mul(n).min(MAX_SPREAD);
        base.max(herd)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_grows_with_the_sessions_running_and_is_capped() {
        let base = Duration::from_millis(100);
        let first = Member::join();
        // Other tests may run sessions meanwhile: only lower bounds hold.
        assert!(first.spread(base) >= base);
        let many: Vec<Member> = (0..999).map(|_| Member::join()).collect();
        assert!(first.spread(base) >= Duration::from_millis(500));
        let more: Vec<Member> = (0..9_000).map(|_| Member::join()).collect();
        assert_eq!(first.spread(base), MAX_SPREAD);
        assert_eq!(first.spread(Duration::from_secs(5)), Duration::from_secs(5));
        drop((many, more));
    }
}
