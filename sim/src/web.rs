//! What a browser client needs from the simulator: CORS answers like the real API gives a
//! page on another origin, and static files for test pages and examples.

use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

/// Headers a browser client must be able to read on a cross-origin answer.
const EXPOSED: &str = "Retry-After, Date, inin-correlation-id, inin-ratelimit-count, inin-ratelimit-allowed, inin-ratelimit-reset";
/// Methods the API answers.
const METHODS: &str = "GET, POST, PUT, DELETE, HEAD";
/// Request headers a client may send.
const HEADERS: &str = "Authorization, Content-Type";
/// The largest static file served.
pub(crate) const MAX_STATIC_FILE: u64 = 64 << 20;

/// The request's `Origin`, if it is one of `allowed` (`*` allows every origin).
pub(crate) fn allowed_origin(allowed: &[String], headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    let text = origin.to_str().ok()?;
    allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(text))
        .then(|| origin.clone())
}

/// Marks an answer readable by `origin`.
pub(crate) fn add_cors(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED),
    );
}

/// The answer to a preflight `OPTIONS`: 204 with what may be sent, for an allowed origin; 403
/// without any CORS header otherwise (the browser then refuses the request).
pub(crate) fn preflight(origin: Option<HeaderValue>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    match origin {
        Some(o) => {
            *r.status_mut() = StatusCode::NO_CONTENT;
            let h = r.headers_mut();
            add_cors(h, o);
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(METHODS),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(HEADERS),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
        }
        None => *r.status_mut() = StatusCode::FORBIDDEN,
    }
    r
}

/// The file under `root` that `path` (a request path) names, if it is a regular file inside
/// `root`: no `..`, no absolute parts, no symlink out of it. `/` names `index.html`.
pub(crate) fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() || rel.ends_with('/') {
        format!("{rel}index.html")
    } else {
        rel.to_owned()
    };
    if rel.contains('%') || rel.contains('\\') {
        // Percent-escapes are not decoded, so no escaped `..` can get through.
        return None;
    }
    let rel = Path::new(&rel);
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    let root = root.canonicalize().ok()?;
    let full = root.join(rel).canonicalize().ok()?;
    (full.starts_with(&root) && full.is_file()).then_some(full)
}

/// The `Content-Type` of a static file, by its extension.
pub(crate) fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_inside_the_root_are_served() {
        let dir = std::env::temp_dir().join(format!("sim-web-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("index.html"), "<p>hi</p>").unwrap();
        std::fs::write(dir.join("sub/app.js"), "1").unwrap();
        assert_eq!(
            resolve(&dir, "/"),
            Some(dir.canonicalize().unwrap().join("index.html"))
        );
        assert!(resolve(&dir, "/sub/app.js").is_some());
        for bad in [
            "/../Cargo.toml",
            "/sub/../../etc/passwd",
            "/%2e%2e/secret",
            "//etc/passwd",
            "/sub",
            "/missing.js",
            "/sub\\..\\x",
        ] {
            assert_eq!(resolve(&dir, bad), None, "{bad}");
        }
        assert_eq!(content_type(Path::new("a.wasm")), "application/wasm");
        assert_eq!(
            content_type(Path::new("a.mjs")),
            "text/javascript; charset=utf-8"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn origins_are_matched_exactly_or_by_a_star() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:5173"),
        );
        let allow = vec!["http://127.0.0.1:5173".to_owned()];
        assert!(allowed_origin(&allow, &h).is_some());
        assert!(allowed_origin(&["http://elsewhere".to_owned()], &h).is_none());
        assert!(allowed_origin(&["*".to_owned()], &h).is_some());
        assert!(allowed_origin(&allow, &HeaderMap::new()).is_none());
        assert_eq!(preflight(None).status(), StatusCode::FORBIDDEN);
        let ok = preflight(allowed_origin(&allow, &h));
        assert_eq!(ok.status(), StatusCode::NO_CONTENT);
        assert!(ok.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap()
            .contains("Authorization"));
    }
}
