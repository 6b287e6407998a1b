//! What every genesys-notify adapter shares, written once so the adapters stay thin and
//! cannot drift apart: regions and the host rules ([`Endpoints`]), token sources
//! ([`TokenSource`]), the HTTP requests each session action needs and the mapping of their
//! answers to session inputs ([`http`]), TLS trust and socket-failure mapping ([`socket`]),
//! and the session clock ([`Clock`]). No IO happens here: adapters move the bytes.
#![deny(missing_docs)]

mod clock;
mod endpoints;
pub mod http;
pub mod queue;
pub mod socket;
mod token;

pub use clock::Clock;
pub use endpoints::{Endpoints, Origin, Region};
pub use queue::EventQueue;
pub use token::{Credentials, PersistFn, TokenFn, TokenSource, TokenStep};

/// Per-connection resources an adapter holds right now: after any number of reconnects, no
/// more than the open sockets need.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    /// Socket entries (one per socket the session has not released).
    pub sockets: usize,
    /// Threads or tasks started and not yet joined (socket readers and HTTP requests).
    pub tasks: usize,
}

/// A configuration problem, found before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An unknown region name.
    #[error("unknown region {given:?}; known regions: {known}")]
    UnknownRegion {
        /// What was given.
        given: String,
        /// The names that would work.
        known: String,
    },
    /// A base URL that cannot be used.
    #[error("cannot use {url:?}: {why}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why.
        why: String,
    },
}
