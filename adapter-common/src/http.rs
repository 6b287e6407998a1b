//! The HTTP requests a session's actions need, and their answers turned into session inputs.
//!
//! Adapters only move bytes: they send an [`HttpRequest`] and hand back an [`HttpAnswer`] (or
//! a network error); every parsing and mapping decision lives here, once.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use genesys_notify_core::{
    Action, ChannelId, Input, LocalError, ReqId, RequestError, Secret, Topic, TopicResult,
};
use serde::{Deserialize, Serialize};

use crate::time::UnixTime;
use crate::Endpoints;

/// An HTTP request to perform. `Debug` never shows header values or the body (they carry
/// tokens and secrets).
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `POST`, `PUT`, …
    pub method: &'static str,
    /// The full URL.
    pub url: String,
    /// Headers, including `Authorization`.
    pub headers: Vec<(&'static str, String)>,
    /// The body, if any.
    pub body: Option<String>,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| *n).collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &names)
            .field("body_len", &self.body.as_ref().map(String::len))
            .finish()
    }
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpAnswer {
    /// The status.
    pub status: u16,
    /// The `Retry-After` header, as sent.
    pub retry_after: Option<String>,
    /// The `Date` header, as sent.
    pub date: Option<String>,
    /// The `Location` header, as sent (redirects are never followed).
    pub location: Option<String>,
    /// The body.
    pub body: String,
}

/// The largest answer body an adapter reads; a hostile server cannot make it hold more.
pub const MAX_ANSWER_BODY: usize = 4 << 20;

impl HttpAnswer {
    /// An answer from its status, headers and body, keeping the headers the mapping uses.
    pub fn new(status: u16, headers: &::http::HeaderMap, body: String) -> HttpAnswer {
        let header = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        HttpAnswer {
            status,
            retry_after: header("retry-after"),
            date: header("date"),
            location: header("location"),
            body,
        }
    }
}

/// `POST {api}/api/v2/notifications/channels` with the bearer token.
pub fn create_channel(endpoints: &Endpoints, token: &Secret) -> HttpRequest {
    HttpRequest {
        method: "POST",
        url: format!("{}/api/v2/notifications/channels", endpoints.api_base()),
        headers: vec![("Authorization", format!("Bearer {}", token.expose()))],
        body: None,
    }
}

/// `GET {api}/api/v2/notifications/channels?includechannels=oauthclient`: the channels this
/// user and OAuth client hold, whichever token made them (see [`channels_in_use`]).
pub fn list_channels(endpoints: &Endpoints, token: &Secret) -> HttpRequest {
    HttpRequest {
        method: "GET",
        url: format!(
            "{}/api/v2/notifications/channels?includechannels=oauthclient",
            endpoints.api_base()
        ),
        headers: vec![("Authorization", format!("Bearer {}", token.expose()))],
        body: None,
    }
}

#[derive(Deserialize)]
struct ChannelList {
    #[serde(default)]
    entities: Vec<serde::de::IgnoredAny>,
}

/// How many channels the answer to [`list_channels`] names: what this user and OAuth client
/// hold of the 20 the service allows, this session's included. The service removes the least
/// recently used at the 21st (those without a socket first).
pub fn channels_in_use(answer: Result<HttpAnswer, String>) -> Result<usize, RequestError> {
    parse_success::<ChannelList>(answer, "channel list").map(|(l, _)| l.entities.len())
}

/// `PUT {api}/api/v2/notifications/channels/{id}/subscriptions?ignoreErrors=true` with the
/// whole set. The id is the server's text: it is percent-encoded as one path segment, so that
/// no id (`../../x`, `a?b`) can steer the bearer request to another path.
pub fn put_subscriptions(
    endpoints: &Endpoints,
    channel: &ChannelId,
    topics: &[Topic],
    token: &Secret,
) -> HttpRequest {
    let body: Vec<TopicId<'_>> = topics.iter().map(|t| TopicId { id: t.as_str() }).collect();
    HttpRequest {
        method: "PUT",
        url: format!(
            "{}/api/v2/notifications/channels/{}/subscriptions?ignoreErrors=true",
            endpoints.api_base(),
            path_segment(channel.as_str())
        ),
        headers: vec![
            ("Authorization", format!("Bearer {}", token.expose())),
            ("Content-Type", "application/json".to_owned()),
        ],
        // Serializing strings into a list of objects cannot fail.
        body: Some(serde_json::to_string(&body).unwrap_or_default()),
    }
}

/// One entry of a subscription PUT's body.
#[derive(Serialize)]
struct TopicId<'a> {
    id: &'a str,
}

/// `s` as one path segment: percent-encoded, and never `.` or `..` (which a client or server
/// would resolve to the folder itself or the one above).
fn path_segment(s: &str) -> String {
    if s.bytes().all(|b| b == b'.') {
        return s.bytes().map(|b| format!("%{b:02X}")).collect();
    }
    crate::token::percent_encode(s)
}

/// Seconds, or an HTTP date, relative to `date` (the answer's `Date`) or now.
pub fn parse_retry_after(value: &str, date: Option<&str>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = UnixTime::parse_http_date(v)?;
    let now = match date.and_then(UnixTime::parse_http_date) {
        Some(d) => d,
        None => UnixTime::now()?,
    };
    Some(Duration::from_secs(at.saturating_since(now).as_secs()))
}

/// Time from the answer's `Date` (or now, when absent) to `expires`: clock skew between
/// client and server cancels out. `Date` has whole seconds, so the server's clock may have
/// been up to a second past it: that second is taken off, and the channel is never thought
/// to live longer than it does.
pub fn expires_in(expires: &str, date: Option<&str>) -> Option<Duration> {
    let at = UnixTime::parse_rfc3339(expires)?;
    let (now, granularity) = match date.and_then(UnixTime::parse_http_date) {
        Some(d) => (d, Duration::from_secs(1)),
        None => (UnixTime::now()?, Duration::ZERO),
    };
    Some(at.saturating_since(now).saturating_sub(granularity))
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

/// Where a redirect pointed, host only: the path of a channel URL holds its id.
fn redirect_target(location: Option<&str>) -> String {
    let plausible = |h: &str| {
        !h.is_empty()
            && h.len() <= 253
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    };
    match location.map(|l| (l, crate::Origin::parse(l))) {
        Some((_, Ok(o))) if plausible(&o.host) => o.host,
        Some((l, Err(_))) if l.starts_with('/') => "another path on the same host".to_owned(),
        Some(_) => "an unreadable location".to_owned(),
        None => "nowhere (no Location header)".to_owned(),
    }
}

/// An error status as the core's [`RequestError`]: status, `Retry-After`, and the body's OAuth
/// `error` or Genesys `code`. A redirect is a refusal: it is never followed (it could carry
/// credentials to another host), and retrying the same URL cannot help.
pub fn to_request_error(a: &HttpAnswer) -> RequestError {
    if (300..400).contains(&a.status) {
        return RequestError::Refused(format!(
            "HTTP {} redirect to {} (redirects are never followed)",
            a.status,
            redirect_target(a.location.as_deref())
        ));
    }
    let body: Option<ErrorBody> = serde_json::from_str(&a.body).ok();
    let code = body
        .and_then(|b| b.error.or(b.code))
        .filter(|c| c.len() <= 100);
    RequestError::Http {
        status: a.status,
        retry_after: a
            .retry_after
            .as_deref()
            .and_then(|r| parse_retry_after(r, a.date.as_deref())),
        code,
    }
}

/// `host[:port]` of a request URL, to name where a request that got no answer went (never
/// the path, which can hold a channel id).
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A request that got no answer, as the session should see it. A server certificate this
/// client does not trust is a refusal (retrying cannot fix it: the session stops after a
/// second one and says how to trust it); anything else is a network failure, retried.
pub fn transport_error(detail: String) -> RequestError {
    let untrusted = [
        "invalid peer certificate",
        "UnknownIssuer",
        "certificate verify failed",
    ]
    .iter()
    .any(|m| detail.contains(m));
    if untrusted {
        RequestError::Refused(format!(
            "the server's TLS certificate is not trusted ({detail}); if it is yours, trust its CA (tail --ca-cert FILE, or extra_root_pem)"
        ))
    } else {
        RequestError::network(detail)
    }
}

/// A 2xx answer's body parsed as `T`, with the answer (for its `Date`); any other outcome as
/// the request error the session should see.
pub fn parse_success<T: serde::de::DeserializeOwned>(
    answer: Result<HttpAnswer, String>,
    what: &str,
) -> Result<(T, HttpAnswer), RequestError> {
    let a = answer.map_err(transport_error)?;
    if !(200..300).contains(&a.status) {
        return Err(to_request_error(&a));
    }
    match serde_json::from_str::<T>(&a.body) {
        Ok(body) => Ok((body, a)),
        Err(_) => Err(RequestError::network(format!("unusable {what} answer"))),
    }
}

#[derive(Deserialize)]
struct ChannelBody {
    id: String,
    #[serde(rename = "connectUri")]
    connect_uri: String,
    #[serde(default)]
    expires: Option<String>,
}

/// Turns the answer to a request into the session's input, plus a warning for the application.
pub type Finish = Box<dyn FnOnce(Result<HttpAnswer, String>) -> (Input, Option<LocalError>) + Send>;

/// The HTTP exchange behind `CreateChannel` and `PutSubscriptions`: the request to send and
/// how to read its answer. Any other action is handed back for the adapter to perform.
pub fn rest_exchange(
    endpoints: &Arc<Endpoints>,
    action: Action,
) -> Result<(HttpRequest, Finish), Action> {
    match action {
        Action::CreateChannel { req, token } => {
            let request = create_channel(endpoints, &token);
            let endpoints = Arc::clone(endpoints);
            Ok((
                request,
                Box::new(move |a| channel_answer(req, &endpoints, a)),
            ))
        }
        Action::PutSubscriptions {
            req,
            channel,
            topics,
            token,
        } => Ok((
            put_subscriptions(endpoints, &channel, &topics, &token),
            Box::new(move |a| (subscriptions_answer(req, a), None)),
        )),
        other => Err(other),
    }
}

/// The answer to `CreateChannel { req }` as a session input. A `connectUri` that is not the
/// expected streaming host is refused here, before anything could connect to it.
pub fn channel_answer(
    req: ReqId,
    endpoints: &Endpoints,
    answer: Result<HttpAnswer, String>,
) -> (Input, Option<LocalError>) {
    let (body, a) = match parse_success::<ChannelBody>(answer, "channel") {
        Ok(parsed) => parsed,
        Err(error) => return (Input::ChannelFailed { req, error }, None),
    };
    if let Err(why) = endpoints.check_connect_uri(&body.connect_uri) {
        return (
            Input::ChannelFailed {
                req,
                error: RequestError::Refused(why),
            },
            None,
        );
    }
    let expires_in = body
        .expires
        .as_deref()
        .and_then(|e| expires_in(e, a.date.as_deref()))
        .unwrap_or(Duration::from_secs(86_400));
    (
        Input::ChannelCreated {
            req,
            id: ChannelId::new(body.id),
            connect_uri: Secret::new(body.connect_uri),
            expires_in,
        },
        None,
    )
}

#[derive(Deserialize)]
struct SubEntity {
    id: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default, rename = "rejectionReason")]
    rejection_reason: Option<String>,
}

#[derive(Deserialize)]
struct SubBody {
    #[serde(default)]
    entities: Vec<SubEntity>,
}

/// The answer to `PutSubscriptions { req }` as a session input.
pub fn subscriptions_answer(req: ReqId, answer: Result<HttpAnswer, String>) -> Input {
    let body = match parse_success::<SubBody>(answer, "subscription") {
        Ok((body, _)) => body,
        Err(error) => return Input::SubscribeFailed { req, error },
    };
    let results = body
        .entities
        .into_iter()
        .map(|e| match e.state.as_deref() {
            Some(s) if s.eq_ignore_ascii_case("rejected") => TopicResult::rejected(
                e.id,
                e.rejection_reason.unwrap_or_else(|| "rejected".to_owned()),
            ),
            _ => TopicResult::permitted(e.id),
        })
        .collect();
    Input::Subscribed { req, results }
}

#[cfg(test)]
mod host_tests {
    use super::host_of;

    #[test]
    fn only_the_host_of_a_url_is_named() {
        assert_eq!(
            host_of("https://api.mypurecloud.ie/api/v2/notifications/channels/streaming-0-abc/subscriptions"),
            "api.mypurecloud.ie"
        );
        assert_eq!(host_of("http://127.0.0.1:9/oauth/token"), "127.0.0.1:9");
        assert_eq!(host_of("https://u:p@h.example/x"), "h.example");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> HttpAnswer {
        HttpAnswer {
            status,
            body: body.to_owned(),
            ..HttpAnswer::default()
        }
    }

    #[test]
    fn a_channel_id_cannot_steer_the_subscription_request() {
        let e = Endpoints::custom("https://api.example.com", None).unwrap();
        let token = Secret::new("t");
        let topics = [Topic::new("v2.users.a.presence").unwrap()];
        let ok = put_subscriptions(
            &e,
            &ChannelId::new("streaming-0-abc_D.e~f"),
            &topics,
            &token,
        );
        assert_eq!(
            ok.url,
            "https://api.example.com/api/v2/notifications/channels/streaming-0-abc_D.e~f/subscriptions?ignoreErrors=true"
        );
        for hostile in [
            "..",
            ".",
            "../../../users/me",
            "x/../../y",
            "a?b=c#",
            "a%2F..",
            "a b",
        ] {
            let r = put_subscriptions(&e, &ChannelId::new(hostile), &topics, &token);
            let segment = r
                .url
                .strip_prefix("https://api.example.com/api/v2/notifications/channels/")
                .and_then(|rest| rest.strip_suffix("/subscriptions?ignoreErrors=true"))
                .unwrap_or_else(|| panic!("{hostile}: {}", r.url));
            assert!(
                !segment.contains(['/', '?', '#', ' ']) && segment != "." && segment != "..",
                "{hostile} -> {segment}"
            );
        }
    }

    #[test]
    fn retry_after_in_seconds_or_http_date() {
        assert_eq!(parse_retry_after("17", None), Some(Duration::from_secs(17)));
        let date = "Sat, 28 Nov 2026 10:00:00 GMT";
        assert_eq!(
            parse_retry_after("Sat, 28 Nov 2026 10:00:30 GMT", Some(date)),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon", None), None);
    }

    #[test]
    fn expires_is_measured_against_the_date_header() {
        let d = expires_in(
            "2026-11-28T10:05:00.000Z",
            Some("Sat, 28 Nov 2026 10:00:00 GMT"),
        );
        // Less the second that `Date` cannot show.
        assert_eq!(d, Some(Duration::from_secs(299)));
        assert_eq!(
            expires_in(
                "2020-01-01T00:00:00Z",
                Some("Sat, 28 Nov 2026 10:00:00 GMT")
            ),
            Some(Duration::ZERO)
        );
        assert_eq!(expires_in("garbage", None), None);
    }

    #[test]
    fn error_bodies_give_codes() {
        let oauth = to_request_error(&answer(
            400,
            r#"{"error":"invalid_grant","description":"x","error_description":"x"}"#,
        ));
        assert_eq!(oauth, RequestError::status_code(400, "invalid_grant"));
        let api = to_request_error(&answer(
            401,
            r#"{"message":"Invalid login credentials.","code":"bad.credentials","status":401}"#,
        ));
        assert_eq!(api, RequestError::status_code(401, "bad.credentials"));
        assert_eq!(
            to_request_error(&answer(503, "<html>")),
            RequestError::status(503)
        );
    }

    #[test]
    fn channel_answers_and_foreign_connect_uris() {
        let e = Endpoints::custom("http://127.0.0.1:9", None).unwrap();
        let req = ReqId::from_u64(1);
        let ok = r#"{"id":"streaming-0-a","connectUri":"ws://127.0.0.1:9/channels/streaming-0-a","expires":"2099-01-01T00:00:00Z"}"#;
        assert!(matches!(
            channel_answer(req, &e, Ok(answer(200, ok))).0,
            Input::ChannelCreated { .. }
        ));
        let evil = r#"{"id":"a","connectUri":"ws://evil.example/channels/a","expires":"2099-01-01T00:00:00Z"}"#;
        match channel_answer(req, &e, Ok(answer(200, evil))).0 {
            Input::ChannelFailed {
                error: RequestError::Refused(why),
                ..
            } => assert!(why.contains("evil.example") && !why.contains("channels/a")),
            other => panic!("{other:?}"),
        }
        let unparsable =
            r#"{"id":"a","connectUri":"streaming-0-secretid","expires":"2099-01-01T00:00:00Z"}"#;
        match channel_answer(req, &e, Ok(answer(200, unparsable))).0 {
            Input::ChannelFailed {
                error: RequestError::Refused(why),
                ..
            } => assert!(!why.contains("secretid"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            channel_answer(req, &e, Ok(answer(200, "{}"))).0,
            Input::ChannelFailed { .. }
        ));
        assert!(matches!(
            channel_answer(req, &e, Err("reset".into())).0,
            Input::ChannelFailed {
                error: RequestError::Network(_),
                ..
            }
        ));
    }

    #[test]
    fn redirects_are_refusals_that_name_the_host_only() {
        let mut a = answer(302, "");
        a.location = Some("https://elsewhere.example/api/v2/notifications/channels/abc".into());
        match to_request_error(&a) {
            RequestError::Refused(why) => {
                assert!(
                    why.contains("HTTP 302 redirect to elsewhere.example"),
                    "{why}"
                );
                assert!(!why.contains("abc"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        a.location = Some("/login".into());
        assert!(
            matches!(to_request_error(&a), RequestError::Refused(w) if w.contains("same host"))
        );
    }

    #[test]
    fn subscription_answers_map_per_topic() {
        let body = r#"{"entities":[{"id":"a","state":"Permitted"},{"id":"b","state":"Rejected","rejectionReason":"no"}]}"#;
        match subscriptions_answer(ReqId::from_u64(2), Ok(answer(200, body))) {
            Input::Subscribed { results, .. } => {
                assert_eq!(
                    results,
                    vec![
                        TopicResult::permitted("a"),
                        TopicResult::rejected("b", "no")
                    ]
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn request_debug_hides_secrets() {
        let e = Endpoints::custom("http://127.0.0.1:9", None).unwrap();
        let r = create_channel(&e, &Secret::new("tok-123"));
        assert!(!format!("{r:?}").contains("tok-123"));
    }
}
