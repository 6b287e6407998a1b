//! An open socket's traffic: frames, pings, a suspend of the machine, and the server's close.

use std::time::Duration;

use crate::error::{ProtocolError, RequestError, ServerError};
use crate::frame::{self, Frame, PING};
use crate::io::{Action, Event, GapReason};
use crate::sorted::SortedSet;
use crate::time::Instant;
use crate::types::{ConnId, Topic};

use super::dedup;
use super::link::{Link, Plan, Proof, Which, SLOTS};
use super::liveness::Bounds;
use super::loss::{classify, Cause, Ending};
use super::{Shard, MAX_CLOSE_REASON, MAX_DEDUP_KEYS};

impl Shard {
    pub(super) fn on_frame(&mut self, conn: ConnId, text: String) {
        let Some(w) = self.link_open(conn) else {
            return;
        };
        let now = self.now;
        let bounds = Bounds::new(&self.cfg);
        let window = self.cfg.dedup_window;
        let Some(l) = self.link_mut(w) else { return };
        let tag = l.tag;
        let Some(o) = l.open_mut() else { return };
        o.alive.heard(now);
        let frame = frame::classify(&text);
        // After a resume with `suspend_gap`, only the pong to a ping sent after it proves
        // the socket drained; the stretch before is reported then.
        let mut suspended: Option<(Instant, SortedSet<Topic>)> = None;
        if matches!(frame, Frame::Pong) {
            let unproven = o.alive.pong(now, bounds);
            if let Proof::AwaitingPongs(n) = o.proof {
                o.proof = match n.saturating_sub(1) {
                    0 => Proof::Proven { at: now },
                    left => Proof::AwaitingPongs(left),
                };
            }
            if let Some(since) = unproven.filter(|_| o.is_live()) {
                suspended = Some((since, o.server_topics.clone()));
            }
        } else {
            o.alive.frame(now, bounds);
        }
        o.alive.settle(matches!(o.proof, Proof::AwaitingPongs(_)));
        if let Some((since, topics)) = suspended {
            self.report_suspended(w, since, &topics);
        }
        match frame {
            Frame::Heartbeat | Frame::Pong | Frame::Metadata | Frame::SubscribeReply { .. } => {}
            Frame::SocketClosing => self.on_socket_closing(w),
            Frame::System { kind, reason, .. } => match kind.as_deref() {
                Some("token_revoked") => self.on_token_revoked(w),
                Some("no_longer_subscribed")
                    if reason.as_deref() == Some("another_channel_subscribed") =>
                {
                    self.on_taken_by_another_channel(w)
                }
                Some("no_longer_subscribed") => self.lose(
                    w,
                    GapReason::SubscriptionDropped,
                    Plan::NewChannel,
                    Ending::GivenUp,
                ),
                _ => {}
            },
            Frame::Notification {
                topic,
                body,
                metadata,
            } => {
                let salt = self.dedup_salt;
                let dedup = self.run_mut().map(|r| &mut r.dedup).filter(|d| d.is_on());
                if let Some(dedup) = dedup {
                    let cid = frame::correlation_id(metadata);
                    let key = dedup::key(salt, &topic, cid.as_deref(), body);
                    let verdict = dedup.admit(now, window, key, tag);
                    if verdict.bound_reached {
                        self.warn(ProtocolError::DedupBound {
                            keys: MAX_DEDUP_KEYS,
                            window_secs: window.as_secs(),
                        });
                    }
                    if !verdict.deliver {
                        return self.after_frame(w);
                    }
                }
                let topic = topic.into_owned();
                self.events
                    .push_back(Event::Notification { topic, raw: text });
            }
            Frame::Malformed(why) => {
                if let Some(w) = self.malformed.count(why, now) {
                    self.warn(w);
                }
            }
        }
        self.after_frame(w);
    }

    /// Sends a ping on an open socket; its pong (or any frame, outside a handover) is due
    /// within the ping timeout.
    pub(super) fn ping(&mut self, w: Which) {
        let now = self.now;
        let Some(o) = self.link_mut(w).and_then(Link::open_mut) else {
            return;
        };
        o.alive.ping(now);
        let conn = o.conn;
        self.actions.push_back(Action::Send {
            conn,
            text: PING.to_owned(),
        });
    }

    pub(super) fn on_resumed(&mut self, slept: Duration) {
        if slept.is_zero() {
            return;
        }
        let now = self.now;
        let suspend_gap = self.cfg.suspend_gap;
        if let Some(t) = self.tokens.current.as_mut() {
            t.expires_at = t.expires_at - slept;
        }
        for w in SLOTS {
            let Some(l) = self.link_mut(w) else { continue };
            if let Some(c) = l.chan.as_mut() {
                c.expires_at = c.expires_at - slept;
                c.token_expires_at = c.token_expires_at - slept;
                c.renew_at = c.renew_at - slept;
            }
            if l.open_mut()
                .is_some_and(|o| o.alive.resumed(now, suspend_gap))
            {
                self.ping(w);
            }
        }
    }

    /// A socket proved drained after a resume: the stretch since its last frame before the
    /// suspend is reported, for the topics no socket proven earlier already reported.
    pub(super) fn report_suspended(&mut self, w: Which, since: Instant, topics: &SortedSet<Topic>) {
        let others: Vec<&Link> = SLOTS
            .iter()
            .filter(|&&x| x != w)
            .filter_map(|&x| self.link(x))
            .collect();
        let proven_elsewhere = |t: &Topic| {
            others.iter().any(|l| {
                l.open().is_some_and(|o| {
                    o.is_live() && o.alive.suspect_since.is_none() && o.server_topics.contains(t)
                })
            })
        };
        let report: Vec<Topic> = topics
            .iter()
            .filter(|t| self.topics.contains(*t) && !proven_elsewhere(t))
            .cloned()
            .collect();
        for t in report {
            self.ledger.lose(&t, since, GapReason::Suspended);
        }
    }

    pub(super) fn on_closed(&mut self, conn: ConnId, code: Option<u16>, reason: String) {
        let mut reason = reason;
        if let Some((cut, _)) = reason.char_indices().nth(MAX_CLOSE_REASON) {
            reason.truncate(cut);
        }
        if let Some(w) = self.link_connecting(conn) {
            let error = match code {
                Some(c) => RequestError::network(format!("closed with {c} before opening")),
                None => RequestError::network("closed before opening"),
            };
            self.on_connect_failed(w, &error);
            return;
        }
        let Some(w) = self.link_open(conn) else {
            return;
        };
        self.warn(ServerError::SocketClosed { code, reason });
        let maintenance = self
            .link(w)
            .and_then(Link::open)
            .is_some_and(|o| o.closing_by.is_some());
        let r = classify(
            Cause::Closed(code),
            self.link(w),
            self.now,
            &self.cfg.close_codes,
        );
        if let Some(c) = r.auth_failure {
            let stable = self
                .link(w)
                .and_then(Link::open)
                .and_then(|o| o.live_since)
                .is_some_and(|s| self.now - s >= self.cfg.stable_after);
            if stable {
                self.auth_streak.end();
            }
            if self.count_auth_failure(w, c) {
                return;
            }
        } else {
            self.auth_streak.end();
        }
        if r.fresher_token {
            self.want_fresher_token(w);
        }
        let reason = if maintenance {
            GapReason::Maintenance
        } else {
            GapReason::SocketLost
        };
        self.lose(w, reason, r.plan, Ending::ClosedByServer);
    }
}
