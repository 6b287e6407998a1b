//! One token request at a time for every shard: a shard that asks while another's request is
//! out waits for that answer, and every waiting shard gets it.

use std::time::Duration;

use crate::time::Instant;
use crate::types::ReqId;

/// At most one waiting request per shard, and shards are bounded by the channel budget.
#[derive(Debug, Default)]
pub(super) struct Broker {
    /// The request that went out, and when.
    out: Option<(ReqId, Instant)>,
    /// Shards' requests answered by it: (shard serial, request).
    waiting: Vec<(u64, ReqId)>,
}

impl Broker {
    /// Shard `serial` asks for a token with `req`: true if the request must go out, false if
    /// it waits for the one that is out (unless that one is older than `timeout`).
    pub(super) fn ask(&mut self, serial: u64, req: ReqId, now: Instant, timeout: Duration) -> bool {
        match self.out {
            Some((_, sent)) if now < sent + timeout => {
                self.waiting.retain(|(s, _)| *s != serial);
                self.waiting.push((serial, req));
                false
            }
            _ => {
                self.out = Some((req, now));
                true
            }
        }
    }

    /// The answer to `req` arrived: whom it goes to, each with whether it carries the
    /// rotated refresh token (only the request that went out does, so that it is told once).
    pub(super) fn answered(&mut self, req: ReqId, rotated: bool) -> Vec<(ReqId, bool)> {
        let mut to = vec![(req, rotated)];
        if self.out.is_some_and(|(r, _)| r == req) {
            self.out = None;
            to.extend(self.waiting.drain(..).map(|(_, r)| (r, false)));
        }
        to
    }

    /// A login supplied the token: nobody waits any more.
    pub(super) fn forget(&mut self) {
        self.out = None;
        self.waiting.clear();
    }
}
