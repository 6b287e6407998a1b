//! Regions, base URLs and the rules for which host may receive what: the bearer token goes
//! only to `api.<region domain>`, the client secret and refresh token only to
//! `login.<region domain>`, and nothing but the channel's own `connectUri` to
//! `streaming.<region domain>`.

use std::fmt;

use crate::ConfigError;

/// Every Genesys Cloud region, by the names the official SDKs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Region {
    /// Americas (US East), `mypurecloud.com`.
    UsEast1,
    /// FedRAMP (US East 2), `use2.us-gov-pure.cloud`.
    UsEast2,
    /// Americas (US West), `usw2.pure.cloud`.
    UsWest2,
    /// Americas (Canada), `cac1.pure.cloud`.
    CaCentral1,
    /// Americas (São Paulo), `sae1.pure.cloud`.
    SaEast1,
    /// Americas (Mexico), `mxc1.pure.cloud`.
    MxCentral1,
    /// EMEA (Dublin), `mypurecloud.ie`.
    EuWest1,
    /// EMEA (London), `euw2.pure.cloud`.
    EuWest2,
    /// EMEA (Frankfurt), `mypurecloud.de`.
    EuCentral1,
    /// EMEA (Zurich), `euc2.pure.cloud`.
    EuCentral2,
    /// EMEA (UAE), `mec1.pure.cloud`.
    MeCentral1,
    /// EU sovereign cloud (Germany), `edee1.eusc-pure.cloud`.
    EuscDeEast1,
    /// Asia Pacific (Mumbai), `aps1.pure.cloud`.
    ApSouth1,
    /// Asia Pacific (Tokyo), `mypurecloud.jp`.
    ApNortheast1,
    /// Asia Pacific (Seoul), `apne2.pure.cloud`.
    ApNortheast2,
    /// Asia Pacific (Osaka), `apne3.pure.cloud`.
    ApNortheast3,
    /// Asia Pacific (Sydney), `mypurecloud.com.au`.
    ApSoutheast2,
    /// Asia Pacific (Jakarta), `apse1.pure.cloud`.
    ApSoutheast1,
}

const REGIONS: &[(Region, &str, &str)] = &[
    (Region::UsEast1, "us_east_1", "mypurecloud.com"),
    (Region::UsEast2, "us_east_2", "use2.us-gov-pure.cloud"),
    (Region::UsWest2, "us_west_2", "usw2.pure.cloud"),
    (Region::CaCentral1, "ca_central_1", "cac1.pure.cloud"),
    (Region::SaEast1, "sa_east_1", "sae1.pure.cloud"),
    (Region::MxCentral1, "mx_central_1", "mxc1.pure.cloud"),
    (Region::EuWest1, "eu_west_1", "mypurecloud.ie"),
    (Region::EuWest2, "eu_west_2", "euw2.pure.cloud"),
    (Region::EuCentral1, "eu_central_1", "mypurecloud.de"),
    (Region::EuCentral2, "eu_central_2", "euc2.pure.cloud"),
    (Region::MeCentral1, "me_central_1", "mec1.pure.cloud"),
    (
        Region::EuscDeEast1,
        "eusc_de_east_1",
        "edee1.eusc-pure.cloud",
    ),
    (Region::ApSouth1, "ap_south_1", "aps1.pure.cloud"),
    (Region::ApNortheast1, "ap_northeast_1", "mypurecloud.jp"),
    (Region::ApNortheast2, "ap_northeast_2", "apne2.pure.cloud"),
    (Region::ApNortheast3, "ap_northeast_3", "apne3.pure.cloud"),
    (Region::ApSoutheast2, "ap_southeast_2", "mypurecloud.com.au"),
    (Region::ApSoutheast1, "ap_southeast_1", "apse1.pure.cloud"),
];

impl Region {
    /// The region's domain, e.g. `mypurecloud.com`.
    pub fn domain(self) -> &'static str {
        REGIONS
            .iter()
            .find(|(r, _, _)| *r == self)
            .map_or("mypurecloud.com", |(_, _, d)| d)
    }

    /// The SDK name, e.g. `us_east_1`.
    pub fn name(self) -> &'static str {
        REGIONS
            .iter()
            .find(|(r, _, _)| *r == self)
            .map_or("us_east_1", |(_, n, _)| n)
    }

    /// Every region.
    pub fn all() -> impl Iterator<Item = Region> {
        REGIONS.iter().map(|(r, _, _)| *r)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Accepts the SDK name (`us_east_1`, `us-east-1`), the domain (`mypurecloud.ie`), or a host
/// or URL of the region as people paste them (`api.mypurecloud.ie`,
/// `https://login.mypurecloud.ie/`).
impl std::str::FromStr for Region {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Region, ConfigError> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        let domain = domain_of(s);
        REGIONS
            .iter()
            .find(|(_, n, d)| *n == norm || d.eq_ignore_ascii_case(&domain))
            .map(|(r, _, _)| *r)
            .ok_or_else(|| ConfigError::UnknownRegion {
                given: redact_userinfo(s).into_owned(),
                known: REGIONS.iter().fold(String::new(), |known, (_, n, _)| {
                    // Not `join`: its code is one more piece of the browser build.
                    if known.is_empty() {
                        n.to_string()
                    } else {
                        known + ", " + n
                    }
                }),
            })
    }
}

/// The region domain in a pasted host or URL: scheme, path, port and a service prefix
/// (`api.`, `login.`, `apps.`, `streaming.`) removed.
fn domain_of(s: &str) -> String {
    let s = s.trim().to_ascii_lowercase();
    let s = s.split_once("://").map_or(s.as_str(), |(_, rest)| rest);
    let host = s.split(['/', ':', '?', '#']).next().unwrap_or_default();
    let host = host.trim_end_matches('.');
    ["api.", "login.", "apps.", "streaming."]
        .iter()
        .find_map(|p| host.strip_prefix(p))
        .unwrap_or(host)
        .to_owned()
}

/// One parsed base URL: scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `http` or `https` (`ws`/`wss` for sockets).
    pub scheme: String,
    /// The host, lower-case.
    pub host: String,
    /// The port, if written.
    pub port: Option<u16>,
}

impl Origin {
    /// Parses `scheme://host[:port][/path]`, ignoring any path.
    pub fn parse(url: &str) -> Result<Origin, String> {
        // Messages quote the URL without any user:password it carries.
        let shown = redact_userinfo(url);
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("{shown:?} has no scheme (https://…)"))?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.contains('@') {
            return Err(format!("{shown:?} must not carry credentials"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, tail) = v6
                .split_once(']')
                .ok_or_else(|| format!("{shown:?} has a broken IPv6 host"))?;
            (format!("[{h}]"), tail.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (authority.to_owned(), None),
            }
        };
        if host.is_empty() {
            return Err(format!("{shown:?} has no host"));
        }
        let port = match port {
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| format!("{shown:?} has an invalid port"))?,
            ),
            None => None,
        };
        Ok(Origin {
            scheme: scheme.to_ascii_lowercase(),
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// True for `localhost`, `127.0.0.0/8` and `[::1]`.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self.host == "[::1]"
            || self.host.strip_prefix("127.").is_some_and(|r| {
                r.split('.').count() == 3 && r.split('.').all(|o| o.parse::<u8>().is_ok())
            })
    }
}

/// Where requests go: the API base gets the bearer token, the login base gets client
/// credentials and refresh tokens, and sockets may only go to the streaming origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    api_base: String,
    login_base: String,
    stream: Origin,
}

impl Endpoints {
    /// The production hosts of a region: `https://api.<domain>`, `https://login.<domain>`,
    /// `wss://streaming.<domain>`.
    pub fn region(region: Region) -> Endpoints {
        let d = region.domain();
        Endpoints {
            api_base: format!("https://api.{d}"),
            login_base: format!("https://login.{d}"),
            stream: Origin {
                scheme: "wss".into(),
                host: format!("streaming.{d}"),
                port: None,
            },
        }
    }

    /// Explicit base URLs (the simulator, a gateway). `http://` is accepted only for loopback
    /// hosts. Sockets must then go to the API base's host, with `ws`/`wss` matching its scheme.
    ///
    /// ```
    /// use genesys_notify_adapter_common::Endpoints;
    /// assert!(Endpoints::custom("http://127.0.0.1:8080", None).is_ok());
    /// assert!(Endpoints::custom("http://example.com", None).is_err());
    /// ```
    pub fn custom(api_base: &str, login_base: Option<&str>) -> Result<Endpoints, ConfigError> {
        let api = check_base(api_base)?;
        let login = login_base.unwrap_or(api_base);
        check_base(login)?;
        let ws = if api.scheme == "https" { "wss" } else { "ws" };
        Ok(Endpoints {
            api_base: api_base.trim_end_matches('/').to_owned(),
            login_base: login.trim_end_matches('/').to_owned(),
            stream: Origin {
                scheme: ws.into(),
                host: api.host,
                port: api.port,
            },
        })
    }

    /// The API base, without a trailing slash.
    pub fn api_base(&self) -> &str {
        &self.api_base
    }

    /// The login base, without a trailing slash.
    pub fn login_base(&self) -> &str {
        &self.login_base
    }

    /// Refuses a `connectUri` whose scheme, host or port is not the expected streaming origin:
    /// a hostile or misconfigured server must not make the client connect elsewhere.
    pub fn check_connect_uri(&self, uri: &str) -> Result<(), String> {
        // Never quote the URI: its path is the channel id, the socket's only credential.
        let o = Origin::parse(uri)
            .map_err(|_| "connectUri refused: it is not a scheme://host URL".to_owned())?;
        let want = &self.stream;
        let default_port = |s: &str| if s == "wss" { 443 } else { 80 };
        let same_port = o.port.unwrap_or(default_port(&o.scheme))
            == want.port.unwrap_or(default_port(&want.scheme));
        if o.scheme != want.scheme || o.host != want.host || !same_port {
            return Err(format!(
                "connectUri refused: {}://{} is not the streaming host {}://{}{}",
                o.scheme,
                o.host,
                want.scheme,
                want.host,
                want.port.map(|p| format!(":{p}")).unwrap_or_default()
            ));
        }
        Ok(())
    }
}

/// `url` with the `user:password@` of its authority shown as `***@`: fit for a message.
pub(crate) fn redact_userinfo(url: &str) -> std::borrow::Cow<'_, str> {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    match url[after_scheme..authority_end].rfind('@') {
        Some(at) => std::borrow::Cow::Owned(format!(
            "{}***{}",
            &url[..after_scheme],
            &url[after_scheme + at..]
        )),
        None => std::borrow::Cow::Borrowed(url),
    }
}

fn check_base(given: &str) -> Result<Origin, ConfigError> {
    let url = &*redact_userinfo(given);
    let o = Origin::parse(given).map_err(|why| ConfigError::BadUrl {
        url: url.to_owned(),
        why,
    })?;
    match o.scheme.as_str() {
        "https" => Ok(o),
        "http" if o.is_loopback() => Ok(o),
        "http" => Err(ConfigError::BadUrl {
            url: url.to_owned(),
            why: "plain http is allowed only for loopback hosts (localhost, 127.0.0.1, [::1]); use https".into(),
        }),
        _ => Err(ConfigError::BadUrl { url: url.to_owned(), why: "the scheme must be https (or http on loopback)".into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_a_base_url_are_refused_and_never_echoed() {
        for given in [
            "https://admin:hunter2@api.example.com",
            "http://admin:hunter2@127.0.0.1:8080/api",
            "https://hunter2@api.example.com",
        ] {
            let e = Endpoints::custom(given, None).unwrap_err().to_string();
            assert!(!e.contains("hunter2"), "{e}");
            assert!(e.contains("***@") && e.contains("credentials"), "{e}");
        }
        assert_eq!(
            redact_userinfo("https://a:b@h.example/p@q"),
            "https://***@h.example/p@q"
        );
        assert_eq!(
            redact_userinfo("https://h.example/p@q"),
            "https://h.example/p@q"
        );
        let e = "https://u:hunter2@nowhere.example"
            .parse::<Region>()
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn regions_parse_by_name_or_domain() {
        assert_eq!("us-east-1".parse::<Region>().unwrap(), Region::UsEast1);
        assert_eq!("mypurecloud.ie".parse::<Region>().unwrap(), Region::EuWest1);
        for pasted in [
            "api.mypurecloud.ie",
            "login.mypurecloud.ie",
            "https://apps.mypurecloud.ie/",
            "https://api.mypurecloud.ie/api/v2/notifications/channels",
            " MyPureCloud.IE ",
        ] {
            assert_eq!(
                pasted.parse::<Region>().unwrap(),
                Region::EuWest1,
                "{pasted}"
            );
        }
        assert_eq!(
            "api.mypurecloud.com.au".parse::<Region>().unwrap(),
            Region::ApSoutheast2
        );
        assert_eq!(Region::all().count(), 18);
        let e = "mars_1".parse::<Region>().unwrap_err().to_string();
        assert!(e.contains("eu_west_2"), "{e}");
        assert!(e.contains("mypurecloud.ie"), "domains are named too: {e}");
    }

    #[test]
    fn connect_uri_must_match_the_streaming_origin() {
        let e = Endpoints::region(Region::EuWest2);
        assert!(e
            .check_connect_uri("wss://streaming.euw2.pure.cloud/channels/streaming-0-x")
            .is_ok());
        assert!(e
            .check_connect_uri("wss://streaming.euw2.pure.cloud:443/channels/x")
            .is_ok());
        assert!(e
            .check_connect_uri("ws://streaming.euw2.pure.cloud/channels/x")
            .is_err());
        assert!(e
            .check_connect_uri("wss://evil.example/channels/x")
            .is_err());
        assert!(e
            .check_connect_uri("wss://streaming.euw2.pure.cloud.evil.example/x")
            .is_err());
        assert!(e
            .check_connect_uri("wss://user@streaming.euw2.pure.cloud/x")
            .is_err());
        let sim = Endpoints::custom("http://127.0.0.1:4000", None).unwrap();
        assert!(sim
            .check_connect_uri("ws://127.0.0.1:4000/channels/x")
            .is_ok());
        assert!(sim
            .check_connect_uri("ws://127.0.0.1:4001/channels/x")
            .is_err());
        assert!(sim
            .check_connect_uri("wss://127.0.0.1:4000/channels/x")
            .is_err());
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(Endpoints::custom("http://localhost:1", None).is_ok());
        assert!(Endpoints::custom("http://[::1]:1", None).is_ok());
        assert!(Endpoints::custom("http://127.0.0.1.evil.com", None).is_err());
        assert!(Endpoints::custom("http://10.0.0.1", None).is_err());
        assert!(
            Endpoints::custom("https://api.example.com", Some("http://login.example.com")).is_err()
        );
        assert!(Endpoints::custom("ftp://x", None).is_err());
    }
}
