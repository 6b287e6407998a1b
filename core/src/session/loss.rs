//! What to do after a socket is lost, decided once, from the session's own state. Genesys
//! documents no close codes, so a code can only make the recovery stronger (a fresh token, a
//! new channel), never weaker.

use crate::config::CloseCodes;
use crate::time::Instant;

use super::link::{Chan, Plan};

/// What ended a socket, as far as the session can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cause {
    /// The server closed an open socket: a close frame with its code, or an error or EOF.
    Closed(Option<u16>),
    /// The session gave up on an open socket (no pong in time, the channel expired).
    GaveUp,
    /// The upgrade was answered with this HTTP status.
    Refused(u16),
    /// The upgrade got no HTTP answer (DNS, TCP, TLS, timeout, closed before opening).
    Unanswered,
}

/// How to recover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Recovery {
    pub(super) plan: Plan,
    /// The token that created the channel is suspect: the next channel needs a newer one.
    pub(super) fresher_token: bool,
    /// An auth-class close code or upgrade status, to be counted by the loop guard.
    pub(super) auth_failure: Option<u16>,
}

/// The one place a loss becomes a plan. `chan` is the lost link's channel, `closing` whether
/// the server announced maintenance on the socket.
pub(super) fn classify(
    cause: Cause,
    chan: Option<&Chan>,
    closing: bool,
    now: Instant,
    codes: &CloseCodes,
) -> Recovery {
    let new_channel = |fresher_token, auth_failure| Recovery {
        plan: Plan::NewChannel,
        fresher_token,
        auth_failure,
    };
    match cause {
        Cause::Refused(status @ (401 | 403)) => new_channel(true, Some(status)),
        Cause::Refused(_) => new_channel(false, None),
        Cause::Unanswered => Recovery {
            plan: if chan.is_some_and(|c| c.dies_at() > now) {
                Plan::Reconnect
            } else {
                Plan::NewChannel
            },
            fresher_token: false,
            auth_failure: None,
        },
        Cause::Closed(_) | Cause::GaveUp => {
            let code = match cause {
                Cause::Closed(code) => code,
                Cause::GaveUp | Cause::Refused(_) | Cause::Unanswered => None,
            };
            let auth_failure = code.filter(|c| codes.auth.contains(c));
            let gone = code.is_some_and(|c| codes.channel_gone.contains(&c));
            let Some(c) = chan else {
                return new_channel(auth_failure.is_some(), auth_failure);
            };
            let token_dead = c.token_expires_at <= now;
            let chan_dead = c.expires_at <= now || closing || gone;
            if auth_failure.is_some() || token_dead || chan_dead {
                new_channel(auth_failure.is_some() || token_dead, auth_failure)
            } else {
                Recovery {
                    plan: Plan::Reconnect,
                    fresher_token: false,
                    auth_failure: None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ChannelId, Secret};

    fn chan(expires: u64, token_expires: u64) -> Chan {
        Chan {
            id: ChannelId::new("ch"),
            uri: Secret::new("wss://s/ch"),
            expires_at: Instant::from_secs(expires),
            token_gen: 1,
            token_expires_at: Instant::from_secs(token_expires),
            renew_at: Instant::from_secs(expires.min(token_expires) / 2),
        }
    }

    fn plan(cause: Cause, c: Option<&Chan>, closing: bool, now: u64) -> (Plan, bool, Option<u16>) {
        let r = classify(
            cause,
            c,
            closing,
            Instant::from_secs(now),
            &CloseCodes::default(),
        );
        (r.plan, r.fresher_token, r.auth_failure)
    }

    #[test]
    fn a_close_reconnects_to_a_healthy_channel_and_renews_a_dead_one() {
        let c = chan(100, 200);
        assert_eq!(
            plan(Cause::Closed(Some(1000)), Some(&c), false, 10),
            (Plan::Reconnect, false, None)
        );
        assert_eq!(
            plan(Cause::Closed(None), Some(&c), false, 10),
            (Plan::Reconnect, false, None)
        );
        assert_eq!(
            plan(Cause::GaveUp, Some(&c), false, 10),
            (Plan::Reconnect, false, None)
        );
        assert_eq!(
            plan(Cause::Closed(None), Some(&c), false, 100),
            (Plan::NewChannel, false, None)
        );
        assert_eq!(
            plan(Cause::Closed(None), Some(&c), true, 10),
            (Plan::NewChannel, false, None)
        );
        assert_eq!(
            plan(Cause::Closed(None), None, false, 10),
            (Plan::NewChannel, false, None)
        );
    }

    #[test]
    fn a_dead_token_or_an_auth_code_asks_for_a_fresher_token() {
        let c = chan(300, 100);
        assert_eq!(
            plan(Cause::GaveUp, Some(&c), false, 100),
            (Plan::NewChannel, true, None)
        );
        let healthy = chan(300, 300);
        assert_eq!(
            plan(Cause::Closed(Some(4001)), Some(&healthy), false, 10),
            (Plan::NewChannel, true, Some(4001))
        );
        assert_eq!(
            plan(Cause::Closed(Some(1008)), None, false, 10),
            (Plan::NewChannel, true, Some(1008))
        );
    }

    #[test]
    fn a_refused_upgrade_needs_a_new_channel_and_no_answer_retries_the_same() {
        let c = chan(300, 300);
        assert_eq!(
            plan(Cause::Refused(401), Some(&c), false, 10),
            (Plan::NewChannel, true, Some(401))
        );
        assert_eq!(
            plan(Cause::Refused(404), Some(&c), false, 10),
            (Plan::NewChannel, false, None)
        );
        assert_eq!(
            plan(Cause::Unanswered, Some(&c), false, 10),
            (Plan::Reconnect, false, None)
        );
        assert_eq!(
            plan(Cause::Unanswered, Some(&c), false, 300),
            (Plan::NewChannel, false, None)
        );
    }
}
