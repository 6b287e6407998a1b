//! What both adapters need around the notification socket: TLS trust and the mapping of
//! WebSocket failures to session inputs (never with the URL: the channel id in it is the
//! socket's only credential).

use std::sync::Arc;

use genesys_notify_core::RequestError;

use crate::http::parse_retry_after;

/// The roots a TLS connection trusts: the public (webpki) roots, or, when a root certificate
/// (PEM) is given, that one only. Both adapters use this one meaning for every connection,
/// HTTP and socket alike: a given root is for the simulator or a private gateway, whose
/// certificate the public roots would not vouch for anyway.
pub fn root_store(root_pem: Option<&str>) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::pem::PemObject;
    let Some(pem) = root_pem else {
        return Ok(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    if roots.is_empty() {
        return Err("no certificate found in the root PEM".into());
    }
    Ok(roots)
}

/// A client configuration over [`root_store`], with the ring provider.
pub fn tls_config(root_pem: Option<&str>) -> Result<Arc<rustls::ClientConfig>, String> {
    let roots = root_store(root_pem)?;
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
    fn a_given_root_replaces_the_public_roots() {
        assert!(tls_config(None).is_ok());
        assert!(root_store(None).unwrap().len() > 100);
        assert!(tls_config(Some("not a pem"))
            .unwrap_err()
            .contains("no certificate"));
        let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let pem = key.cert.pem();
        assert_eq!(root_store(Some(&pem)).unwrap().len(), 1);
    }
}
