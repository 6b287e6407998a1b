//! The session's guards against a peer that would make it loop or flood: auth-class failures
//! in a row, refusals that retrying cannot fix, `Retry-After` waits, and the digest of
//! malformed frames. Each owns its count and the rule that ends it.

use std::time::Duration;

use crate::error::{FrameProblem, ProtocolError, RequestError, ServerError};
use crate::time::Instant;

/// Auth-class closes or upgrade refusals in a row that stop the session for a login.
const AUTH_CLOSE_LIMIT: u32 = 3;
/// Auth-class failures of the two links this close together are one cause (a close of both
/// sockets at once), counted once.
const AUTH_SAME_CAUSE: Duration = Duration::from_secs(1);
/// Refusals of the same kind of request in a row that stop the session.
const REFUSAL_LIMIT: u32 = 2;
/// The longest `Retry-After` the session honours; a longer one is cut to this, with a warning.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
/// Malformed frames after the first are reported once per this window, with a count.
const MALFORMED_WINDOW: Duration = Duration::from_secs(10);

/// The auth-class failures in a row: their code and count, and when and on which link the
/// last one counted came, so that one cause that hits both links' sockets counts once.
#[derive(Debug, Default)]
pub(super) struct AuthStreak(Option<Streak>);

#[derive(Debug, Clone, Copy)]
struct Streak {
    code: u16,
    count: u32,
    at: Instant,
    link: u64,
    /// The other link's failure of the same cause was already taken as this one: the next
    /// failure counts, whatever link it comes on.
    merged: bool,
}

impl AuthStreak {
    /// Counts a failure with close `code` on link `link`. True when the streak reached its
    /// limit: retrying cannot help, a login can.
    pub(super) fn failed(&mut self, code: u16, link: u64, now: Instant) -> bool {
        if let Some(s) = self.0.as_mut() {
            if s.code == code && !s.merged && s.link != link && now - s.at <= AUTH_SAME_CAUSE {
                s.merged = true;
                return false;
            }
        }
        let count = match self.0 {
            Some(s) if s.code == code => s.count + 1,
            _ => 1,
        };
        self.0 = Some(Streak {
            code,
            count,
            at: now,
            link,
            merged: false,
        });
        count >= AUTH_CLOSE_LIMIT
    }

    /// Something other than an auth failure happened: the streak ends.
    pub(super) fn end(&mut self) {
        self.0 = None;
    }
}

/// Refusals (answers that retrying cannot fix) of one kind of request in a row.
#[derive(Debug, Default)]
pub(super) struct Refusals(Option<(&'static str, u32)>);

impl Refusals {
    /// Counts a refusal of `what`. True when the session must stop: it was retried once.
    pub(super) fn refused(&mut self, what: &'static str) -> bool {
        let n = match self.0 {
            Some((w, n)) if w == what => n + 1,
            _ => 1,
        };
        self.0 = Some((what, n));
        n >= REFUSAL_LIMIT
    }

    /// A request was answered: the run of refusals ends.
    pub(super) fn answered(&mut self) {
        self.0 = None;
    }
}

/// A `Retry-After` beyond [`MAX_RETRY_AFTER`] is cut to it; the warning names the server's
/// value.
pub(super) fn cap_retry_after(what: &'static str, error: &mut RequestError) -> Option<ServerError> {
    let ra = error.retry_after_mut()?;
    if *ra <= MAX_RETRY_AFTER {
        return None;
    }
    let asked_secs = ra.as_secs();
    *ra = MAX_RETRY_AFTER;
    Some(ServerError::RetryAfterCapped {
        what,
        asked_secs,
        capped_secs: MAX_RETRY_AFTER.as_secs(),
    })
}

/// Malformed frames: the first is reported at once, later ones once per window with a count.
#[derive(Debug, Default)]
pub(super) struct MalformedDigest {
    total: u64,
    /// While frames are being counted: when the window ends, and how many arrived in it
    /// after the first.
    window: Option<(Instant, u64)>,
}

impl MalformedDigest {
    /// Counts a malformed frame; the warning to give now, if any.
    pub(super) fn count(&mut self, why: FrameProblem, now: Instant) -> Option<ProtocolError> {
        self.total += 1;
        match self.window.as_mut() {
            Some((_, n)) => {
                *n += 1;
                None
            }
            None => {
                self.window = Some((now + MALFORMED_WINDOW, 0));
                Some(ProtocolError::MalformedFrame {
                    why,
                    count: self.total,
                })
            }
        }
    }

    /// When the current window ends.
    pub(super) fn due(&self) -> Option<Instant> {
        self.window.map(|(at, _)| at)
    }

    /// The window ended: its count, if any frame came in it (and then a new window opens).
    pub(super) fn window_ended(&mut self, now: Instant) -> Option<ProtocolError> {
        let more = self.window.is_some_and(|(_, n)| n > 0);
        let digest = self.flush();
        if more {
            self.window = Some((now + MALFORMED_WINDOW, 0));
        }
        digest
    }

    /// The count of the window under way, which ends now.
    pub(super) fn flush(&mut self) -> Option<ProtocolError> {
        let (_, dropped) = self.window.take()?;
        (dropped > 0).then_some(ProtocolError::MalformedFrames {
            dropped,
            window_secs: MALFORMED_WINDOW.as_secs(),
            total: self.total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    #[test]
    fn one_cause_on_both_links_counts_once_and_the_third_failure_stops() {
        let mut s = AuthStreak::default();
        assert!(!s.failed(4001, 1, at(0)));
        assert!(
            !s.failed(4001, 2, at(500)),
            "the twin's close of the same cause"
        );
        assert!(!s.failed(4001, 2, at(5_000)));
        assert!(s.failed(4001, 1, at(9_000)));
        s.end();
        assert!(!s.failed(4001, 1, at(10_000)));
    }

    #[test]
    fn a_refusal_is_retried_once() {
        let mut r = Refusals::default();
        assert!(!r.refused("token request"));
        assert!(!r.refused("subscription"), "another kind starts again");
        assert!(r.refused("subscription"));
        r.answered();
        assert!(!r.refused("subscription"));
    }

    #[test]
    fn malformed_frames_are_one_warning_then_one_count_per_window() {
        let mut m = MalformedDigest::default();
        assert!(m.count(FrameProblem::NotJson, at(0)).is_some());
        for i in 1..=5 {
            assert!(m.count(FrameProblem::NotJson, at(i)).is_none());
        }
        assert_eq!(m.due(), Some(at(10_000)));
        assert!(matches!(
            m.window_ended(at(10_000)),
            Some(ProtocolError::MalformedFrames {
                dropped: 5,
                total: 6,
                ..
            })
        ));
        // A quiet window ends the counting; the next frame is reported at once again.
        assert!(m.window_ended(at(20_000)).is_none());
        assert_eq!(m.due(), None);
    }
}
