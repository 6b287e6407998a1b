//! PLACEHOLDER
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::wildcard_enum_match_arm))]

mod config;
mod error;
mod frame;
mod io;
mod rng;
mod session;
mod time;
mod types;

pub use config::{CloseCodes, Config};
pub use error::{
    AuthError, Error, FrameProblem, ProtocolError, RequestError, ServerError, UsageError,
};
pub use frame::{classify, Frame, PING};
pub use io::{Action, Event, GapReason, Input, Status, TopicResult};
pub use session::{Deadline, Session};
pub use time::Instant;
pub use types::{ChannelId, ConnId, ReqId, Secret, Topic, MAX_TOPICS, MAX_TOPIC_LEN};
