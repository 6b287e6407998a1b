//! Identifiers, topics and secrets.

use std::fmt;

use crate::error::UsageError;

/// The most topics one channel may carry; the service answers 400 above it.
pub const MAX_TOPICS: usize = 1000;
/// The longest topic name the service accepts, combined topics included.
pub const MAX_TOPIC_LEN: usize = 200;

/// A validated notification topic, such as `v2.users.{id}.presence`.
///
/// `Topic::new` refuses what the service would refuse or what must never be subscribed:
/// empty names, names over 200 characters, whitespace, control characters or `/`, names that
/// do not start with `v2.` or have an empty part between dots, and the reserved names
/// `channel.metadata` and `v2.system.*` (those arrive unasked).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Topic(String);

impl Topic {
    /// Validates `name` as a topic.
    ///
    /// ```
    /// use genesys_notify_core::Topic;
    /// assert!(Topic::new("v2.users.6c1b4f1e.presence").is_ok());
    /// assert!(Topic::new("v2.system.socket_closing").is_err());
    /// assert!(Topic::new("has space").is_err());
    /// assert!(Topic::new("v2.users.6c1b4f1e/presence").is_err());
    /// assert!(Topic::new("presence").is_err());
    /// ```
    pub fn new(name: impl Into<String>) -> Result<Topic, UsageError> {
        let name = name.into();
        let problem = if name.is_empty() {
            Some("it is empty")
        } else if name.chars().count() > MAX_TOPIC_LEN {
            Some("it is longer than 200 characters")
        } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("it contains whitespace or control characters")
        } else if name.eq_ignore_ascii_case("channel.metadata") {
            Some("channel.metadata is reserved for heartbeats and pongs and is never subscribed")
        } else if name
            .get(..10)
            .is_some_and(|p| p.eq_ignore_ascii_case("v2.system."))
        {
            Some("v2.system.* messages arrive unasked and are never subscribed")
        } else if name.contains('/') {
            Some("it contains '/': the parts of a topic are separated by dots, as in v2.users.{id}.presence")
        } else if !name.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("v2.")) {
            Some("it does not start with v2. (topics look like v2.users.{id}.presence)")
        } else if name.split('.').any(str::is_empty) {
            Some("it has an empty part between dots")
        } else {
            None
        };
        match problem {
            Some(why) => Err(UsageError::InvalidTopic {
                topic: truncate(&name),
                why,
            }),
            None => Ok(Topic(name)),
        }
    }

    /// The topic name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(MAX_TOPIC_LEN + 1).collect()
}

/// Lets a set of topics be searched by name.
impl std::borrow::Borrow<str> for Topic {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Topic {
    type Err = UsageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Topic::new(s)
    }
}

/// A channel's id as returned by `POST /api/v2/notifications/channels`. Opaque.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelId(String);

impl ChannelId {
    /// Wraps the id the server returned.
    pub fn new(id: impl Into<String>) -> Self {
        ChannelId(id.into())
    }
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Shows only a prefix: the id is part of the socket's only credential, the `connectUri`.
impl fmt::Debug for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChannelId({})", self)
    }
}

/// Shows only a prefix: the id is part of the socket's only credential, the `connectUri`.
impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.0.chars().take(12).collect();
        if shown.len() < self.0.len() {
            write!(f, "{shown}…")
        } else {
            f.write_str(&shown)
        }
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(u64);

        impl $name {
            /// The raw number, for logs and adapters' own maps.
            pub fn as_u64(self) -> u64 {
                self.0
            }
            /// Builds an id from a number, for tests and fuzzers. Ids the session did not hand
            /// out are ignored by it.
            pub fn from_u64(n: u64) -> Self {
                $name(n)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

id_type!(
    /// Names one socket the session asked the adapter to open (`Action::Connect`). Inputs about
    /// the socket carry it back.
    ConnId,
    "conn#"
);
id_type!(
    /// Names one HTTP request the session asked for. Results carry it back; results naming a
    /// request the session no longer waits for are ignored.
    ReqId,
    "req#"
);

/// A string that must not reach a log: an access token, a refresh token, a client secret,
/// or a channel's `connectUri`.
///
/// `Debug` and `Display` print `<redacted>`; the value is reachable only through
/// [`Secret::expose`], so every use is easy to find.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_validation() {
        assert!(Topic::new("v2.users.abc?presence&routingStatus").is_ok());
        assert!(Topic::new("").is_err());
        assert!(Topic::new("a\tb").is_err());
        assert!(Topic::new("a\u{7}b").is_err());
        assert!(Topic::new("Channel.Metadata").is_err());
        assert!(Topic::new("V2.SYSTEM.anything").is_err());
        assert!(Topic::new(format!("v2.{}", "x".repeat(197))).is_ok());
        let long = Topic::new("é".repeat(201)).unwrap_err().to_string();
        assert!(long.contains("longer than 200"), "{long}");
        // A multi-byte first character must not split a char boundary.
        let e = Topic::new("ééééé").unwrap_err().to_string();
        assert!(e.contains("does not start with v2."), "{e}");
        assert!(Topic::new("v2.ééééé.presence").is_ok());
        let e = Topic::new("foo").unwrap_err().to_string();
        assert!(e.contains("v2.users.{id}.presence"), "{e}");
        let e = Topic::new("v2.users.x/presence").unwrap_err().to_string();
        assert!(e.contains("'/'"), "{e}");
        assert!(Topic::new("v2.users..presence").is_err());
        assert!(Topic::new("v2.users.x.").is_err());
    }

    #[test]
    fn secrets_and_channel_ids_redact() {
        let s = Secret::new("eyJhbGciOi.secret");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        let id = ChannelId::new("streaming-0-fmtdmf8cdis7jh14udg5p89t6z");
        assert_eq!(format!("{id:?}"), "ChannelId(streaming-0-…)");
        assert!(!format!("{id}").contains("fmtdmf8"));
    }
}
