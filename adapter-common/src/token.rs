//! Token sources: where `RequestToken` gets its answer.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use genesys_notify_core::{Input, LocalError, ReqId, RequestError, Secret};
use serde::Deserialize;

use crate::http::{parse_success, HttpAnswer, HttpRequest};
use crate::Endpoints;

/// Saves a rotated refresh token. Called with the new token *before* it is used; an error is
/// reported as a warning and the session goes on with the new token in memory.
pub type PersistFn = Box<dyn FnMut(&Secret) -> Result<(), String> + Send>;

/// Produces an access token for applications that own their login (for example PKCE in a
/// browser). Returns the token and its lifetime.
pub type TokenFn = Box<dyn FnMut() -> Result<(Secret, Duration), RequestError> + Send>;

/// How the session gets access tokens. `Debug` never shows a secret.
pub enum Credentials {
    /// OAuth client credentials: a new token whenever one is needed.
    ClientCredentials {
        /// The OAuth client id.
        client_id: String,
        /// The OAuth client secret.
        client_secret: Secret,
    },
    /// The refresh-token grant of a code-authorization client. Rotated refresh tokens go to
    /// `persist` before they are used.
    RefreshToken {
        /// The OAuth client id.
        client_id: String,
        /// The OAuth client secret.
        client_secret: Secret,
        /// The current refresh token.
        refresh_token: Secret,
        /// Where rotated refresh tokens are saved.
        persist: PersistFn,
    },
    /// A fixed access token: when it expires or is rejected, a login is required.
    Static {
        /// The token.
        access_token: Secret,
        /// How long it is valid from start (use 24 h if unknown: the API's 401 tells earlier).
        expires_in: Duration,
    },
    /// A callback that returns a token.
    Custom(TokenFn),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::ClientCredentials { client_id, .. } => f
                .debug_struct("ClientCredentials")
                .field("client_id", client_id)
                .finish_non_exhaustive(),
            Credentials::RefreshToken { client_id, .. } => f
                .debug_struct("RefreshToken")
                .field("client_id", client_id)
                .finish_non_exhaustive(),
            Credentials::Static { expires_in, .. } => f
                .debug_struct("Static")
                .field("expires_in", expires_in)
                .finish_non_exhaustive(),
            Credentials::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// What to do for one `RequestToken`.
#[derive(Debug)]
pub enum TokenStep {
    /// Perform this request, then call [`TokenSource::finish`].
    Http(HttpRequest),
    /// The answer is known already.
    Done(Input),
}

/// A token source bound to its endpoints. Token requests are single-flight (the session asks
/// for one at a time), so `begin`/`finish` pairs never overlap.
#[derive(Debug)]
pub struct TokenSource {
    credentials: Credentials,
    login_base: String,
    static_issued: bool,
    /// Where rotated refresh tokens go, shared with the [`Rotation`]s still to be saved.
    saver: Option<Arc<Mutex<Saver>>>,
    /// Rotations handed out so far: a later one supersedes an earlier one not yet saved.
    rotations: u64,
}

/// The application's persistence callback, and what it did last.
struct Saver {
    persist: PersistFn,
    /// The rotation saved (or tried) last: an older one that comes late is not written.
    last: u64,
    /// The persistence failure reported last: the same failure at every rotation (every few
    /// seconds with short tokens) is reported once, until saving works again.
    failure: Option<String>,
}

impl fmt::Debug for Saver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Saver")
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

/// A rotated refresh token still to be saved. [`persist`](Rotation::persist) may block for as
/// long as the application's callback does (a slow disk, a hung network mount): call it
/// without holding any lock the driver needs, and only then hand the session its input, so
/// that the token is saved before it is used.
#[derive(Debug)]
#[must_use = "a rotated refresh token must be persisted before the session's input is handed on"]
pub struct Rotation {
    token: Secret,
    seq: u64,
    saver: Arc<Mutex<Saver>>,
}

impl Rotation {
    /// Saves the token through the application's callback. A failure comes back once, for
    /// the adapter to report; the same failure again is not reported until saving works.
    pub fn persist(self) -> Option<LocalError> {
        let mut s = self.saver.lock().unwrap_or_else(|p| p.into_inner());
        if self.seq < s.last {
            // A newer token is saved already: writing this one would bring back a dead one.
            return None;
        }
        s.last = self.seq;
        match (s.persist)(&self.token) {
            Err(e) if s.failure.as_deref() != Some(e.as_str()) => {
                s.failure = Some(e.clone());
                Some(LocalError::PersistFailed { detail: e })
            }
            Err(_) => None,
            Ok(()) => {
                s.failure = None;
                None
            }
        }
    }
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// Percent-encodes a form or query value (everything but the unreserved characters).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl TokenSource {
    /// Binds credentials to the login base of `endpoints` (the only host that ever sees the
    /// client secret or the refresh token).
    pub fn new(mut credentials: Credentials, endpoints: &Endpoints) -> TokenSource {
        let saver = match &mut credentials {
            Credentials::RefreshToken { persist, .. } => {
                let persist = std::mem::replace(persist, Box::new(|_| Ok(())));
                Some(Arc::new(Mutex::new(Saver {
                    persist,
                    last: 0,
                    failure: None,
                })))
            }
            _ => None,
        };
        TokenSource {
            credentials,
            login_base: endpoints.login_base().to_owned(),
            static_issued: false,
            saver,
            rotations: 0,
        }
    }

    fn basic(id: &str, secret: &Secret) -> String {
        let raw = format!("{id}:{}", secret.expose());
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    fn form_request(&self, auth: String, body: String) -> HttpRequest {
        HttpRequest {
            method: "POST",
            url: format!("{}/oauth/token", self.login_base),
            headers: vec![
                ("Authorization", auth),
                (
                    "Content-Type",
                    "application/x-www-form-urlencoded".to_owned(),
                ),
            ],
            body: Some(body),
        }
    }

    /// Starts answering `RequestToken { req }`.
    pub fn begin(&mut self, req: ReqId) -> TokenStep {
        match &mut self.credentials {
            Credentials::ClientCredentials {
                client_id,
                client_secret,
            } => {
                let auth = Self::basic(client_id, client_secret);
                TokenStep::Http(self.form_request(auth, "grant_type=client_credentials".to_owned()))
            }
            Credentials::RefreshToken {
                client_id,
                client_secret,
                refresh_token,
                ..
            } => {
                let auth = Self::basic(client_id, client_secret);
                let body = format!(
                    "grant_type=refresh_token&refresh_token={}",
                    percent_encode(refresh_token.expose())
                );
                TokenStep::Http(self.form_request(auth, body))
            }
            Credentials::Static {
                access_token,
                expires_in,
            } => {
                if self.static_issued {
                    let error = RequestError::CannotRefresh(
                        "a static access token cannot be refreshed".to_owned(),
                    );
                    return TokenStep::Done(Input::TokenFailed { req, error });
                }
                self.static_issued = true;
                TokenStep::Done(Input::TokenIssued {
                    req,
                    token: access_token.clone(),
                    expires_in: *expires_in,
                    rotated_refresh_token: false,
                })
            }
            Credentials::Custom(f) => TokenStep::Done(match f() {
                Ok((token, expires_in)) => Input::TokenIssued {
                    req,
                    token,
                    expires_in,
                    rotated_refresh_token: false,
                },
                Err(error) => Input::TokenFailed { req, error },
            }),
        }
    }

    /// Turns the token endpoint's answer into a session input. A rotated refresh token is
    /// persisted before the input is returned; a persistence failure comes back as the second
    /// value, for the adapter to report. This runs the application's callback while `self` is
    /// borrowed: an adapter that shares the source behind a lock uses
    /// [`finish_answer`](Self::finish_answer) instead.
    pub fn finish(
        &mut self,
        req: ReqId,
        answer: Result<HttpAnswer, String>,
    ) -> (Input, Option<LocalError>) {
        let (input, rotation) = self.finish_answer(req, answer);
        (input, rotation.and_then(Rotation::persist))
    }

    /// Like [`finish`](Self::finish), but a rotated refresh token comes back as a
    /// [`Rotation`] to persist after the caller lets go of this source (and before it hands
    /// the input to the session). The source uses the new refresh token from now on.
    pub fn finish_answer(
        &mut self,
        req: ReqId,
        answer: Result<HttpAnswer, String>,
    ) -> (Input, Option<Rotation>) {
        let body = match parse_success::<TokenBody>(answer, "token") {
            Ok((body, _)) => body,
            Err(error) => return (Input::TokenFailed { req, error }, None),
        };
        let expires_in = Duration::from_secs(body.expires_in.unwrap_or(86_399));
        let mut rotation = None;
        if let (Credentials::RefreshToken { refresh_token, .. }, Some(new), Some(saver)) =
            (&mut self.credentials, body.refresh_token, &self.saver)
        {
            if new != refresh_token.expose() {
                let new = Secret::new(new);
                self.rotations += 1;
                rotation = Some(Rotation {
                    token: new.clone(),
                    seq: self.rotations,
                    saver: Arc::clone(saver),
                });
                *refresh_token = new;
            }
        }
        let rotated = rotation.is_some();
        let token = Secret::new(body.access_token);
        (
            Input::TokenIssued {
                req,
                token,
                expires_in,
                rotated_refresh_token: rotated,
            },
            rotation,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn endpoints() -> Endpoints {
        Endpoints::custom("https://api.example.com", Some("https://login.example.com")).unwrap()
    }

    #[test]
    fn client_credentials_go_to_the_login_host_only() {
        let mut s = TokenSource::new(
            Credentials::ClientCredentials {
                client_id: "id".into(),
                client_secret: Secret::new("s3cret"),
            },
            &endpoints(),
        );
        let TokenStep::Http(r) = s.begin(ReqId::from_u64(1)) else {
            panic!()
        };
        assert_eq!(r.url, "https://login.example.com/oauth/token");
        assert_eq!(r.body.as_deref(), Some("grant_type=client_credentials"));
        assert!(!format!("{s:?}{r:?}").contains("s3cret"));
    }

    #[test]
    fn rotated_refresh_tokens_are_persisted_before_use() {
        let saved = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&saved);
        let mut s = TokenSource::new(
            Credentials::RefreshToken {
                client_id: "id".into(),
                client_secret: Secret::new("s"),
                refresh_token: Secret::new("rt/1+"),
                persist: Box::new(move |t| {
                    sink.lock().unwrap().push(t.expose().to_owned());
                    Ok(())
                }),
            },
            &endpoints(),
        );
        let TokenStep::Http(r) = s.begin(ReqId::from_u64(1)) else {
            panic!()
        };
        assert_eq!(
            r.body.as_deref(),
            Some("grant_type=refresh_token&refresh_token=rt%2F1%2B")
        );
        let body =
            r#"{"access_token":"at","token_type":"bearer","expires_in":60,"refresh_token":"rt2"}"#;
        let (input, problem) = s.finish(
            ReqId::from_u64(1),
            Ok(HttpAnswer {
                status: 200,
                body: body.into(),
                ..HttpAnswer::default()
            }),
        );
        assert!(problem.is_none());
        assert!(matches!(
            input,
            Input::TokenIssued {
                rotated_refresh_token: true,
                ..
            }
        ));
        assert_eq!(*saved.lock().unwrap(), vec!["rt2".to_owned()]);
        let TokenStep::Http(r) = s.begin(ReqId::from_u64(2)) else {
            panic!()
        };
        assert!(r.body.unwrap().ends_with("refresh_token=rt2"));

        // Two rotations saved out of order (two HTTP threads): the older one is not written
        // over the newer one.
        let answer = |rt: &str| {
            Ok(HttpAnswer {
                status: 200,
                body: format!(r#"{{"access_token":"at","expires_in":60,"refresh_token":"{rt}"}}"#),
                ..HttpAnswer::default()
            })
        };
        let (_, older) = s.finish_answer(ReqId::from_u64(2), answer("rt3"));
        let (_, newer) = s.finish_answer(ReqId::from_u64(3), answer("rt4"));
        assert!(newer.unwrap().persist().is_none());
        assert!(older.unwrap().persist().is_none());
        assert_eq!(*saved.lock().unwrap(), vec!["rt2", "rt4"]);
    }

    #[test]
    fn the_same_persistence_failure_is_reported_once_until_saving_works_again() {
        let fail = Arc::new(Mutex::new(true));
        let failing = Arc::clone(&fail);
        let mut s = TokenSource::new(
            Credentials::RefreshToken {
                client_id: "id".into(),
                client_secret: Secret::new("s"),
                refresh_token: Secret::new("rt0"),
                persist: Box::new(move |_| {
                    if *failing.lock().unwrap() {
                        Err("disk full".into())
                    } else {
                        Ok(())
                    }
                }),
            },
            &endpoints(),
        );
        let mut rotate = |n: u64| {
            let body =
                format!(r#"{{"access_token":"at","expires_in":60,"refresh_token":"rt{n}"}}"#);
            s.finish(
                ReqId::from_u64(n),
                Ok(HttpAnswer {
                    status: 200,
                    body,
                    ..HttpAnswer::default()
                }),
            )
            .1
        };
        assert!(rotate(1).is_some(), "the first failure is reported");
        assert!(rotate(2).is_none(), "the same failure is not repeated");
        assert!(rotate(3).is_none());
        *fail.lock().unwrap() = false;
        assert!(rotate(4).is_none(), "saving works again");
        *fail.lock().unwrap() = true;
        assert!(
            rotate(5).is_some(),
            "a new failure after a success is reported"
        );
    }

    #[test]
    fn static_tokens_cannot_refresh() {
        let mut s = TokenSource::new(
            Credentials::Static {
                access_token: Secret::new("at"),
                expires_in: Duration::from_secs(60),
            },
            &endpoints(),
        );
        assert!(matches!(
            s.begin(ReqId::from_u64(1)),
            TokenStep::Done(Input::TokenIssued { .. })
        ));
        assert!(matches!(
            s.begin(ReqId::from_u64(2)),
            TokenStep::Done(Input::TokenFailed {
                error: RequestError::CannotRefresh(_),
                ..
            })
        ));
    }

    #[test]
    fn error_answers_carry_the_oauth_code() {
        let mut s = TokenSource::new(
            Credentials::ClientCredentials {
                client_id: "id".into(),
                client_secret: Secret::new("s"),
            },
            &endpoints(),
        );
        let a = HttpAnswer {
            status: 401,
            body: r#"{"error":"invalid_client"}"#.into(),
            ..HttpAnswer::default()
        };
        let (input, _) = s.finish(ReqId::from_u64(1), Ok(a));
        assert!(matches!(
            input,
            Input::TokenFailed {
                error: RequestError::Http { status: 401, .. },
                ..
            }
        ));
    }
}
