//! What both adapters need around the notification socket: TLS trust and the mapping of
//! WebSocket failures to session inputs (never with the URL: the channel id in it is the
//! socket's only credential).

use std::sync::Arc;

use genesys_notify_core::RequestError;

use crate::http::parse_retry_after;

/// The webpki roots plus an optional extra root (PEM), with the ring provider.
pub fn tls_config(extra_root_pem: Option<&str>) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = extra_root_pem {
        let mut n = 0;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots
                .add(cert.map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
            n += 1;
        }
        if n == 0 {
            return Err("no certificate found in the extra root PEM".into());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A failed upgrade as `ConnectFailed`'s error: a refusal keeps its HTTP status and
/// `Retry-After`, anything else is a network failure.
pub fn upgrade_error(e: &tungstenite::Error) -> RequestError {
    match e {
        tungstenite::Error::Http(resp) => RequestError::Http {
            status: resp.status().as_u16(),
            retry_after: resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, None)),
            code: None,
        },
        other => crate::http::transport_error(describe(other)),
    }
}

/// A socket error as text for `Closed { reason }`, without the URL.
pub fn describe(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Io(io) => format!("{:?}: {io}", io.kind()),
        tungstenite::Error::Tls(t) => format!("TLS: {t}"),
        tungstenite::Error::Capacity(c) => format!("frame too large: {c}"),
        tungstenite::Error::Protocol(p) => format!("protocol: {p}"),
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            "connection closed".to_owned()
        }
        tungstenite::Error::Http(r) => format!("HTTP {}", r.status()),
        tungstenite::Error::Url(_) => "unusable connectUri".to_owned(),
        _ => "socket error".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_roots_must_be_certificates() {
        assert!(tls_config(None).is_ok());
        assert!(tls_config(Some("not a pem"))
            .unwrap_err()
            .contains("no certificate"));
    }
}
