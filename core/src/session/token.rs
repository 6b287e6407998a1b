//! The access token the session holds.

use crate::time::Instant;
use crate::types::Secret;

use super::budget::Budget;

/// Everything about getting tokens: the one held, the request in flight, failures and when
/// the next request may go.
#[derive(Debug, Default)]
pub(super) struct Tokens {
    pub(super) current: Option<Token>,
    /// Generations issued so far (a channel remembers the generation that created it).
    pub(super) gen: u64,
    /// Failed (or useless) answers in a row; drives backoff.
    pub(super) failures: u32,
    /// No token request before this (a `Retry-After`, a backoff step, the budget).
    pub(super) retry_at: Option<Instant>,
    pub(super) budget: Budget,
}

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
