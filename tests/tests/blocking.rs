//! The scenario table against the blocking adapter, over real loopback sockets.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, SystemTime};

use genesys_notify_blocking::{Client, Config, Credentials, Endpoints, Secret, Topic};
use genesys_notify_core::{Event, Instant, Status};
use genesys_notify_sim::Sim;
use genesys_notify_tests::{check, run, scenario, Adapter, Creds, Running, Scenario};

struct Blocking;

struct Running_(Client);

impl Running for Running_ {
    fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        self.0.next_event(timeout)
    }
    fn wall_time(&self, at: Instant) -> SystemTime {
        self.0.to_system_time(at)
    }
    fn status(&self) -> Status {
        self.0.status()
    }
    fn close(&mut self) {
        self.0.close();
    }
}

impl Adapter for Blocking {
    fn name(&self) -> &'static str {
        "blocking"
    }

    fn start(&self, s: &Scenario, sim: &Sim) -> Box<dyn Running> {
        let creds = match s.creds {
            Creds::ClientCredentials => Credentials::ClientCredentials {
                client_id: sim.client_id().to_owned(),
                client_secret: Secret::new(sim.client_secret()),
            },
            Creds::RefreshToken => Credentials::RefreshToken {
                client_id: sim.client_id().to_owned(),
                client_secret: Secret::new(sim.client_secret()),
                refresh_token: Secret::new(sim.refresh_token()),
                persist: Box::new(|_| Ok(())),
            },
        };
        let mut config = Config::new(Endpoints::custom(sim.base_url(), None).unwrap(), creds);
        config.topics = s.topics.iter().map(|t| Topic::new(*t).unwrap()).collect();
        config.session = s.session.clone();
        config.extra_root_pem = sim.cert_pem().map(str::to_owned);
        config.seed = Some(1);
        Box::new(Running_(Client::connect(config).unwrap()))
    }
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let s = scenario(stringify!($name));
            let out = run(&s, &Blocking);
            check(&s, Blocking.name(), &out);
            extra_checks(stringify!($name), &out);
        }
    )*};
}

fn extra_checks(name: &str, out: &genesys_notify_tests::Outcome) {
    match name {
        "steady"
        | "socket_closing"
        | "token_expiry_close_1000"
        | "channel_expiry"
        | "client_credentials_two_expiries" => {
            assert!(
                out.gaps.is_empty(),
                "{name}: planned renewals leave no gap: {out}"
            );
        }
        "abrupt_drop" | "half_open" | "displaced" | "tls" => {
            assert_eq!(out.gaps.len(), 1, "{name}: one gap for one loss: {out}");
            assert!(out.max_recovery_ms() < 5_000, "{name}: {out}");
        }
        "malformed_frames" => {
            assert!(
                out.warnings
                    .iter()
                    .filter(|w| w.contains("malformed"))
                    .count()
                    >= 2,
                "{:?}",
                out.warnings
            );
        }
        "forbidden_topic" => {
            assert_eq!(out.rejected_topics, vec!["v2.forbidden.secret".to_owned()])
        }
        "foreign_connect_uri" => {
            assert_eq!(out.upgrades, 0);
            assert!(
                out.warnings
                    .iter()
                    .any(|w| w.contains("connectUri refused")),
                "{:?}",
                out.warnings
            );
        }
        _ => {}
    }
}

scenarios!(
    steady,
    token_expiry_close_1000,
    token_expiry_close_4001,
    token_expiry_silent,
    token_expiry_keep_open,
    channel_expiry,
    socket_closing,
    abrupt_drop,
    half_open,
    token_429,
    channel_429,
    storm_503,
    revoked_refresh_token,
    displaced,
    malformed_frames,
    forbidden_topic,
    foreign_connect_uri,
    client_credentials_two_expiries,
    tls,
);
