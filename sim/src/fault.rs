//! Faults, in a one-line language shared by scripts and the control endpoint; the language
//! is [`FAULT_HELP`].

use std::fmt;
use std::time::Duration;

use crate::duration::parse_duration;

/// The fault language, as shown by `genesys-notify sim --help` and `GET /__sim/fault`.
pub const FAULT_HELP: &str = r#"Faults (POST one to /__sim/fault, or put one per line in a --script FILE after its time,
like `20s close 4001`):

close [CODE]                              close every socket with CODE (default 1000)
drop                                      drop every socket without a close frame
half_open                                 every socket goes silent (no frames, input ignored)
socket_closing                            send v2.system.socket_closing, close after the grace
displace                                  close every socket as a second connection to its
                                          channel would (with the displaced close code)
FAULT one                                 any of the five above on the oldest open socket
                                          only (`drop one`, `close 4001 one`): a fault that
                                          hits one socket of a client with redundancy 2
fail ENDPOINT COUNT STATUS [RETRY_AFTER]  the next COUNT requests answer STATUS
                                          (ENDPOINT: token, channel, subscriptions, upgrade;
                                          RETRY_AFTER in seconds)
heal ENDPOINT                             ENDPOINT answers normally again: its queued
                                          failures are forgotten (`fail token 1000 503` then,
                                          15 s later, `heal token`: an outage of 15 s)
revoke_refresh_tokens                     every refresh token stops working (invalid_grant)
expire_tokens                             every access token expires now
malformed KIND                            send a bad frame on every socket (KIND: not_json,
                                          truncated, oversized, unknown_topic)
burst N [BYTES]                           publish N notifications per subscribed topic as fast
                                          as the sockets take them (for throughput tests);
                                          with BYTES, each body carries that much padding
                                          (for memory tests; at most 16777216)
flood N                                   write N tiny malformed frames on every socket as
                                          fast as it takes them
redirect ENDPOINT COUNT                   the next COUNT requests answer 302 to another host
                                          (ENDPOINT: token, channel, subscriptions)
short_token COUNT SECS                    the next COUNT tokens live SECS (0: already dead)
expired_channel COUNT                     the next COUNT channels are created already expired
foreign_uri COUNT                         the next COUNT channels carry a connectUri on
                                          another host

A script is one fault per line, each preceded by the time since start at which it fires:
`20s close 4001`. Blank lines and `#` comments are skipped.
"#;

/// The fault names, for an error that says which exist.
const FAULT_NAMES: &str = "close, drop, half_open, socket_closing, displace, fail, heal, revoke_refresh_tokens, expire_tokens, malformed, burst, flood, redirect, short_token, expired_channel, foreign_uri";

/// An endpoint that can be told to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Endpoint {
    /// `POST /oauth/token`.
    Token,
    /// `POST /api/v2/notifications/channels`.
    Channel,
    /// The subscription endpoints.
    Subscriptions,
    /// The WebSocket upgrade.
    Upgrade,
}

impl Endpoint {
    /// The endpoint's word in the fault language.
    fn word(self) -> &'static str {
        match self {
            Endpoint::Token => "token",
            Endpoint::Channel => "channel",
            Endpoint::Subscriptions => "subscriptions",
            Endpoint::Upgrade => "upgrade",
        }
    }
}

/// Kinds of bad frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Not JSON at all.
    NotJson,
    /// A notification cut in the middle.
    Truncated,
    /// A 2 MiB notification.
    Oversized,
    /// A well-formed notification for a topic nobody subscribed.
    UnknownTopic,
}

/// How an answer is bent: what a misconfigured or hostile service could send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Twist {
    /// `302 Found` with a `Location` on another host.
    Redirect,
    /// A token that lives this many seconds.
    ShortToken(u64),
    /// A channel whose `expires` is already past.
    ExpiredChannel,
    /// A channel whose `connectUri` is on another host.
    ForeignUri,
}

/// One fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Close every socket with a code.
    Close(u16),
    /// Drop every socket without a close frame.
    Drop,
    /// Every socket goes silent: nothing is sent, input is ignored.
    HalfOpen,
    /// Maintenance notice on every socket, then a close after the grace.
    SocketClosing,
    /// Every socket is closed as a second connection to its channel would close it.
    Displace,
    /// The next `count` requests to `endpoint` answer `status`.
    Fail {
        /// Which endpoint.
        endpoint: Endpoint,
        /// How many requests.
        count: u32,
        /// The status.
        status: u16,
        /// `Retry-After`, in seconds.
        retry_after: Option<u64>,
    },
    /// The endpoint's queued failures are forgotten: it answers normally again.
    Heal(Endpoint),
    /// Every refresh token stops working.
    RevokeRefreshTokens,
    /// Every access token expires now.
    ExpireTokens,
    /// Send a bad frame on every socket.
    Malformed(Malformed),
    /// Publish this many notifications per subscribed topic at once, waiting for slow sockets
    /// rather than dropping.
    Burst(u64),
    /// A [`Burst`](Fault::Burst) whose notification bodies carry `bytes` of padding.
    PaddedBurst {
        /// Notifications per subscribed topic.
        count: u64,
        /// Padding per body.
        bytes: u64,
    },
    /// Write this many tiny malformed frames on every socket.
    Flood(u64),
    /// A socket fault (close, drop, half_open, socket_closing, displace) on the oldest open
    /// socket only.
    One(Box<Fault>),
    /// Bend the next `count` answers of `endpoint`.
    Twist {
        /// Which endpoint.
        endpoint: Endpoint,
        /// How many answers.
        count: u32,
        /// How.
        twist: Twist,
    },
}

/// The largest COUNT or N a fault takes: more is refused rather than queued or looped over.
pub(crate) const MAX_FAULT_COUNT: u64 = 1_000_000;

/// The most padding a `burst N BYTES` puts in one body.
const MAX_PADDING: u64 = 16 << 20;

/// The most words a fault line has (`fail subscriptions 1000 429 60 one` is six).
const MAX_FAULT_WORDS: usize = 8;

/// A fault line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FaultParseError(pub String);

impl std::str::FromStr for Fault {
    type Err = FaultParseError;

    fn from_str(line: &str) -> Result<Fault, FaultParseError> {
        let mut words: Vec<&str> = line.split_whitespace().collect();
        let bad = |why: &str| Err(FaultParseError(format!("{why} in fault {line:?}")));
        if words.len() > MAX_FAULT_WORDS {
            return bad(&format!("more than {MAX_FAULT_WORDS} words"));
        }
        if words.len() > 1 && words.last() == Some(&"one") {
            words.pop();
            if words.last() == Some(&"one") {
                return bad("`one` goes once, at the end");
            }
            let inner: Fault = words.join(" ").parse()?;
            return match inner {
                Fault::Close(_)
                | Fault::Drop
                | Fault::HalfOpen
                | Fault::SocketClosing
                | Fault::Displace => Ok(Fault::One(Box::new(inner))),
                _ => {
                    bad("`one` goes only after close, drop, half_open, socket_closing or displace")
                }
            };
        }
        let num = |i: usize, what: &str| -> Result<u64, FaultParseError> {
            words
                .get(i)
                .ok_or_else(|| FaultParseError(format!("missing {what} in fault {line:?}")))?
                .parse()
                .map_err(|_| FaultParseError(format!("{what} must be a number in fault {line:?}")))
        };
        // Counts of requests, events or frames: bounded so that no line queues or loops for
        // ever (an outage of unknown length is `fail … 1000 503`, then `heal`).
        let count = |i: usize, what: &str| -> Result<u64, FaultParseError> {
            let n = num(i, what)?;
            if n > MAX_FAULT_COUNT {
                return Err(FaultParseError(format!(
                    "{what} must be at most {MAX_FAULT_COUNT} in fault {line:?}"
                )));
            }
            Ok(n)
        };
        match words.first().copied() {
            Some("close") => {
                let code = if words.len() > 1 {
                    num(1, "CODE")?
                } else {
                    1000
                };
                match u16::try_from(code) {
                    Ok(c) => Ok(Fault::Close(c)),
                    Err(_) => bad("CODE out of range"),
                }
            }
            Some("drop") => Ok(Fault::Drop),
            Some("half_open") => Ok(Fault::HalfOpen),
            Some("socket_closing") => Ok(Fault::SocketClosing),
            Some("displace") => Ok(Fault::Displace),
            Some("revoke_refresh_tokens") => Ok(Fault::RevokeRefreshTokens),
            Some("expire_tokens") => Ok(Fault::ExpireTokens),
            Some("burst") if words.len() > 2 => {
                let bytes = num(2, "BYTES")?;
                if bytes > MAX_PADDING {
                    return bad(&format!("BYTES must be at most {MAX_PADDING}"));
                }
                Ok(Fault::PaddedBurst {
                    count: count(1, "N")?,
                    bytes,
                })
            }
            Some("burst") => Ok(Fault::Burst(count(1, "N")?)),
            Some("flood") => Ok(Fault::Flood(count(1, "N")?)),
            Some("redirect") => {
                let endpoint = match words.get(1).copied() {
                    Some("token") => Endpoint::Token,
                    Some("channel") => Endpoint::Channel,
                    Some("subscriptions") => Endpoint::Subscriptions,
                    _ => return bad("ENDPOINT must be token, channel or subscriptions"),
                };
                let count = u32::try_from(count(2, "COUNT")?).unwrap_or(u32::MAX);
                Ok(Fault::Twist {
                    endpoint,
                    count,
                    twist: Twist::Redirect,
                })
            }
            Some("short_token") => Ok(Fault::Twist {
                endpoint: Endpoint::Token,
                count: u32::try_from(count(1, "COUNT")?).unwrap_or(u32::MAX),
                twist: Twist::ShortToken(num(2, "SECS")?),
            }),
            Some(w @ ("expired_channel" | "foreign_uri")) => Ok(Fault::Twist {
                endpoint: Endpoint::Channel,
                count: u32::try_from(count(1, "COUNT")?).unwrap_or(u32::MAX),
                twist: if w == "expired_channel" {
                    Twist::ExpiredChannel
                } else {
                    Twist::ForeignUri
                },
            }),
            Some("malformed") => match words.get(1).copied() {
                Some("not_json") => Ok(Fault::Malformed(Malformed::NotJson)),
                Some("truncated") => Ok(Fault::Malformed(Malformed::Truncated)),
                Some("oversized") => Ok(Fault::Malformed(Malformed::Oversized)),
                Some("unknown_topic") => Ok(Fault::Malformed(Malformed::UnknownTopic)),
                _ => bad("KIND must be not_json, truncated, oversized or unknown_topic"),
            },
            Some(w @ ("fail" | "heal")) => {
                let endpoint = match words.get(1).copied() {
                    Some("token") => Endpoint::Token,
                    Some("channel") => Endpoint::Channel,
                    Some("subscriptions") => Endpoint::Subscriptions,
                    Some("upgrade") => Endpoint::Upgrade,
                    _ => return bad("ENDPOINT must be token, channel, subscriptions or upgrade"),
                };
                if w == "heal" {
                    return Ok(Fault::Heal(endpoint));
                }
                let count = u32::try_from(count(2, "COUNT")?).unwrap_or(u32::MAX);
                let status = match u16::try_from(num(3, "STATUS")?) {
                    Ok(s) if (400..600).contains(&s) => s,
                    _ => return bad("STATUS must be an HTTP error status (400-599)"),
                };
                let retry_after = if words.len() > 4 {
                    Some(num(4, "RETRY_AFTER")?)
                } else {
                    None
                };
                Ok(Fault::Fail {
                    endpoint,
                    count,
                    status,
                    retry_after,
                })
            }
            Some(other) => bad(&format!("unknown fault {other:?} (faults: {FAULT_NAMES})")),
            None => bad("empty line"),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Close(c) => write!(f, "close {c}"),
            Fault::Drop => f.write_str("drop"),
            Fault::HalfOpen => f.write_str("half_open"),
            Fault::SocketClosing => f.write_str("socket_closing"),
            Fault::Displace => f.write_str("displace"),
            Fault::One(inner) => write!(f, "{inner} one"),
            Fault::Fail {
                endpoint,
                count,
                status,
                retry_after,
            } => {
                write!(f, "fail {} {count} {status}", endpoint.word())?;
                if let Some(r) = retry_after {
                    write!(f, " {r}")?;
                }
                Ok(())
            }
            Fault::Heal(endpoint) => write!(f, "heal {}", endpoint.word()),
            Fault::RevokeRefreshTokens => f.write_str("revoke_refresh_tokens"),
            Fault::ExpireTokens => f.write_str("expire_tokens"),
            Fault::Burst(n) => write!(f, "burst {n}"),
            Fault::PaddedBurst { count, bytes } => write!(f, "burst {count} {bytes}"),
            Fault::Flood(n) => write!(f, "flood {n}"),
            Fault::Twist {
                endpoint,
                count,
                twist,
            } => match twist {
                Twist::Redirect => write!(
                    f,
                    "redirect {} {count}",
                    match endpoint {
                        Endpoint::Token => "token",
                        Endpoint::Channel => "channel",
                        Endpoint::Subscriptions | Endpoint::Upgrade => "subscriptions",
                    }
                ),
                Twist::ShortToken(secs) => write!(f, "short_token {count} {secs}"),
                Twist::ExpiredChannel => write!(f, "expired_channel {count}"),
                Twist::ForeignUri => write!(f, "foreign_uri {count}"),
            },
            Fault::Malformed(k) => write!(
                f,
                "malformed {}",
                match k {
                    Malformed::NotJson => "not_json",
                    Malformed::Truncated => "truncated",
                    Malformed::Oversized => "oversized",
                    Malformed::UnknownTopic => "unknown_topic",
                }
            ),
        }
    }
}

/// One scripted fault and when it fires, counted from the simulator's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptStep {
    /// When.
    pub at: Duration,
    /// What.
    pub fault: Fault,
}

/// Reads a script: `TIME FAULT` per line, `#` comments.
///
/// ```
/// use genesys_notify_sim::{parse_script, Fault};
/// let steps = parse_script("# warm up\n10s close 4001\n1m30s fail token 2 429 5\n").unwrap();
/// assert_eq!(steps[0].fault, Fault::Close(4001));
/// assert_eq!(steps[1].at.as_secs(), 90);
/// ```
pub fn parse_script(text: &str) -> Result<Vec<ScriptStep>, FaultParseError> {
    let mut steps = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (time, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let at =
            parse_duration(time).map_err(|e| FaultParseError(format!("line {}: {e}", n + 1)))?;
        let fault = rest
            .trim()
            .parse()
            .map_err(|e: FaultParseError| FaultParseError(format!("line {}: {}", n + 1, e.0)))?;
        steps.push(ScriptStep { at, fault });
    }
    steps.sort_by_key(|s| s.at);
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_round_trips_and_errors_say_what_is_wrong() {
        for line in [
            "close 4001",
            "drop",
            "half_open",
            "socket_closing",
            "displace",
            "fail token 3 429 5",
            "fail upgrade 1 404",
            "heal token",
            "revoke_refresh_tokens",
            "expire_tokens",
            "malformed truncated",
            "burst 100",
            "burst 10 1000000",
            "flood 100000",
            "redirect channel 2",
            "redirect token 1",
            "short_token 3 0",
            "expired_channel 2",
            "foreign_uri 5",
            "drop one",
            "close 4001 one",
            "half_open one",
            "socket_closing one",
            "displace one",
        ] {
            let f: Fault = line.parse().unwrap();
            assert_eq!(f.to_string(), line);
        }
        assert_eq!("close".parse::<Fault>().unwrap(), Fault::Close(1000));
        let e = "fail token x 429".parse::<Fault>().unwrap_err().to_string();
        assert!(e.contains("COUNT must be a number"), "{e}");
        let e = "burst 5 one".parse::<Fault>().unwrap_err().to_string();
        assert!(e.contains("`one` goes only after"), "{e}");
        let e = "explode".parse::<Fault>().unwrap_err().to_string();
        assert!(e.contains("unknown fault"), "{e}");
        assert!(
            e.contains("half_open") && e.contains("heal"),
            "the error lists the faults: {e}"
        );
        for name in FAULT_NAMES.split(", ") {
            assert!(FAULT_HELP.contains(name), "{name} is in the help");
        }
        assert!("fail token 1 200".parse::<Fault>().is_err());
        let e = parse_script("10s close\nsoon drop\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("line 2:"), "{e}");
    }
}
