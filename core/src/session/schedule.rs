//! When the next attempt goes out: how far ahead of a channel's death its renewal starts, and
//! what the session has learned about the service's pace that feeds into it.
//!
//! A renewal must survive trouble: two refused attempts — each followed by the wait the
//! service asked for last (`Retry-After`), or by the backoff if it asked for none — and then a
//! successful one, all before the old channel dies. So the lead is at least two such waits
//! plus the round trips of a token request, a channel creation, a socket upgrade and a
//! subscription. Long lifetimes keep the configured lead (10 % of the lifetime, at most 5
//! minutes), which is far longer; short ones (a 15 s token) get the lead trouble needs, up to
//! half their life.

use std::time::Duration;

use crate::config::Config;
use crate::time::Instant;

use super::link::Link;
use super::Shard;

/// A `Retry-After` older than this no longer shapes the renewal lead: the trouble it spoke of
/// has passed, and renewals go back to their usual lead.
const RETRY_AFTER_MEMORY: Duration = Duration::from_secs(3600);

/// What the session has seen of the service's pace.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Pace {
    /// The `Retry-After` the token or channel endpoint gave last, and when.
    last_retry_after: Option<(Duration, Instant)>,
    /// A slowly forgetting maximum of the recent request round trips.
    pub(super) round_trip: Duration,
}

/// Round trips a renewal needs: token, channel, upgrade, subscription.
const RENEWAL_ROUND_TRIPS: u32 = 4;

impl Pace {
    /// The token or channel endpoint asked for `ra` at `now`.
    pub(super) fn retry_after(&mut self, ra: Duration, now: Instant) {
        self.last_retry_after = Some((ra, now));
    }

    /// A request answered `rtt` after it went out.
    pub(super) fn round_trip(&mut self, rtt: Duration) {
        // Rises at once, falls by a quarter of the difference per sample.
        self.round_trip = if rtt >= self.round_trip {
            rtt
        } else {
            self.round_trip - (self.round_trip - rtt) / 4
        };
    }

    /// How long before `lifetime` runs out its renewal starts (before jitter), planned at
    /// `now`. `first_two_steps` is what two backoff steps may cost at most.
    pub(super) fn renewal_lead(
        &self,
        cfg: &Config,
        lifetime: Duration,
        first_two_steps: Duration,
        now: Instant,
    ) -> Duration {
        let recent = self
            .last_retry_after
            .filter(|(_, at)| now - *at <= RETRY_AFTER_MEMORY)
            .map(|(ra, _)| ra);
        let waits = match recent {
            Some(ra) => (ra * 2).max(first_two_steps),
            None => first_two_steps,
        };
        let trouble = waits + self.round_trip * RENEWAL_ROUND_TRIPS;
        cfg.renew_lead(lifetime)
            .max(trouble.min(cfg.renew_lead_max))
            .min(lifetime / 2)
    }
}

impl Shard {
    /// Full jitter above a floor: `[base, min(cap, base·2^(n+1))]`, never below `floor`.
    /// The wait before the next attempt after `failures` failures. `floor`: a wait the
    /// server asked for. While coverage is lost that wait is the moment to retry (but never
    /// sooner than `backoff_base`); otherwise it is a floor under a backoff step.
    pub(super) fn backoff(&mut self, failures: u32, floor: Option<Duration>) -> Duration {
        if let Some(f) = floor.filter(|_| self.coverage_lost()) {
            // A `Retry-After: 0` still waits the first step: no retry in the same instant.
            return f.max(self.cfg.backoff_base);
        }
        let ceil = self.backoff_ceiling(failures);
        let d = self.rng.between(self.cfg.backoff_base.min(ceil), ceil);
        d.max(floor.unwrap_or_default())
    }

    /// The longest backoff step after `failures` failures: short while coverage is lost.
    pub(super) fn backoff_ceiling(&self, failures: u32) -> Duration {
        let calm = self.calm_ceiling(failures);
        if self.coverage_lost() {
            calm.min(self.cfg.urgent_backoff_cap)
        } else {
            calm
        }
    }

    /// The longest backoff step while nothing is lost.
    pub(super) fn calm_ceiling(&self, failures: u32) -> Duration {
        self.cfg
            .backoff_base
            .saturating_mul(1u32 << failures.min(20).saturating_add(1))
            .min(self.cfg.backoff_cap)
    }

    /// For an answer that is the same useless thing every time (a dead token, an expired
    /// channel): the delay must grow with each one, so the jitter only spreads its upper half.
    /// Urgency does not shorten it: asking sooner would only get the same answer sooner.
    pub(super) fn growing_backoff(&mut self, failures: u32) -> Duration {
        let ceil = self.calm_ceiling(failures);
        self.rng.between(ceil / 2, ceil)
    }

    /// True while some desired topic has no live socket: retries are urgent.
    pub(super) fn coverage_lost(&self) -> bool {
        if self.topics.is_empty() {
            return false;
        }
        let live = self.lanes().any(Link::is_live);
        !live || !self.ledger.is_clear()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_day_long_channel_keeps_the_five_minute_lead() {
        let cfg = Config::default();
        let mut p = Pace {
            round_trip: Duration::from_millis(300),
            ..Pace::default()
        };
        p.retry_after(s(30), Instant::ZERO);
        assert_eq!(p.renewal_lead(&cfg, s(86_400), s(3), Instant::ZERO), s(300));
    }

    #[test]
    fn a_short_token_gets_room_for_two_refusals() {
        let cfg = Config::default();
        let mut p = Pace::default();
        p.round_trip(Duration::from_millis(100));
        // No Retry-After seen: two backoff steps (1 s + 2 s) and four round trips.
        assert_eq!(
            p.renewal_lead(&cfg, s(15), s(3), Instant::ZERO),
            Duration::from_millis(3_400)
        );
        // The service asked for 3 s last time: two such waits.
        p.retry_after(s(3), Instant::ZERO);
        assert_eq!(
            p.renewal_lead(&cfg, s(15), s(3), Instant::ZERO),
            Duration::from_millis(6_400)
        );
        // Never more than half the life.
        p.retry_after(s(60), Instant::ZERO);
        assert_eq!(
            p.renewal_lead(&cfg, s(15), s(3), Instant::ZERO),
            Duration::from_millis(7_500)
        );
    }

    #[test]
    fn a_retry_after_shapes_renewals_for_an_hour_then_is_forgotten() {
        let cfg = Config::default();
        let mut p = Pace::default();
        p.round_trip(Duration::from_millis(100));
        p.retry_after(s(3), Instant::ZERO + s(10));
        let at = |t: u64| p.renewal_lead(&cfg, s(15), s(3), Instant::ZERO + s(t));
        assert_eq!(at(10 + 3600), Duration::from_millis(6_400));
        assert_eq!(at(10 + 3601), Duration::from_millis(3_400));
    }

    #[test]
    fn the_round_trip_rises_at_once_and_falls_slowly() {
        let mut p = Pace::default();
        p.round_trip(Duration::from_millis(400));
        p.round_trip(Duration::from_millis(0));
        assert_eq!(p.round_trip, Duration::from_millis(300));
    }
}
