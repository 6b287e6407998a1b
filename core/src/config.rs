//! Session configuration and its defaults.

use std::time::Duration;

use crate::error::UsageError;
use crate::types::MAX_TOPICS;

/// How the session reads WebSocket close codes.
///
/// Genesys documents no close codes for the notification socket, so this table can only make a
/// recovery
/// *stronger* than what the session's own state says (for example: fetch a fresh token even
/// though ours has not expired). It never makes one weaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseCodes {
    /// Codes read as "the token was refused": recover with a fresh token and a new channel.
    /// Default: 4001, 4003 and 1008, the codes client code written for this service commonly
    /// reads that way (none of them is documented).
    pub auth: Vec<u16>,
    /// Codes read as "this channel is gone": recover with a new channel. Default: none.
    pub channel_gone: Vec<u16>,
}

impl Default for CloseCodes {
    fn default() -> Self {
        CloseCodes {
            auth: vec![4001, 4003, 1008],
            channel_gone: Vec::new(),
        }
    }
}

/// Tuning for a [`Session`](crate::Session). `Config::default()` is right for production;
/// [`Config::validate`] refuses values that make no sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Longest silence on a socket after which the session sends a ping. Default 15 s (the
    /// server heartbeats only about every 30 s). On a socket that carries more than
    /// heartbeats the session pings sooner: after three times the 90th percentile of the
    /// gaps between the frames it delivered, but never sooner than `min_idle_timeout`.
    pub idle_timeout: Duration,
    /// Shortest silence after which a busy socket is pinged. Default 1 s.
    pub min_idle_timeout: Duration,
    /// Longest a ping may go unanswered before the socket is declared dead. Default 5 s.
    /// Once pongs have come back on a socket, the wait is four times the slowest of its
    /// recent round trips, but never shorter than `min_ping_timeout`.
    pub ping_timeout: Duration,
    /// Shortest wait for a pong. Default 1 s.
    pub min_ping_timeout: Duration,
    /// Renewal lead as a percentage of the channel's or token's lifetime. Default 10.
    pub renew_lead_percent: u32,
    /// Smallest renewal lead. Default 1 s.
    pub renew_lead_min: Duration,
    /// Largest renewal lead. Default 5 min.
    pub renew_lead_max: Duration,
    /// First backoff step. Default 500 ms.
    pub backoff_base: Duration,
    /// Longest backoff while nothing is lost yet (a renewal ahead of expiry). Default 30 s.
    pub backoff_cap: Duration,
    /// Longest backoff while coverage is lost (some topic has no live socket): retries stay
    /// close together, and a server's `Retry-After` is the moment to retry rather than a
    /// floor under another backoff step. Default 2 s.
    pub urgent_backoff_cap: Duration,
    /// After a connection that was stable (or on the first loss), the first reconnect goes
    /// out after a random delay below this, so that many clients dropped at once do not
    /// reconnect in the same instant; backoff grows from the second failure on. Default
    /// 100 ms. A process that runs many sessions should widen it (about 0.5 ms per session
    /// keeps a thousand of them from crowding any 50 ms).
    pub first_retry_spread: Duration,
    /// Time `Live` after which the backoff counter resets. Default 30 s. A connection that
    /// received a frame after going live resets it sooner, after 2 s (or this, if shorter):
    /// it proved the path; only one that dies right after opening keeps backing off.
    pub stable_after: Duration,
    /// Failed token refreshes in a row after which the session asks for a login. Default
    /// `None` (retry for ever, keeping the old token while it is valid).
    pub max_refresh_attempts: Option<u32>,
    /// A token younger than this that the API rejects is not refreshed again: the session asks
    /// for a login instead of looping. Default 30 s.
    pub fresh_token_window: Duration,
    /// Channel creations allowed per minute and per link, so a crash loop cannot evict the
    /// user's other channels (the service keeps 20 per user and client). Default 6. With
    /// `redundancy: 2` the session may make twice as many: each link renews its channel on
    /// its own schedule, and a budget shared by both would hold back a planned renewal of
    /// short-lived tokens until the channel it replaces had died.
    pub max_channel_creations_per_minute: u32,
    /// Token requests allowed per minute, whatever the token endpoint answers. Default 12.
    pub max_token_requests_per_minute: u32,
    /// Subscription requests (PUT) allowed per minute; topic changes beyond it are coalesced
    /// into the next PUT. Default 30.
    pub max_subscription_requests_per_minute: u32,
    /// Socket upgrades allowed per minute. Default 30.
    pub max_connects_per_minute: u32,
    /// After `v2.system.socket_closing`, how long the old socket may stay while the new one
    /// comes up. Default 55 s (the server allows about one minute).
    pub maintenance_grace: Duration,
    /// Answer time allowed for a token request, a channel request, a subscription request or a
    /// socket upgrade before the session treats it as a network failure. Default 30 s.
    pub request_timeout: Duration,
    /// How long after two sockets overlapped duplicate notifications are still suppressed.
    /// Default 10 s.
    pub dedup_linger: Duration,
    /// After the old socket answered the handover ping, how long both sockets stay open
    /// before the old one closes (duplicates are suppressed meanwhile). The session takes
    /// that pong as proof that the old socket delivered everything the server queued on it
    /// before the new channel took over; the linger also covers a service that would write a
    /// pong ahead of notifications already queued (not known either way). Zero closes the old
    /// socket at the pong. Default 1 s; must stay below `maintenance_grace`.
    pub handover_linger: Duration,
    /// How close codes are read.
    pub close_codes: CloseCodes,
    /// Channels kept live at once, each on its own socket with the whole topic set: 1 (the
    /// default) or 2. With 2, a fault that hits one socket loses nothing (the other still
    /// delivers), at the cost of a second channel of the 20 a user and client may hold, twice
    /// the socket traffic and a token request at most renewals (the two channels are kept on
    /// tokens of different ages). A notification that arrives on both is delivered once.
    pub redundancy: u8,
    /// With `redundancy: 2`, how long a notification is remembered to suppress its copy from
    /// the other socket. A copy that arrives later than this is delivered again. At most
    /// [`MAX_DEDUP_KEYS`](crate::MAX_DEDUP_KEYS) notifications are remembered. Default 30 s.
    pub dedup_window: Duration,
    /// A suspend (a machine asleep, a browser page frozen) is reported as a gap from each
    /// socket's last frame before it until the socket proves itself drained (by the pong to a
    /// ping sent at the resume), even when the socket survived: nobody read it meanwhile, and
    /// whether the service keeps or drops what it cannot send is not known. `false`: a
    /// socket that survived is taken to have lost nothing (any frame after the resume proves
    /// it). Default true.
    pub suspend_gap: bool,
    /// Channels this user and OAuth client may hold at once: the service allows 20 and, at
    /// the 21st, removes the one used least recently (channels without a socket first). The
    /// session never holds more: its topics are spread over at most
    /// `(max_channels - 1) / redundancy` channels (one is kept for a make-before-break
    /// replacement), and a channel request that would pass the budget waits until a channel
    /// is let go. Lower it when other sessions of the same user and client hold channels.
    /// Default 20.
    pub max_channels: u32,
    /// Topics one channel carries at most. The service refuses a subscription of more than
    /// 1000 with HTTP 400. Default 1000.
    pub max_topics_per_channel: u32,
    /// Subscribe to topics that differ only in their last part through the service's
    /// combined form (`v2.users.{id}?presence&routingStatus`, at most 200 characters), which
    /// the service delivers under each part's own name. Notifications, gaps and rejections are
    /// still reported under the topics the application asked for. Default false.
    pub combine_topics: bool,
    /// With `combine_topics`, count a combined topic as one topic toward
    /// `max_topics_per_channel` instead of one per part. The service does not document which
    /// it does; the default (false) counts every part, which is right either way.
    pub combined_topic_counts_as_one: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            idle_timeout: Duration::from_secs(15),
            min_idle_timeout: Duration::from_secs(1),
            ping_timeout: Duration::from_secs(5),
            min_ping_timeout: Duration::from_secs(1),
            renew_lead_percent: 10,
            renew_lead_min: Duration::from_secs(1),
            renew_lead_max: Duration::from_secs(300),
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(30),
            urgent_backoff_cap: Duration::from_secs(2),
            first_retry_spread: Duration::from_millis(100),
            stable_after: Duration::from_secs(30),
            max_refresh_attempts: None,
            fresh_token_window: Duration::from_secs(30),
            max_channel_creations_per_minute: 6,
            max_token_requests_per_minute: 12,
            max_subscription_requests_per_minute: 30,
            max_connects_per_minute: 30,
            maintenance_grace: Duration::from_secs(55),
            request_timeout: Duration::from_secs(30),
            dedup_linger: Duration::from_secs(10),
            handover_linger: Duration::from_secs(1),
            close_codes: CloseCodes::default(),
            redundancy: 1,
            dedup_window: Duration::from_secs(30),
            suspend_gap: true,
            max_channels: 20,
            max_topics_per_channel: 1000,
            combine_topics: false,
            combined_topic_counts_as_one: false,
        }
    }
}

impl Config {
    /// The channel creations the session may make in any minute: the per-link budget times
    /// the links.
    pub fn channel_creations_per_minute(&self) -> u32 {
        self.max_channel_creations_per_minute
            .saturating_mul(u32::from(self.redundancy.max(1)))
    }

    /// Checks that the values make sense together.
    ///
    /// ```
    /// use std::time::Duration;
    /// use genesys_notify_core::Config;
    /// let mut c = Config::default();
    /// c.backoff_cap = Duration::from_millis(100);
    /// assert!(c.validate().unwrap_err().to_string().contains("backoff_cap"));
    /// ```
    pub fn validate(&self) -> Result<(), UsageError> {
        let bad = |field, why| Err(UsageError::InvalidConfig { field, why });
        let zero = Duration::ZERO;
        if self.idle_timeout == zero {
            return bad("idle_timeout", "must be above zero");
        }
        if self.ping_timeout == zero {
            return bad("ping_timeout", "must be above zero");
        }
        if self.min_idle_timeout == zero {
            return bad("min_idle_timeout", "must be above zero");
        }
        if self.min_ping_timeout == zero {
            return bad("min_ping_timeout", "must be above zero");
        }
        if self.urgent_backoff_cap == zero {
            return bad("urgent_backoff_cap", "must be above zero");
        }
        if self.backoff_base == zero {
            return bad("backoff_base", "must be above zero");
        }
        if self.backoff_cap < self.backoff_base {
            return bad("backoff_cap", "must not be below backoff_base");
        }
        if self.request_timeout == zero {
            return bad("request_timeout", "must be above zero");
        }
        if self.maintenance_grace == zero {
            return bad("maintenance_grace", "must be above zero");
        }
        if self.handover_linger >= self.maintenance_grace {
            return bad("handover_linger", "must be below maintenance_grace");
        }
        if !(1..=50).contains(&self.renew_lead_percent) {
            return bad("renew_lead_percent", "must be between 1 and 50");
        }
        if self.renew_lead_max < self.renew_lead_min {
            return bad("renew_lead_max", "must not be below renew_lead_min");
        }
        if self.max_channel_creations_per_minute == 0 {
            return bad("max_channel_creations_per_minute", "must be at least 1");
        }
        if self.max_token_requests_per_minute == 0 {
            return bad("max_token_requests_per_minute", "must be at least 1");
        }
        if self.max_subscription_requests_per_minute == 0 {
            return bad("max_subscription_requests_per_minute", "must be at least 1");
        }
        if self.max_connects_per_minute == 0 {
            return bad("max_connects_per_minute", "must be at least 1");
        }
        if !(1..=2).contains(&self.redundancy) {
            return bad("redundancy", "must be 1 or 2");
        }
        if self.redundancy == 2 && self.dedup_window == zero {
            return bad("dedup_window", "must be above zero with redundancy 2");
        }
        if !(1..=MAX_TOPICS as u32).contains(&self.max_topics_per_channel) {
            return bad("max_topics_per_channel", "must be between 1 and 1000");
        }
        if self.max_channels <= u32::from(self.redundancy) || self.max_channels > 1000 {
            return bad(
                "max_channels",
                "must be above redundancy (one channel is kept for renewals) and at most 1000",
            );
        }
        if self.combine_topics && !cfg!(feature = "combined-topics") {
            return bad(
                "combine_topics",
                "this build leaves combined topics out (the browser build does, for size)",
            );
        }
        if self.max_refresh_attempts == Some(0) {
            return bad(
                "max_refresh_attempts",
                "must be at least 1, or None for unlimited",
            );
        }
        Ok(())
    }

    /// Channels the topics may be spread over: one kept for a make-before-break replacement,
    /// each of the others carried once per `redundancy`.
    pub fn max_shards(&self) -> usize {
        let r = u32::from(self.redundancy.max(1));
        (self.max_channels.saturating_sub(1) / r).max(1) as usize
    }

    /// The most topics the channel budget carries (counting every part of a combined topic).
    pub fn max_topics(&self) -> usize {
        self.max_shards() * self.max_topics_per_channel as usize
    }

    /// The renewal lead for something that lives `lifetime`, before jitter.
    pub(crate) fn renew_lead(&self, lifetime: Duration) -> Duration {
        let scaled = lifetime * self.renew_lead_percent / 100;
        scaled.clamp(self.renew_lead_min, self.renew_lead_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_nonsense_is_refused() {
        Config::default().validate().unwrap();
        let c = Config {
            ping_timeout: Duration::ZERO,
            ..Config::default()
        };
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "invalid config: ping_timeout must be above zero"
        );
        let c = Config {
            max_refresh_attempts: Some(0),
            ..Config::default()
        };
        assert!(c.validate().is_err());
        let c = Config {
            handover_linger: Duration::from_secs(55),
            ..Config::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("handover_linger"));
    }

    #[test]
    fn lead_scales_and_is_clamped() {
        let c = Config::default();
        assert_eq!(
            c.renew_lead(Duration::from_secs(300)),
            Duration::from_secs(30)
        );
        assert_eq!(
            c.renew_lead(Duration::from_secs(86_400)),
            Duration::from_secs(300)
        );
        assert_eq!(c.renew_lead(Duration::from_secs(5)), Duration::from_secs(1));
    }
}
