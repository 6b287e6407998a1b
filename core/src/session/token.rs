//! The access token the session holds.

use crate::time::Instant;
use crate::types::Secret;

#[derive(Debug)]
pub(super) struct Token {
    pub(super) value: Secret,
    pub(super) gen: u64,
    pub(super) issued_at: Instant,
    pub(super) expires_at: Instant,
    /// The API rejected it: never use it again.
    pub(super) stale: bool,
    /// It replaced a token the API had rejected: if the API rejects this one too while it is
    /// fresh, refreshing again would loop.
    pub(super) after_rejection: bool,
}
