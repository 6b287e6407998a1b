//! The adapters under test, behind one interface.

use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use genesys_notify_core::{Event, Instant, Status};
use genesys_notify_sim::Sim;

use crate::{Adapter, Creds, Running, Scenario};

/// The blocking adapter.
pub struct Blocking;

struct BlockingRunning(genesys_notify_blocking::Client);

impl Running for BlockingRunning {
    fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        // The harness polls: "nothing within the wait" and "ended" both read as no event.
        self.0.next_event(timeout).ok()
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
    fn held(&self) -> genesys_notify_adapter_common::Held {
        self.0.held()
    }
}

/// The simulator's credentials of the kind the scenario asks for (both adapters take the
/// same type).
fn credentials(s: &Scenario, sim: &Sim) -> genesys_notify_adapter_common::Credentials {
    use genesys_notify_adapter_common::Credentials;
    use genesys_notify_core::Secret;
    match s.creds {
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
    }
}

impl Adapter for Blocking {
    fn name(&self) -> &'static str {
        "blocking"
    }

    fn start(&self, s: &Scenario, sim: &Sim) -> Box<dyn Running> {
        let creds = credentials(s, sim);
        let mut config = genesys_notify_blocking::Config::new(
            genesys_notify_blocking::Endpoints::custom(
                s.api_base.as_deref().unwrap_or(sim.base_url()),
                None,
            )
            .unwrap(),
            creds,
        );
        config.topics = s
            .topics
            .iter()
            .map(|t| genesys_notify_core::Topic::new(*t).unwrap())
            .collect();
        config.session = s.session.clone();
        config.extra_root_pem = sim
            .cert_pem()
            .filter(|_| s.trust_sim_cert)
            .map(str::to_owned);
        config.seed = Some(1);
        Box::new(BlockingRunning(
            genesys_notify_blocking::Client::connect(config).unwrap(),
        ))
    }
}

/// The tokio adapter.
pub struct Tokio;

struct TokioRunning {
    rt: tokio::runtime::Runtime,
    handle: genesys_notify_tokio::Handle,
    events: genesys_notify_tokio::EventStream,
}

impl Running for TokioRunning {
    fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        let events = &mut self.events;
        self.rt.block_on(async {
            tokio::time::timeout(timeout, events.next())
                .await
                .ok()
                .flatten()
        })
    }
    fn wall_time(&self, at: Instant) -> SystemTime {
        self.handle.to_system_time(at)
    }
    fn status(&self) -> Status {
        self.handle.status()
    }
    fn close(&mut self) {
        let h = self.handle.clone();
        self.rt.block_on(h.close());
    }
    fn held(&self) -> genesys_notify_adapter_common::Held {
        self.handle.held()
    }
}

impl Adapter for Tokio {
    fn name(&self) -> &'static str {
        "tokio"
    }

    fn start(&self, s: &Scenario, sim: &Sim) -> Box<dyn Running> {
        let creds = credentials(s, sim);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut b = genesys_notify_tokio::Client::builder()
            .base_urls(s.api_base.as_deref().unwrap_or(sim.base_url()), None)
            .credentials(creds)
            .topics(
                s.topics
                    .iter()
                    .map(|t| genesys_notify_core::Topic::new(*t).unwrap()),
            )
            .session_config(s.session.clone())
            .seed(1);
        if let Some(pem) = sim.cert_pem().filter(|_| s.trust_sim_cert) {
            b = b.extra_root_pem(pem);
        }
        let (handle, events) = rt.block_on(b.connect()).unwrap();
        Box::new(TokioRunning { rt, handle, events })
    }
}
