//! The scenario table against the blocking adapter, over real loopback sockets.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, SystemTime};

use genesys_notify_blocking::{Client, Config, Credentials, Endpoints, Secret, Topic};
use genesys_notify_core::{Event, Instant, Status};
use genesys_notify_sim::Sim;
use genesys_notify_tests::{Adapter, Creds, Running, Scenario};

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

genesys_notify_tests::scenario_tests!(Blocking);
