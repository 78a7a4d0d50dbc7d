//! Registry notifications drive the mirror: a push is mirrored in seconds, the schedule
//! staying as the safety net (`run --listen-events ADDR --event-senders FILE` on the
//! long-running modes, embedded or distributed).
//!
//! - [`senders`]: who may send, in which body format, for which registry, with which
//!   token; [`auth`]: the token check (constant time).
//! - [`listener`]: the HTTP endpoint (checks, 202 at once, 503 when the queue is full);
//!   [`bodies`]: what distribution, Quay, Harbor, Docker Hub and plain bodies say;
//!   [`recent`]: the last events, for `GET /events`.
//! - [`publisher`]: pushes to jobs: [`coalesce`] (a tag pushed again within the window),
//!   [`matcher`] (every route's mapping lines that select the tag; [`routes`]: a group's
//!   files and its jobs' stamp), a HEAD of the source, then the jobs to the [`sink`]:
//!   [`embedded`] (in-process workers) or [`distributed`] (the fleet's queue).
//! - [`latency`]: push-to-mirrored seconds from the jobs' results; [`ledger`]: which tags
//!   events published, so that a scheduled run counts the tags it had to repair.

mod auth;
mod bodies;
mod coalesce;
mod distributed;
mod embedded;
mod latency;
pub(crate) mod ledger;
mod listener;
mod matcher;
mod publisher;
mod recent;
pub(crate) mod routes;
mod senders;
mod sink;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use mirror_common::registry::RegistryClient;
use uuid::Uuid;

use sink::Sink;

pub(crate) use sink::SinkSetup;

/// Everything the endpoint needs.
pub(crate) struct Setup {
    pub listen: SocketAddr,
    pub senders: PathBuf,
    /// Pushes that may wait between the listener and the publisher.
    pub queue: usize,
    /// The coalescing window.
    pub window: Duration,
    pub resolve: routes::Resolve,
    /// The client the sources are HEADed with.
    pub client: Arc<RegistryClient>,
    pub sink: SinkSetup,
}

/// Starts the endpoint: reads the senders, binds the address, starts the publisher. Fails
/// the start on a bad senders file, a taken port or an unreachable broker. Returns the
/// bound address.
pub(crate) async fn start(setup: Setup) -> Result<SocketAddr> {
    let senders = senders::load(&setup.senders)?;
    let mut matcher = matcher::Matcher::new(setup.resolve);
    matcher.refresh(std::time::Instant::now());
    let run_id = Uuid::new_v4();
    let latency = Arc::new(latency::Latency::default());
    let sink = Sink::start(setup.sink, run_id, latency.clone()).await?;
    ledger::activate();
    let (tx, rx) = tokio::sync::mpsc::channel(setup.queue.max(1));
    let recent = Arc::new(recent::Recent::default());
    let names: Vec<String> = senders
        .iter()
        .map(|s| format!("{} ({}, {})", s.name, s.kind.as_str(), s.registry))
        .collect();
    let intake = Arc::new(listener::Intake {
        senders: senders.into_iter().map(|s| (s.name.clone(), s)).collect(),
        queue: tx,
        recent: recent.clone(),
        run_id,
    });
    let bound = listener::serve(setup.listen, intake)
        .await
        .map_err(|e| anyhow!("--listen-events {}: {e}", setup.listen))?;
    eprintln!(
        "events: senders {}; event jobs run as {run_id}",
        names.join(", ")
    );
    tokio::spawn(publisher::run(
        publisher::Publisher {
            matcher,
            client: setup.client,
            sink: Arc::new(sink),
            run_id,
            latency,
            recent,
            window: setup.window,
        },
        rx,
    ));
    Ok(bound)
}
