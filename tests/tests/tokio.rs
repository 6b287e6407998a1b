//! The scenario table against the tokio adapter, over real loopback sockets.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use genesys_notify_core::{Event, Instant, Status};
use genesys_notify_sim::Sim;
use genesys_notify_tests::{Adapter, Creds, Running, Scenario};
use genesys_notify_tokio::{Client, Credentials, EventStream, Handle, Secret, Topic};

struct Tokio;

struct Running_ {
    rt: tokio::runtime::Runtime,
    handle: Handle,
    events: EventStream,
}

impl Running for Running_ {
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
}

impl Adapter for Tokio {
    fn name(&self) -> &'static str {
        "tokio"
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
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut b = Client::builder()
            .base_urls(sim.base_url(), None)
            .credentials(creds)
            .topics(s.topics.iter().map(|t| Topic::new(*t).unwrap()))
            .session_config(s.session.clone())
            .seed(1);
        if let Some(pem) = sim.cert_pem() {
            b = b.extra_root_pem(pem);
        }
        let (handle, events) = rt.block_on(b.connect()).unwrap();
        Box::new(Running_ { rt, handle, events })
    }
}

genesys_notify_tests::scenario_tests!(Tokio);
