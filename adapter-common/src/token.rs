//! Token sources: where `RequestToken` gets its answer.

use std::fmt;
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
    /// The persistence failure reported last: the same failure at every rotation (every few
    /// seconds with short tokens) is reported once, until saving works again.
    persist_failure: Option<String>,
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
    pub fn new(credentials: Credentials, endpoints: &Endpoints) -> TokenSource {
        TokenSource {
            credentials,
            login_base: endpoints.login_base().to_owned(),
            static_issued: false,
            persist_failure: None,
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
    /// value, for the adapter to report.
    pub fn finish(
        &mut self,
        req: ReqId,
        answer: Result<HttpAnswer, String>,
    ) -> (Input, Option<LocalError>) {
        let body = match parse_success::<TokenBody>(answer, "token") {
            Ok((body, _)) => body,
            Err(error) => return (Input::TokenFailed { req, error }, None),
        };
        let expires_in = Duration::from_secs(body.expires_in.unwrap_or(86_399));
        let mut rotated = false;
        let mut problem = None;
        if let (
            Credentials::RefreshToken {
                refresh_token,
                persist,
                ..
            },
            Some(new),
        ) = (&mut self.credentials, body.refresh_token)
        {
            if new != refresh_token.expose() {
                let new = Secret::new(new);
                match persist(&new) {
                    Err(e) if self.persist_failure.as_deref() != Some(e.as_str()) => {
                        self.persist_failure = Some(e.clone());
                        problem = Some(LocalError::PersistFailed { detail: e });
                    }
                    Err(_) => {}
                    Ok(()) => self.persist_failure = None,
                }
                *refresh_token = new;
                rotated = true;
            }
        }
        let token = Secret::new(body.access_token);
        (
            Input::TokenIssued {
                req,
                token,
                expires_in,
                rotated_refresh_token: rotated,
            },
            problem,
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
