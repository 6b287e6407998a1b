//! The browser login: the authorization-code grant with PKCE (RFC 7636), as Genesys Cloud
//! offers it to pages, which hold no client secret. `GET /oauth/authorize` stands for the
//! login page: its user always agrees at once, and it sends the browser back to the
//! `redirect_uri` with a one-time code; `POST /oauth/token` with
//! `grant_type=authorization_code`, the code and its `code_verifier` (no client
//! authentication) gives an access token and no refresh token.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::Digest as _;

use crate::state::State;

/// How long a code may wait to be redeemed.
const CODE_LIFE: Duration = Duration::from_secs(300);
/// Codes kept at once; the oldest goes first.
const MAX_CODES: usize = 1024;

/// A code handed out and not yet redeemed.
pub(crate) struct Code {
    challenge: String,
    redirect_uri: String,
    issued: Instant,
}

/// Why a request was refused: (HTTP status, OAuth `error`, description).
pub(crate) type Refusal = (u16, &'static str, String);

/// A `redirect_uri` this client may use: on loopback, or on an origin allowed for CORS. The
/// real service accepts only the addresses registered for the OAuth client.
fn redirect_allowed(uri: &str, cors_origins: &[String]) -> bool {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return false;
    };
    if !matches!(scheme, "http" | "https") {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let origin = format!("{scheme}://{authority}");
    let host = authority
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(authority, |(h, _)| h);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
        || cors_origins
            .iter()
            .any(|o| o == "*" || o.eq_ignore_ascii_case(&origin))
}

/// Everything but unreserved characters as `%XX`, for a value put into a query.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `code_verifier` and `code_challenge` are 43 to 128 characters of `[A-Za-z0-9-._~]`.
fn well_formed(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `GET /oauth/authorize`: where the browser goes next (the `redirect_uri` with `code` and
/// `state`), or why not. A request whose `redirect_uri` cannot be trusted is refused on the
/// spot, never redirected.
pub(crate) fn authorize(
    st: &mut State,
    client_id: &str,
    cors_origins: &[String],
    get: impl Fn(&str) -> Option<String>,
) -> Result<String, Refusal> {
    let refuse = |error, d: &str| Err((400, error, d.to_owned()));
    let Some(redirect_uri) = get("redirect_uri") else {
        return refuse("invalid_request", "redirect_uri is required");
    };
    if !redirect_allowed(&redirect_uri, cors_origins) {
        return refuse(
            "invalid_request",
            "redirect_uri is not registered for this client",
        );
    }
    if get("client_id").as_deref() != Some(client_id) {
        return refuse("unauthorized_client", "unknown client_id");
    }
    if get("response_type").as_deref() != Some("code") {
        return refuse("unsupported_response_type", "response_type must be code");
    }
    if get("code_challenge_method").as_deref() != Some("S256") {
        return refuse("invalid_request", "code_challenge_method must be S256");
    }
    let challenge = get("code_challenge").unwrap_or_default();
    if !well_formed(&challenge) {
        return refuse(
            "invalid_request",
            "code_challenge must be 43 to 128 characters",
        );
    }
    let code = st.fresh("sim-code-");
    let codes = &mut st.codes;
    if codes.len() >= MAX_CODES {
        let oldest = codes
            .iter()
            .min_by_key(|(_, c)| c.issued)
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            codes.remove(&k);
        }
    }
    codes.insert(
        code.clone(),
        Code {
            challenge,
            redirect_uri: redirect_uri.clone(),
            issued: Instant::now(),
        },
    );
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let mut to = format!("{redirect_uri}{sep}code={code}");
    if let Some(state) = get("state") {
        to.push_str("&state=");
        to.push_str(&percent_encode(&state));
    }
    Ok(to)
}

/// `grant_type=authorization_code` without client authentication: redeems the code (once)
/// if the verifier, the client and the `redirect_uri` match what it was issued for.
pub(crate) fn redeem(
    codes: &mut BTreeMap<String, Code>,
    client_id: &str,
    get: impl Fn(&str) -> Option<String>,
) -> Result<(), Refusal> {
    let grant = |d: &str| Err((400, "invalid_grant", d.to_owned()));
    if get("client_id").as_deref() != Some(client_id) {
        return Err((401, "invalid_client", "unknown client_id".to_owned()));
    }
    let Some(code) = get("code").and_then(|c| codes.remove(&c)) else {
        return grant("the code is invalid, expired or already used");
    };
    if code.issued.elapsed() > CODE_LIFE {
        return grant("the code is invalid, expired or already used");
    }
    if get("redirect_uri").as_deref() != Some(code.redirect_uri.as_str()) {
        return grant("redirect_uri does not match the authorization request");
    }
    let verifier = get("code_verifier").unwrap_or_default();
    if !well_formed(&verifier) {
        return Err((
            400,
            "invalid_request",
            "code_verifier must be 43 to 128 characters".to_owned(),
        ));
    }
    let digest = sha2::Sha256::digest(verifier.as_bytes());
    let derived = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    if derived != code.challenge {
        return grant("code_verifier does not match the code_challenge");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_on_loopback_or_an_allowed_origin_only() {
        let cors = ["https://app.example".to_owned()];
        assert!(redirect_allowed("http://127.0.0.1:8080/cb", &cors));
        assert!(redirect_allowed("http://localhost/cb?x=1", &cors));
        assert!(redirect_allowed("https://app.example/login", &cors));
        assert!(!redirect_allowed("https://evil.example/cb", &cors));
        assert!(!redirect_allowed(
            "https://127.0.0.1.evil.example/cb",
            &cors
        ));
        assert!(!redirect_allowed("javascript:alert(1)", &cors));
        assert!(!redirect_allowed("ftp://127.0.0.1/cb", &cors));
    }

    /// One code issued for the RFC 7636 appendix B challenge.
    fn issued() -> BTreeMap<String, Code> {
        let mut codes = BTreeMap::new();
        codes.insert(
            "c".to_owned(),
            Code {
                challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned(),
                redirect_uri: "http://127.0.0.1/cb".to_owned(),
                issued: Instant::now(),
            },
        );
        codes
    }

    fn params(verifier: &'static str) -> impl Fn(&str) -> Option<String> {
        move |k: &str| match k {
            "client_id" => Some("id".to_owned()),
            "code" => Some("c".to_owned()),
            "redirect_uri" => Some("http://127.0.0.1/cb".to_owned()),
            "code_verifier" => Some(verifier.to_owned()),
            _ => None,
        }
    }

    #[test]
    fn the_rfc_7636_example_verifier_redeems_its_code_once() {
        const RIGHT: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        const WRONG: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl";
        let wrong = redeem(&mut issued(), "id", params(WRONG));
        assert_eq!(wrong.unwrap_err().1, "invalid_grant");
        let mut codes = issued();
        assert!(redeem(&mut codes, "id", params(RIGHT)).is_ok());
        let used = redeem(&mut codes, "id", params(RIGHT));
        assert_eq!(used.unwrap_err().1, "invalid_grant");
        let other_client = redeem(&mut issued(), "someone-else", params(RIGHT));
        assert_eq!(other_client.unwrap_err().0, 401);
    }
}
