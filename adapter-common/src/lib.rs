//! What every genesys-notify adapter shares, written once so the adapters stay thin and
//! cannot drift apart: regions and the host rules ([`Endpoints`]), token sources
//! ([`TokenSource`]), the HTTP requests each session action needs and the mapping of their
//! answers to session inputs ([`http`]), TLS trust and socket-failure mapping (`socket`, with
//! the default `native` feature), and the session clock ([`Clock`]). No IO happens here:
//! adapters move the bytes. Without `native` the crate builds for `wasm32-unknown-unknown`.
#![deny(missing_docs)]

mod clock;
mod endpoints;
pub mod herd;
pub mod http;
pub mod queue;
#[cfg(feature = "native")]
pub mod socket;
pub mod time;
mod token;

pub use clock::{Clock, Suspends};
pub use endpoints::{Endpoints, Origin, Region};
pub use queue::{EventQueue, DEFAULT_MAX_FRAME_SIZE, DEFAULT_QUEUE_BYTES};
pub use token::{
    percent_encode, Credentials, PersistFn, Rotation, TokenFn, TokenSource, TokenStep,
};

/// Per-connection resources an adapter holds right now: after any number of reconnects, no
/// more than the open sockets need.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    /// Socket entries (one per socket the session has not released).
    pub sockets: usize,
    /// Threads or tasks started and not yet joined (socket readers and HTTP requests).
    pub tasks: usize,
    /// Channels the session holds or is asking for
    /// ([`Session::channels_held`](genesys_notify_core::Session::channels_held)): one per
    /// shard, two with `redundancy: 2`, one more during a renewal.
    pub channels: usize,
}

/// Why a client refused to start, for every adapter. Each message says what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// Neither a region nor base URLs were given to a builder.
    #[error("no endpoints: call .region(..) or .base_urls(..)")]
    MissingEndpoints,
    /// No credentials were given to a builder.
    #[error("no credentials: call .credentials(..)")]
    MissingCredentials,
    /// A base URL or region was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The session configuration or topic set was refused.
    #[error(transparent)]
    Usage(#[from] genesys_notify_core::UsageError),
    /// TLS could not be set up: the given root certificate is not usable PEM.
    #[error("TLS setup failed: {0}; check the root certificate (PEM)")]
    Tls(String),
    /// The adapter could not start its thread or task (the process is out of threads or
    /// memory).
    #[error("cannot start the session's driver: {0}")]
    Start(String),
}

/// A configuration problem, found before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An unknown region name.
    #[error("unknown region {given:?}: give a region name ({known}) or its domain (mypurecloud.ie, api.mypurecloud.ie, …)")]
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
